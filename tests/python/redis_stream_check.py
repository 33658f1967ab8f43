"""An independent Redis Streams consumer (redis-py) for the metadata sink's tests: reads a whole
stream with XRANGE and checks each entry's fields against the layout asked for. Prints one JSON
line: entries, unique message ids, layout errors, cameras, and for the key layout whether every
entry's key is its payload's camera_id."""
import json
import sys

import redis

port, stream, layout = int(sys.argv[1]), sys.argv[2], sys.argv[3]
client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
entries, ids, errors, cameras = 0, set(), [], set()
last = "-"
while True:
    batch = client.xrange(stream, min=last, max="+", count=5000)
    if last != "-":
        batch = batch[1:]
    if not batch:
        break
    for entry_id, fields in batch:
        entries += 1
        if layout == "key":
            if set(fields) != {"key", "value", "headers"}:
                errors.append(f"{entry_id}: fields {sorted(fields)}")
                continue
            payload = json.loads(fields["value"])
            if fields["key"] != payload["camera_id"] or fields["headers"] != "{}":
                errors.append(f"{entry_id}: key {fields['key']} vs camera_id {payload['camera_id']}")
        else:
            if set(fields) != {"metadata"}:
                errors.append(f"{entry_id}: fields {sorted(fields)}")
                continue
            payload = json.loads(fields["metadata"])
        ids.add(payload["message_id"])
        cameras.add(payload["camera_id"])
    last = batch[-1][0]
print(json.dumps({"entries": entries, "unique": len(ids), "errors": errors[:5], "cameras": sorted(cameras)}))
