#!/usr/bin/env python3
"""Quantise the FP32 YOLOv3-tiny ONNX model to INT8 (ONNX Runtime static quantisation, QDQ format),
calibrated on real frames of the sample videos.

Usage (defaults shown; relative paths resolve against the repository root, the parent of this folder):
    quantize_int8.py --model models/yolov3-tiny-416.onnx --output models/yolov3-tiny-416-int8.onnx \
        --media media/sample_720p_h264.mp4 media/sample_h265.mp4 --frames 48

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
optimisation; no symbolic shape inference: it needs sympy and fails on this model, and ONNX's shape
inference already types every tensor), then quantize_static: QDQ format, QUInt8 activations, QInt8
per-channel 7-bit weights (reduce_range, see below), Percentile calibration (99.999), calibrated in
chunks of 8 frames (bounded memory, about 1 GB; the histogram calibrators otherwise hold every
intermediate tensor of every frame, about 6 GB for 64 frames). Only the backbone is quantised (Conv,
MaxPool, LeakyRelu, Resize and the route Concat); the two detection convolutions and the YOLO decode
head after them (Reshape/Transpose/Slice/Sigmoid/Exp/Add/Mul/Concat) stay FP32, so the raw box and
score logits are not rounded to 8 bits. Quantising the decode head as well breaks the detections
(coordinates in pixels and scores share one 8-bit range). The batch dimension stays dynamic (checked
with batches of 1 and 4 at the end).

Why 7-bit weights (issue 21): ONNX Runtime's U8S8 kernels for AVX2 and AVX-512 without VNNI multiply
with VPMADDUBSW, whose int16 sum of two u8 x s8 products saturates (255 x 127 x 2 > 32767); with VNNI
(VPDPBUSD) the sums are exact. So one model file gave different detections per CPU: with full
8-bit weights, the held-back check below gave 285/292 matched, 48/48 frames natively (AVX-512 VNNI)
but 212/292, 32/48 under `qemu-x86_64 -cpu Haswell` (AVX2, no VNNI; 214/292, 34/48 on the AMD EPYC
of the issue). With weights in [-64, 64] no pair sum can saturate: the INT8 outputs are
byte-identical natively and under Haswell emulation, and the check gives 284/292, 48/48 on both.
U8U8 (`--weights QUInt8 --full-range`) is exact too but lost more (282/292). The same settings give a
byte-identical model file on every run. Percentile 99.9999, MinMax, Entropy, 24 or 96 calibration
frames also pass; Percentile 99.99 and below do not (counts within +-1).

Check
-----
Before the rename into place, scripts/int8_agreement.py measures the model against FP32 on
held-back frames (frames 0-23 of media/sample_720p_h264.mp4 and media/vtest.avi at 640x480, the
metric of the Swift test INT8DetectorTests); below 0.95 matched or 0.95 of frames with counts within
+-1 the model is refused: nothing is written to `--output` and the exit status is 1.

The result is written to `<output>.tmp` and renamed into place once checked; one summary line is printed.
"""

import argparse
import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

import int8_agreement

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODE_TIMEOUT_S = 120
CHUNK = 8


