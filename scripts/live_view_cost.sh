#!/usr/bin/env bash
# What watching the dashboard's live view costs the pipeline: `tributary serve` on two cameras
# (the detector on, files looping as fast as they go), frames delivered per second over
# alternating windows without a viewer and with VIEWERS MJPEG viewers (curl), ROUNDS times each;
# prints each window and the medians' ratio.
#
# usage: scripts/live_view_cost.sh [BINARY] [ROUNDS] [SECONDS] [VIEWERS]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/debug/tributary} rounds=${2:-5} seconds=${3:-10} viewers=${4:-3} port=$((20000 + RANDOM % 20000))
"$binary" serve --api-port "$port" --width 1280 --height 720 --tiler-width 1280 --tiler-height 720 --file-loop \
  -i "file://$PWD/media/vtest.avi" "file://$PWD/media/sample_720p_h264.mp4" > /dev/null 2>&1 &
service=$!
trap 'kill -INT $service 2>/dev/null; wait $service 2>/dev/null || true' EXIT
delivered() {
  curl -s "localhost:$port/api/v1/stream/get-stream-info" |
    python3 -c 'import json,sys; print(sum(s["frames_delivered"] for s in json.load(sys.stdin)["stream-info"]["stream-info"]))'
}
rate() { local a b; a=$(delivered); sleep "$seconds"; b=$(delivered); python3 -c "print(round(($b - $a) / $seconds, 2))"; }
until curl -sf "localhost:$port/api/v1/ready" > /dev/null; do sleep 1; done
sleep 10  # past the start
without=() with=()
watched() {  # the rate while VIEWERS viewers watch
  local pids=() fps
  for _ in $(seq "$viewers"); do curl -s --max-time $((seconds + 2)) "localhost:$port/api/v1/view.mjpeg" -o /dev/null & pids+=($!); done
  sleep 1  # the viewers connected
  fps=$(rate)
  wait "${pids[@]}" || true
  echo "$fps"
}
echo "| round | fps, no viewer | fps, $viewers viewers | ratio |"
echo "|---|---|---|---|"
for round in $(seq "$rounds"); do
  # Alternating which comes first, so that a drift in the rate does not favour either.
  if (( round % 2 )); then without+=("$(rate)"); with+=("$(watched)"); else with+=("$(watched)"); without+=("$(rate)"); fi
  echo "| $round | ${without[-1]} | ${with[-1]} | $(python3 -c "print(round(${with[-1]} / ${without[-1]}, 3))") |"
done
encoded=$(curl -s "localhost:$port/metrics" | awk '/^tributary_live_view_frames_total /{print $2}')
python3 - "${without[*]}" "${with[*]}" "$encoded" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
ratios = [y / x for x, y in zip(a, b)]
print(f"medians: {statistics.median(a):.2f} fps without a viewer, {statistics.median(b):.2f} with; "
      f"median of the rounds' ratios {statistics.median(ratios):.3f}; JPEGs encoded {sys.argv[3]}")
PY
