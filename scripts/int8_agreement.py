#!/usr/bin/env python3
"""Agreement of the INT8 detector with FP32 on held-back frames, measured like the Swift test
`INT8DetectorTests` (Tests/TributaryTests/Inference/DetectorTests.swift).

Usage (defaults shown; relative paths resolve against the repository root):
    int8_agreement.py --fp32 models/yolov3-tiny-416.onnx --int8 models/yolov3-tiny-416-int8.onnx \
        --config configs/yolov3_tiny_pgie_config.txt --media media/sample_720p_h264.mp4 media/vtest.avi \
        --frames 24 --width 640 --height 480 --threads 2

Frames: the first `--frames` frames of each video (never calibration frames: those start at frame
100), scaled to the muxer size as the Swift sources do (VideoSource.decodeGraph: videoscale without
borders, i.e. stretched, then videoconvert to RGBA). Pre- and post-processing (letterbox, YOLO
parse, NMS) and IoU are tests/python/reference_detector.py's.

Metric: for each FP32 detection (class, then confidence order) the unused INT8 detection of the same
class with the highest IoU is matched if the IoU is >= 0.5; a frame counts when the two object counts
differ by at most 1. Prints one line; exits 1 when either share is below the bar (0.95 / 0.95).
"""

import argparse
import os
import subprocess
import sys
import threading

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import reference_detector as ref  # noqa: E402  (preprocess, detect, iou, read_config)

MIN_MATCHED = 0.95
MIN_COUNTS = 0.95
MATCH_IOU = 0.5
DECODE_TIMEOUT_S = 120
DEFAULT_MEDIA = ["media/sample_720p_h264.mp4", "media/vtest.avi"]


def repo_path(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def shown(path):
    """Relative to the repository root when inside it."""
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def muxer_frames(path, count, width, height):
    """The first `count` frames of `path` as uint8 RGB [height, width, 3], scaled like the Swift muxer."""
    cmd = ["gst-launch-1.0", "-q", "filesrc", "location=" + path, "!", "decodebin", "!",
           "videoscale", "add-borders=false", "!", "videoconvert", "!",
           "video/x-raw,format=RGBA,width=%d,height=%d,pixel-aspect-ratio=1/1" % (width, height),
           "!", "fdsink", "fd=1"]
    size = width * height * 4
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(DECODE_TIMEOUT_S, proc.kill)
    timer.start()
    frames = []
    try:
        while len(frames) < count:
            data = proc.stdout.read(size)
            if len(data) < size:
                break
            frames.append(np.frombuffer(data, np.uint8).reshape(height, width, 4)[:, :, :3])
    finally:
        timer.cancel()
        proc.kill()   # the rest of the video is not needed
        _, err = proc.communicate()
    if len(frames) < count:
        raise RuntimeError("decoding %s gave %d of %d frames:\n%s" % (path, len(frames), count,
                                                                    err.decode(errors="replace")))
    return frames


def session(path, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def measure(fp32_path, int8_path, config="configs/yolov3_tiny_pgie_config.txt", media=None, frames=24,
            width=640, height=480, threads=2):
    """Returns a dict: matched, fp32_objects, frames, within_one, and the shares matched_share, counts_share."""
    cfg = ref.read_config(repo_path(config))
    fp32, int8 = session(repo_path(fp32_path), threads), session(repo_path(int8_path), threads)
    inp = fp32.get_inputs()[0]
    net_h, net_w = int(inp.shape[2]), int(inp.shape[3])
    r = {"matched": 0, "fp32_objects": 0, "frames": 0, "within_one": 0}
    for path in media or DEFAULT_MEDIA:
        for rgb in muxer_frames(repo_path(path), frames, width, height):
            tensor, transform = ref.preprocess(rgb, cfg, net_w, net_h)
            a = ref.detect(fp32.run(None, {inp.name: tensor})[0][0], cfg, transform, width, height)
            b = ref.detect(int8.run(None, {inp.name: tensor})[0][0], cfg, transform, width, height)
            r["frames"] += 1
            r["within_one"] += abs(len(a) - len(b)) <= 1
            used = set()
            for c, _, rect in a:
                r["fp32_objects"] += 1
                free = [j for j, d in enumerate(b) if j not in used and d[0] == c]
                best = max(free, key=lambda j: ref.iou(rect, b[j][2]), default=None)
                if best is not None and ref.iou(rect, b[best][2]) >= MATCH_IOU:
                    r["matched"] += 1
                    used.add(best)
    r["matched_share"] = r["matched"] / max(r["fp32_objects"], 1)
    r["counts_share"] = r["within_one"] / max(r["frames"], 1)
    return r


def passes(r):
    return r["fp32_objects"] > 0 and r["matched_share"] >= MIN_MATCHED and r["counts_share"] >= MIN_COUNTS


def figures(r):
    return ("%d/%d FP32 detections matched (%.3f), counts within ±1 on %d/%d frames (%.3f); bar %.2f / %.2f"
            % (r["matched"], r["fp32_objects"], r["matched_share"], r["within_one"], r["frames"],
               r["counts_share"], MIN_MATCHED, MIN_COUNTS))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fp32", default="models/yolov3-tiny-416.onnx")
    ap.add_argument("--int8", default="models/yolov3-tiny-416-int8.onnx")
    ap.add_argument("--config", default="configs/yolov3_tiny_pgie_config.txt",
                    help="detector config: pre-processing, thresholds, NMS")
    ap.add_argument("--media", nargs="+", default=DEFAULT_MEDIA)
    ap.add_argument("--frames", type=int, default=24, help="frames from the start of each video")
    ap.add_argument("--width", type=int, default=640, help="muxer width")
    ap.add_argument("--height", type=int, default=480, help="muxer height")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = ap.parse_args()
    r = measure(args.fp32, args.int8, args.config, args.media, args.frames, args.width, args.height, args.threads)
    ok = passes(r)
    print("int8_agreement: %s vs %s on %d held-back frames: %s: %s" % (
        shown(repo_path(args.int8)), shown(repo_path(args.fp32)), r["frames"],
        figures(r), "pass" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
