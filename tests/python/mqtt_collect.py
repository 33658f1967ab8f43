"""An independent MQTT subscriber (paho-mqtt) for the metadata sink's tests: subscribes at QoS 1,
prints "ready", collects until no message came for `quiet` seconds (after the first one) or the
time limit, then prints one JSON line: messages, unique message ids, cameras, and per camera the
highest frame number and the runs of frame numbers missing below it."""
import json
import sys
import time

import paho.mqtt.client as mqtt

port, topic, quiet, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
seen, ids, cameras = 0, set(), set()
frames = {}  # camera id -> frame numbers received
last = None


def on_message(client, userdata, message):
    global seen, last
    payload = json.loads(message.payload)
    seen += 1
    ids.add(payload["message_id"])
    cameras.add(payload["camera_id"])
    frames.setdefault(payload["camera_id"], set()).add(payload["frame_number"])
    last = time.monotonic()


subscribed = []
# A persistent session (clean_session off): a broker that restarts keeps queueing for it.
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tributary-test-subscriber", clean_session=False)
client.on_message = on_message
client.on_subscribe = lambda *args: subscribed.append(True)
# (Re)subscribed on every connection: a broker restarted by the test forgets subscriptions.
client.on_connect = lambda c, userdata, flags, reason, properties: c.subscribe(topic, qos=1)
client.reconnect_delay_set(min_delay=1, max_delay=1)
start = time.monotonic()
while True:
    try:
        client.connect("127.0.0.1", port)
        break
    except OSError:
        if time.monotonic() - start > 10:
            raise
        time.sleep(0.1)
client.loop_start()
while not subscribed and time.monotonic() - start < 10:
    time.sleep(0.05)
print("ready", flush=True)
while time.monotonic() - start < limit:
    time.sleep(0.05)
    if last is not None and time.monotonic() - last > quiet:
        break
client.loop_stop()
def gaps(numbers):
    """The runs of frame numbers missing between 0 and the highest received, as [first, last]."""
    missing, runs = sorted(set(range(max(numbers) + 1)) - numbers), []
    for n in missing:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs


print(json.dumps({"messages": seen, "unique": len(ids), "cameras": sorted(cameras),
                  "highest": {c: max(f) for c, f in frames.items()}, "gaps": {c: gaps(f) for c, f in frames.items()}}), flush=True)
