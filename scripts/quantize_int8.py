#!/usr/bin/env python3
"""Quantise the FP32 YOLOv3-tiny ONNX model to INT8 (ONNX Runtime static quantisation, QDQ format),
calibrated on real frames of the sample videos.

Usage (defaults shown; relative paths resolve against the repository root, the parent of this folder):
    quantize_int8.py --model models/yolov3-tiny-416.onnx --output models/yolov3-tiny-416-int8.onnx \
        --media media/sample_720p_h264.mp4 media/sample_h265.mp4 --frames 64

Calibration frames
------------------
`--frames` frames in all, split evenly over the videos, spread evenly from frame `--first-frame` (100)
to the end of each video, so that they never include frames 0-23, which the accuracy tests use.
Frames are decoded by GStreamer's command line (gst-launch-1.0, streamed through a pipe; the size
comes from gst-discoverer-1.0) and pre-processed exactly like the detector
(configs/yolov3_tiny_pgie_config.txt): letterbox into the network size keeping the aspect ratio,
bilinear resize with half-pixel centres to round(w*r) x round(h*r), r = min(W/w, H/h), placed centred
((W-sw)//2, (H-sh)//2) on black (0), values / 255, RGB, NCHW float32.

Quantisation
------------
onnxruntime.quantization.shape_inference.quant_pre_process (ONNX shape inference + ORT basic graph
optimisation; symbolic shape inference too when sympy is installed), then quantize_static with
QDQ format, QUInt8 activations, QInt8 per-channel weights and MinMax calibration. Only the backbone's
operators (Conv, MaxPool, LeakyRelu, Resize, Concat) are quantised: the YOLO decode head after the last
convolutions (Reshape/Transpose/Slice/Sigmoid/Exp/Add/Mul/Concat) stays FP32, so box coordinates and
scores are not rounded to 8 bits. The batch dimension stays dynamic.

The result is written to `<output>.tmp` and renamed into place at the end; one summary line is printed.
"""

import argparse
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODE_TIMEOUT_S = 120
CHUNK = 8


def repo_path(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


# --- frames --------------------------------------------------------------------------------------

def video_size(path):
    """(width, height) of the first video stream, from gst-discoverer-1.0."""
    res = subprocess.run(["gst-discoverer-1.0", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=60)
    width = re.search(r"^\s*Width:\s*(\d+)", res.stdout, re.M)
    height = re.search(r"^\s*Height:\s*(\d+)", res.stdout, re.M)
    if res.returncode != 0 or not width or not height:
        raise RuntimeError("gst-discoverer-1.0 could not read the video size of %s:\n%s" % (path, res.stdout))
    return int(width.group(1)), int(height.group(1))


class Letterbox:
    """The detector's pre-processing for one source size (tables built once)."""

    def __init__(self, src_w, src_h, net_w, net_h):
        r = min(net_w / src_w, net_h / src_h)
        self.sw = min(net_w, max(1, round(src_w * r)))
        self.sh = min(net_h, max(1, round(src_h * r)))
        self.px, self.py = (net_w - self.sw) // 2, (net_h - self.sh) // 2
        self.net_w, self.net_h = net_w, net_h

        def taps(n_out, n_in):
            s = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / n_out)
                           - np.float32(0.5), 0)
            i0 = np.minimum(s.astype(np.int64), n_in - 1)
            i1 = np.minimum(i0 + 1, n_in - 1)
            return i0, i1, (s - i0).astype(np.float32)

        self.y0, self.y1, self.wy = taps(self.sh, src_h)
        self.x0, self.x1, self.wx = taps(self.sw, src_w)

    def __call__(self, rgb):
        """rgb: uint8 [h, w, 3] -> float32 [3, net_h, net_w]."""
        wx = self.wx[None, :, None]
        def row(rows):
            r = rows.astype(np.float32)
            return r[:, self.x0] * (1 - wx) + r[:, self.x1] * wx
        top, bottom = row(rgb[self.y0]), row(rgb[self.y1])
        wy = self.wy[:, None, None]
        scaled = top * (1 - wy) + bottom * wy
        canvas = np.zeros((3, self.net_h, self.net_w), np.float32)
        canvas[:, self.py:self.py + self.sh, self.px:self.px + self.sw] = scaled.transpose(2, 0, 1)
        canvas *= np.float32(1.0 / 255.0)
        return canvas