def repo_path(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


# --- frames --------------------------------------------------------------------------------------

def video_info(path):
    """(width, height, estimated frame count or None) of the first video stream, from gst-discoverer-1.0."""
    res = subprocess.run(["gst-discoverer-1.0", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=60)
    width = re.search(r"^\s*Width:\s*(\d+)", res.stdout, re.M)
    height = re.search(r"^\s*Height:\s*(\d+)", res.stdout, re.M)
    if res.returncode != 0 or not width or not height:
        raise RuntimeError("gst-discoverer-1.0 could not read the video size of %s:\n%s" % (path, res.stdout))
    duration = re.search(r"^\s*Duration:\s*(\d+):(\d+):(\d+(?:\.\d*)?)", res.stdout, re.M)
    rate = re.search(r"^\s*Frame rate:\s*(\d+)/(\d+)", res.stdout, re.M)
    frames = None
    if duration and rate and int(rate.group(2)) > 0:
        seconds = int(duration.group(1)) * 3600 + int(duration.group(2)) * 60 + float(duration.group(3))
        frames = int(round(seconds * int(rate.group(1)) / int(rate.group(2)))) or None
    return int(width.group(1)), int(height.group(1)), frames


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
    """`count` pre-processed frames spread evenly from frame `first` to the last frame of the video.

    Returns ([(frame index, tensor)], frame count). The video is streamed once through a pipe (RGBx,
    so rows have no padding). Kept as candidates: the frames at the evenly spaced positions planned
    from gst-discoverer's duration x frame rate; frames from `first` on at a stride that doubles
    whenever more than 2*count are held (so memory stays bounded whatever the real frame count); and
    the last frame. At the end the candidate nearest to each of `count` evenly spaced positions from
    `first` to the real last frame is taken (the planned frames exactly, when the estimate was right).
    """
    w, h, estimate = video_info(path)
    letterbox = Letterbox(w, h, net_w, net_h)
    frame_bytes = w * h * 4
    cmd = ["gst-launch-1.0", "-q", "filesrc", "location=" + path, "!", "decodebin", "!", "videoconvert", "!",
           "video/x-raw,format=RGBx,width=%d,height=%d" % (w, h), "!", "fdsink", "fd=1"]
    planned = set()
    if estimate and estimate - first >= count:
        planned = set(np.linspace(first, estimate - 1, count).round().astype(int).tolist())
    candidates = {}                  # frame index -> tensor
    strided, stride, index = [], 1, 0  # strided: frame indices first + k * stride
    bufs = [bytearray(frame_bytes), bytearray(frame_bytes)]   # the frame being read, the previous one
    tensor = lambda buf: letterbox(np.frombuffer(buf, np.uint8).reshape(h, w, 4)[:, :, :3])
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        timer = threading.Timer(DECODE_TIMEOUT_S, proc.kill)
        timer.start()
        try:
            while True:
                view, got = memoryview(bufs[index % 2]), 0
                while got < frame_bytes:
                    n = proc.stdout.readinto(view[got:])
                    if not n:
                        break
                    got += n
                if got < frame_bytes:
                    break
                on_stride = index >= first and (index - first) % stride == 0
                if on_stride or index in planned:
                    candidates[index] = tensor(bufs[index % 2])
                if on_stride:
                    strided.append(index)
                    if len(strided) > 2 * count:
                        for dropped in strided[1::2]:
                            if dropped not in planned:
                                del candidates[dropped]
                        strided, stride = strided[::2], stride * 2
                index += 1
            proc.stdout.close()
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if rc != 0:
        raise RuntimeError("decoding %s failed (rc %d, timeout %d s):\n%s" % (path, rc, DECODE_TIMEOUT_S, stderr))
    last = index - 1
    if last - first + 1 < count:
        raise RuntimeError("%s: %d frames, too few after frame %d for %d calibration frames"
                           % (path, index, first, count))
    if last not in candidates:
        candidates[last] = tensor(bufs[last % 2])
    picks = set()
    for target in np.linspace(first, last, count).round():
        picks.add(min((i for i in candidates if i not in picks), key=lambda i: (abs(i - target), i)))
    return [(i, candidates[i]) for i in sorted(picks)], index


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
    ap.add_argument("--frames", type=int, default=48, help="calibration frames in all (split over the videos)")
    ap.add_argument("--first-frame", type=int, default=100,
                    help="first frame eligible for calibration (frames 0-23 are the accuracy tests')")
    ap.add_argument("--activations", choices=["QUInt8", "QInt8"], default="QUInt8")
    ap.add_argument("--weights", choices=["QInt8", "QUInt8"], default="QInt8")
    ap.add_argument("--reduce-range", dest="reduce_range", action="store_true", default=True,
                    help="7-bit weights (default): no int16 saturation in the U8S8 kernels of CPUs without VNNI")
    ap.add_argument("--full-range", dest="reduce_range", action="store_false",
                    help="8-bit weights: results then depend on the CPU (VNNI or not)")
    ap.add_argument("--per-channel", dest="per_channel", action="store_true", default=True)
    ap.add_argument("--per-tensor", dest="per_channel", action="store_false")
    ap.add_argument("--calibrate-method", choices=["MinMax", "Entropy", "Percentile"], default="Percentile")
    ap.add_argument("--percentile", type=float, default=99.999, help="for --calibrate-method Percentile")
    ap.add_argument("--quantize-head", action="store_true",
                    help="also quantise the YOLO decode head (default: backbone operators only)")
    ap.add_argument("--quantize-detection-convs", action="store_true",
                    help="also quantise the last convolutions, which feed the decode head (default: FP32)")
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
    if args.first_frame < 24:
        print("quantize_int8: warning: --first-frame %d lets calibration use frames 0-23, which the accuracy "
              "tests use" % args.first_frame, file=sys.stderr)

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
        # ONNX shape inference gives every tensor its shape (batch symbolic); ORT's symbolic shape
        # inference would need sympy and fails on this model ("Incomplete symbolic shape inference").
        quant_pre_process(model_path, prepared, skip_symbolic_shape=True)

        # What stays FP32 (default): the YOLO decode head (Reshape/Transpose/Slice/Sigmoid/Exp/Add/Mul and
        # its Concat nodes, i.e. every Concat but the backbone's route, which feeds a Conv) and the two
        # detection convolutions feeding it (their outputs are the raw box/score logits).
        graph = onnx.load(prepared).graph
        consumers = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node.op_type)
        graph_outputs = {o.name for o in graph.output}
        ops = None if args.quantize_head else ["Conv", "MaxPool", "LeakyRelu", "Resize", "Concat"]
        nodes_to_exclude = []
        for node in graph.node:
            users = consumers.get(node.output[0], [])
            if not args.quantize_head and node.op_type == "Concat" and (
                    node.output[0] in graph_outputs or any(t != "Conv" for t in users)):
                nodes_to_exclude.append(node.name)
            if not args.quantize_detection_convs and node.op_type == "Conv" and users and \
                    all(t == "Reshape" for t in users):
                nodes_to_exclude.append(node.name)
        n_convs = sum(1 for node in graph.node if node.name in nodes_to_exclude and node.op_type == "Conv")
        fp32 = " + ".join(([] if args.quantize_head else ["decode head"]) +
                          (["%d detection convs" % n_convs] if n_convs else [])) or "nothing"
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
                    weight_type=getattr(QuantType, args.weights),
                    reduce_range=args.reduce_range,
                    per_channel=args.per_channel,
                    calibrate_method=getattr(CalibrationMethod, args.calibrate_method),
                    op_types_to_quantize=ops,
                    nodes_to_exclude=nodes_to_exclude,
                    extra_options=extra_options,
                )
            # The batch dimension must stay dynamic: run batches of 1 and 4 on the result.
            check = ort.InferenceSession(tmp_output, providers=["CPUExecutionProvider"])
            for b in (1, 4):
                out = check.run(None, {inp.name: np.stack([tensors[i % len(tensors)] for i in range(b)])})[0]
                if out.shape[0] != b or not np.isfinite(out).all():
                    raise RuntimeError("INT8 model: batch %d gave output %s%s" % (
                        b, out.shape, "" if np.isfinite(out).all() else " with non-finite values"))
            del check
        except BaseException:
            sys.stderr.write(log.getvalue())
            if os.path.exists(tmp_output):
                os.remove(tmp_output)
            raise
    # A model that disagrees with FP32 on held-back frames (the Swift test's metric) is not installed.
    try:
        agreement = int8_agreement.measure(model_path, tmp_output)
    except BaseException:
        os.remove(tmp_output)
        raise
    if not int8_agreement.passes(agreement):
        os.remove(tmp_output)
        sys.exit("quantize_int8: INT8 model refused, it disagrees with FP32 on %d held-back frames: %s; "
                 "nothing written to %s" % (agreement["frames"], int8_agreement.figures(agreement),
                                            int8_agreement.shown(output)))
    os.replace(tmp_output, output)

    mib = lambda p: os.path.getsize(p) / 2**20
    print("quantize_int8: %s -> %s in %.1f s (decode %.1f s): %d calibration frames [%s]; QDQ %s activations, "
          "%s%s per-%s weights, %s calibration, FP32 %s; %.2f MiB -> %.2f MiB; agreement with FP32 on %d "
          "held-back frames: %s" % (
              int8_agreement.shown(model_path), int8_agreement.shown(output), time.time() - start, decode_s,
              len(tensors), "; ".join(used), args.activations, args.weights,
              " 7-bit" if args.reduce_range else "", "channel" if args.per_channel else "tensor",
              args.calibrate_method + (" %g" % args.percentile if args.calibrate_method == "Percentile" else ""),
              fp32, mib(model_path), mib(output), agreement["frames"], int8_agreement.figures(agreement)))


if __name__ == "__main__":
    main()
