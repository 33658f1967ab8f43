// Cairo for the OSD: boxes and labels drawn on host frames. Cairo's C API needs no helpers.
#ifndef TRIBUTARY_CCAIRO_SHIM_H
#define TRIBUTARY_CCAIRO_SHIM_H
#include <cairo.h>
#endif
