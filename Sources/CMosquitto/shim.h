// Thin shim over libmosquitto (Debian's libmosquitto-dev, 2.0) for the MQTT metadata sink.
#include <mosquitto.h>