def calibration_frames(path, count, first, net_w, net_h):
    """`count` pre-processed frames spread evenly from frame `first` to the end of the video.

    The video is streamed once through a pipe (RGBx, so rows have no padding). Frames are kept at a
    stride that doubles whenever more than 2*count are held, so the kept frames are always evenly
    spaced from `first` to the end without knowing the frame count in advance.
    """
    w, h = video_size(path)
    letterbox = Letterbox(w, h, net_w, net_h)
    frame_bytes = w * h * 4
    cmd = ["gst-launch-1.0", "-q", "filesrc", "location=" + path, "!", "decodebin", "!", "videoconvert", "!",
           "video/x-raw,format=RGBx,width=%d,height=%d" % (w, h), "!", "fdsink", "fd=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(DECODE_TIMEOUT_S, proc.kill)
    timer.start()
    kept, stride, index = [], 1, 0   # kept: (frame index, tensor)
    buf = bytearray(frame_bytes)
    view = memoryview(buf)
    try:
        while True:
            got = 0
            while got < frame_bytes:
                n = proc.stdout.readinto(view[got:])
                if not n:
                    break
                got += n
            if got < frame_bytes:
                break
            if index >= first and (index - first) % stride == 0:
                rgb = np.frombuffer(buf, np.uint8).reshape(h, w, 4)[:, :, :3]
                kept.append((index, letterbox(rgb)))
                if len(kept) > 2 * count:
                    kept, stride = kept[::2], stride * 2
            index += 1
        proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace")
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0:
        raise RuntimeError("decoding %s failed (rc %d, timeout %d s):\n%s" % (path, rc, DECODE_TIMEOUT_S, stderr))
    if len(kept) < count:
        raise RuntimeError("%s: %d frames, too few after frame %d for %d calibration frames"
                           % (path, index, first, count))
    pick = np.unique(np.linspace(0, len(kept) - 1, count).round().astype(int))
    return [kept[i] for i in pick], index


class FrameReader:
    """CalibrationDataReader over a list of [3, H, W] tensors, one frame per batch. `set_range` and
    `len` let quantize_static calibrate in chunks (extra option CalibStridedMinMax), which bounds the
    memory the histogram calibrators (Percentile, Entropy) use for the intermediate tensors."""

    def __init__(self, input_name, tensors):
        self.input_name, self.tensors = input_name, tensors
        self.set_range(0, len(tensors))

    def __len__(self):
        return len(self.tensors)

    def set_range(self, start_index, end_index):
        self.i, self.end = start_index, min(end_index, len(self.tensors))

    def get_next(self):
        if self.i >= self.end:
            return None
        self.i += 1
        return {self.input_name: self.tensors[self.i - 1][None]}

    def rewind(self):
        self.set_range(0, len(self.tensors))


# --- main ----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="models/yolov3-tiny-416.onnx")
    ap.add_argument("--output", default="models/yolov3-tiny-416-int8.onnx")
    ap.add_argument("--media", nargs="+", default=["media/sample_720p_h264.mp4", "media/sample_h265.mp4"])
    ap.add_argument("--frames", type=int, default=64, help="calibration frames in all (split over the videos)")
    ap.add_argument("--first-frame", type=int, default=100,
                    help="first frame eligible for calibration (frames 0-23 are the accuracy tests')")
    ap.add_argument("--activations", choices=["QUInt8", "QInt8"], default="QUInt8")
    ap.add_argument("--per-channel", dest="per_channel", action="store_true", default=True)
    ap.add_argument("--per-tensor", dest="per_channel", action="store_false")
    ap.add_argument("--calibrate-method", choices=["MinMax", "Entropy", "Percentile"], default="Percentile")
    ap.add_argument("--percentile", type=float, default=99.999, help="for --calibrate-method Percentile")
    ap.add_argument("--quantize-head", action="store_true",
                    help="also quantise the YOLO decode head (default: backbone operators only)")
    ap.add_argument("--fp32-detection-convs", action="store_true",
                    help="keep the last convolutions (feeding the decode head) in FP32 too")
    args = ap.parse_args()

    start = time.time()
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model_path, output = repo_path(args.model), repo_path(args.output)
    media = [repo_path(m) for m in args.media]
    if args.frames < len(media):
        sys.exit("--frames must be at least the number of videos")

    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    net_h, net_w = int(inp.shape[2]), int(inp.shape[3])
    del session

    tensors, used = [], []
    for k, path in enumerate(media):
        n = args.frames // len(media) + (1 if k < args.frames % len(media) else 0)
        frames, total = calibration_frames(path, n, args.first_frame, net_w, net_h)
        tensors += [t for _, t in frames]
        used.append("%s: %d of %d frames (%d..%d)" % (os.path.basename(path), len(frames), total,
                                                       frames[0][0], frames[-1][0]))
    decode_s = time.time() - start

    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    tmp_output = output + ".tmp"
    with tempfile.TemporaryDirectory(prefix="quantize_int8.") as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        try:
            import sympy  # noqa: F401  (symbolic shape inference needs it)
            symbolic = True
        except ImportError:
            symbolic = False
        quant_pre_process(model_path, prepared, skip_symbolic_shape=not symbolic)

        ops = None if args.quantize_head else ["Conv", "MaxPool", "LeakyRelu", "Resize", "Concat"]
        nodes_to_exclude = []
        if not args.quantize_head:
            # The decode head's Concat nodes (the per-layer rows and the final output) stay FP32; only
            # the route Concat inside the backbone (feeding a Conv) is quantised.
            graph = onnx.load(prepared).graph
            consumers = {}
            for node in graph.node:
                for name in node.input:
                    consumers.setdefault(name, []).append(node.op_type)
            outputs = {o.name for o in graph.output}
            for node in graph.node:
                if node.op_type == "Concat" and (node.output[0] in outputs or
                                                 any(t != "Conv" for t in consumers.get(node.output[0], []))):
                    nodes_to_exclude.append(node.name)
                # The detection convolutions (the last ones, feeding the decode head's Reshape).
                if args.fp32_detection_convs and node.op_type == "Conv" and \
                        all(t == "Reshape" for t in consumers.get(node.output[0], [])):
                    nodes_to_exclude.append(node.name)
        # Calibrate in chunks of up to CHUNK frames (must divide the frame count).
        chunk = max(d for d in range(1, min(CHUNK, len(tensors)) + 1) if len(tensors) % d == 0)
        extra_options = {"CalibStridedMinMax": chunk}
        if args.calibrate_method == "Percentile":
            extra_options["CalibPercentile"] = args.percentile
        # The calibrators print progress to stdout; keep it for errors only (one summary line).
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                quantize_static(
                    prepared, tmp_output, FrameReader(inp.name, tensors),
                    quant_format=QuantFormat.QDQ,
                    activation_type=getattr(QuantType, args.activations),
                    weight_type=QuantType.QInt8,
                    per_channel=args.per_channel,
                    calibrate_method=getattr(CalibrationMethod, args.calibrate_method),
                    op_types_to_quantize=ops,
                    nodes_to_exclude=nodes_to_exclude,
                    extra_options=extra_options,
                )
        except Exception:
            sys.stderr.write(log.getvalue())
            raise

    # The batch dimension must stay dynamic: run batch 1 and batch 2 on the result.
    check = ort.InferenceSession(tmp_output, providers=["CPUExecutionProvider"])
    for b in (1, 2):
        out = check.run(None, {inp.name: np.stack(tensors[:b])})[0]
        if out.shape[0] != b:
            raise RuntimeError("INT8 model gave batch %d for input batch %d" % (out.shape[0], b))
    del check
    os.replace(tmp_output, output)

    mib = lambda p: os.path.getsize(p) / 2**20
    print("quantize_int8: %s -> %s in %.1f s (decode %.1f s): %d calibration frames [%s]; %s %s per-%s %s; "
          "%.2f MiB -> %.2f MiB" % (
              os.path.relpath(model_path, ROOT), os.path.relpath(output, ROOT), time.time() - start, decode_s,
              len(tensors), "; ".join(used), "QDQ", args.activations,
              "channel" if args.per_channel else "tensor", args.calibrate_method, mib(model_path), mib(output)))


if __name__ == "__main__":
    main()
