#!/usr/bin/env python3
"""Checks models/yolov3-tiny-416.onnx (scripts/darknet_to_onnx.py) against OpenCV's own Darknet importer.

Run with the venv interpreter (it has onnxruntime):
    .deps/venv/bin/python tests/python/test_model_vs_opencv.py      (or under pytest, if installed)

OpenCV (Debian's python3-opencv) is only importable from the system interpreter /usr/bin/python3, so the
frame decoding and the OpenCV forward pass run there as subprocesses; tensors travel as .npy files.

What is compared, per row (same row order on both sides: yolo layer in cfg order, then (y*W + x)*A + a):
  * OpenCV's Region layer (Darknet [yolo]) rows are
        cx, cy, w, h   normalised by the network input size (0..1)
        objectness     sigmoid
        class j        objectness * sigmoid(class j), set to 0 when <= the layer's `thresh`
                       (cfg `thresh`, default 0.2), and further zeroed by a per-class NMS inside the layer
                       when the cfg sets `nms_threshold` > 0 (OpenCV 4.6's default for [yolo] is 0: no NMS,
                       checked empirically; older OpenCV releases defaulted to 0.4).
    Our model gives cx, cy, w, h in input pixels, objectness, and plain sigmoid class probabilities.
  * Run 1 ("exact"): OpenCV on a copy of the cfg with thresh=0 and nms_threshold=0 in every [yolo]
    section, so no class score is zeroed; everything is compared: boxes / input size, objectness,
    objectness * class probability. Must agree within TOL (1e-4).
  * Run 2 ("stock"): OpenCV on the untouched cfg. Boxes and objectness must agree within TOL, class scores
    wherever OpenCV kept them; the ones it zeroed must be (up to TOL) at or below its threshold or have
    been suppressed by its NMS (reported, not compared).
  * Batch: the model run on a batch of two different frames gives the same per-frame output as batch 1
    (within 1e-5).
"""

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "yolov3-tiny-416.onnx")
DARKNET = os.path.join(ROOT, ".deps", "darknet")
CFG = os.path.join(DARKNET, "yolov3-tiny.cfg")
WEIGHTS = os.path.join(DARKNET, "yolov3-tiny.weights")
NAMES = os.path.join(DARKNET, "coco.names")
VIDEO = os.path.join(ROOT, "media", "vtest.avi")
SYSTEM_PYTHON = "/usr/bin/python3"
SIZE = 416
FRAMES = (100, 200)
TOL = 1e-4
BATCH_TOL = 1e-5

# Runs under /usr/bin/python3: decode frames, plain resize, BGR->RGB, /255, NCHW float32.
PREPARE = r"""
import sys, cv2, numpy as np
video, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
wanted = [int(v) for v in sys.argv[4:]]
cap = cv2.VideoCapture(video)
if not cap.isOpened():
    sys.exit("cannot open " + video)
index, got = 0, {}
while len(got) < len(wanted):
    ok, frame = cap.read()
    if not ok:
        sys.exit("video ended at frame %d before frames %s" % (index, wanted))
    if index in wanted:
        img = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / np.float32(255.0)
        got[index] = np.ascontiguousarray(img.transpose(2, 0, 1)[None])
    index += 1
for i in wanted:
    np.save("%s/frame%d.npy" % (out, i), got[i])
print("frames %s: %dx%d -> [1,3,%d,%d]" % (wanted, frame.shape[1], frame.shape[0], size, size))
"""

# Runs under /usr/bin/python3: OpenCV's Darknet importer on the exact same input tensor.
OPENCV_FORWARD = r"""
import sys, cv2, numpy as np
cfg, weights, blob_path, out = sys.argv[1:5]
net = cv2.dnn.readNetFromDarknet(cfg, weights)
net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
net.setInput(np.load(blob_path))
names = net.getUnconnectedOutLayersNames()
outs = net.forward(names)
for i, o in enumerate(outs):
    np.save("%s/out%d.npy" % (out, i), o)
print("opencv %s: outputs %s" % (cv2.__version__, ", ".join("%s %s" % (n, tuple(o.shape)) for n, o in zip(names, outs))))
"""


def system_python(code, *args):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    res = subprocess.run([SYSTEM_PYTHON, "-c", code] + [str(a) for a in args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)
    if res.returncode != 0:
        raise RuntimeError("%s failed (rc %d):\n%s%s" % (SYSTEM_PYTHON, res.returncode, res.stdout, res.stderr))
    return res.stdout.strip()


def cfg_without_thresholds(src, dst):
    """Copy of the cfg whose [yolo] sections have thresh=0 and nms_threshold=0 (nothing zeroed)."""
    out, in_yolo = [], False

    def close_section():
        if in_yolo:
            out.extend(["thresh=0", "nms_threshold=0"])

    with open(src) as f:
        for line in f.read().splitlines():
            s = line.strip()
            if s.startswith("["):
                close_section()
                in_yolo = s.lower().startswith("[yolo]")
            elif in_yolo and s.split("=")[0].strip() in ("thresh", "nms_threshold"):
                continue
            out.append(line)
    close_section()
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


def yolo_thresholds(cfg):
    """(thresh, nms_threshold) per [yolo] section, with OpenCV 4.6's defaults (0.2, 0) when absent."""
    res, cur = [], None
    with open(cfg) as f:
        for line in f:
            s = line.strip()
            if s.startswith("["):
                cur = {} if s.lower().startswith("[yolo]") else None
                if cur is not None:
                    res.append(cur)
            elif cur is not None and "=" in s and not s.startswith("#"):
                k, v = s.split("=", 1)
                cur[k.strip()] = v.strip()
    return [(float(d.get("thresh", 0.2)), float(d.get("nms_threshold", 0.0))) for d in res]


def opencv_forward(tmp, cfg, blob_path, tag):
    out = os.path.join(tmp, tag)
    os.makedirs(out)
    info = system_python(OPENCV_FORWARD, cfg, WEIGHTS, blob_path, out)
    outs, i = [], 0
    while os.path.exists(os.path.join(out, "out%d.npy" % i)):
        outs.append(np.load(os.path.join(out, "out%d.npy" % i)))
        i += 1
    return outs, info


def run_model(sess, blob):
    return sess.run(["output"], {"images": blob})[0]


def compare(ours, cv_rows, thresholds, layer_rows, exact):
    """ours: [rows, 85] (pixels, sigmoid probs); cv_rows: [rows, 85] OpenCV's format. Returns a dict of max diffs."""
    boxes = ours[:, :4] / np.float32(SIZE)
    obj = ours[:, 4]
    scores = ours[:, 5:] * obj[:, None]
    d = {
        "box (normalised)": float(np.abs(boxes - cv_rows[:, :4]).max()),
        "box (pixels, for info)": float(np.abs(ours[:, :4] - cv_rows[:, :4] * SIZE).max()),
        "objectness": float(np.abs(obj - cv_rows[:, 4]).max()),
    }
    cv_scores = cv_rows[:, 5:]
    kept = cv_scores != 0
    d["class score obj*p (where OpenCV kept)"] = float(np.abs(scores - cv_scores)[kept].max()) if kept.any() else 0.0
    d["_kept"] = int(kept.sum())
    d["_total"] = int(kept.size)
    if exact:
        d["_zeroed_ok"] = kept.all()
    else:
        # Zeroed entries: below/at the layer threshold, or removed by OpenCV's in-layer NMS.
        thr = np.concatenate([np.full(n, t, dtype=np.float32) for n, (t, _) in zip(layer_rows, thresholds)])
        zeroed = ~kept
        above = zeroed & (scores > thr[:, None] + TOL)
        d["_zeroed_above_thresh"] = int(above.sum())
        nms_on = any(n > 0 for _, n in thresholds)
        d["_zeroed_ok"] = nms_on or not above.any()
    return d


def test_model_vs_opencv():
    import onnxruntime as ort

    for p in (MODEL, CFG, WEIGHTS, VIDEO, SYSTEM_PYTHON):
        assert os.path.exists(p), "missing %s (run scripts/setup.sh)" % p

    tmp = tempfile.mkdtemp(prefix="tributary_ort_vs_cv_")
    try:
        print(system_python(PREPARE, VIDEO, SIZE, tmp, *FRAMES))
        blob_paths = [os.path.join(tmp, "frame%d.npy" % i) for i in FRAMES]
        blobs = [np.load(p) for p in blob_paths]
        for b in blobs:
            assert b.shape == (1, 3, SIZE, SIZE) and b.dtype == np.float32, (b.shape, b.dtype)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        sess = ort.InferenceSession(MODEL, opts, providers=["CPUExecutionProvider"])
        inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
        print("onnxruntime %s: %s %s -> %s %s" % (ort.__version__, inp.name, inp.shape, out.name, out.shape))
        ours = run_model(sess, blobs[0])
        assert ours.shape == (1, 2535, 85), ours.shape
        ours = ours[0]

        failures = []
        worst = 0.0

        # --- OpenCV runs on frame FRAMES[0] ---
        exact_cfg = os.path.join(tmp, "yolov3-tiny-nothresh.cfg")
        cfg_without_thresholds(CFG, exact_cfg)
        for tag, cfg, exact in (("exact", exact_cfg, True), ("stock", CFG, False)):
            outs, info = opencv_forward(tmp, cfg, blob_paths[0], tag)
            print("[%s] %s" % (tag, info))
            layer_rows = [o.shape[0] for o in outs]
            assert [o.shape[1] for o in outs] == [85] * len(outs), [o.shape for o in outs]
            assert layer_rows == [13 * 13 * 3, 26 * 26 * 3], layer_rows
            cv_rows = np.concatenate(outs, axis=0)
            d = compare(ours, cv_rows, yolo_thresholds(cfg), layer_rows, exact)
            for k, v in d.items():
                if not k.startswith("_"):
                    print("[%s]   max |diff| %-38s %.3g" % (tag, k, v))
            print("[%s]   OpenCV class scores kept (non-zero): %d of %d%s" % (
                tag, d["_kept"], d["_total"],
                "" if exact else "; zeroed although obj*p > thresh + tol: %d" % d["_zeroed_above_thresh"]))
            for k in ("box (normalised)", "objectness", "class score obj*p (where OpenCV kept)"):
                worst = max(worst, d[k])
                if not d[k] <= TOL:
                    failures.append("[%s] %s: max |diff| %.3g > %g" % (tag, k, d[k], TOL))
            if not d["_zeroed_ok"]:
                failures.append("[%s] OpenCV zeroed class scores the model says are above threshold" % tag)

        # --- batch of two different frames vs batch 1 ---
        single = [run_model(sess, b)[0] for b in blobs]
        batch = run_model(sess, np.concatenate(blobs, axis=0))
        assert batch.shape == (2, 2535, 85), batch.shape
        bd = max(float(np.abs(batch[i] - single[i]).max()) for i in range(2))
        frames_differ = float(np.abs(single[0] - single[1]).max())
        print("[batch] max |diff| batch-2 vs batch-1: %.3g (frames %s differ by up to %.3g)"
              % (bd, FRAMES, frames_differ))
        if not bd <= BATCH_TOL:
            failures.append("[batch] batch-2 vs batch-1 max |diff| %.3g > %g" % (bd, BATCH_TOL))
        if frames_differ == 0:
            failures.append("[batch] the two frames give identical outputs; test is meaningless")

        # Top detections, for a human glance.
        names = open(NAMES).read().split("\n") if os.path.exists(NAMES) else []
        conf = ours[:, 4] * ours[:, 5:].max(axis=1)
        for r in np.argsort(-conf)[:3]:
            c = int(ours[r, 5:].argmax())
            print("  row %4d: %-8s conf %.3f box cx=%.1f cy=%.1f w=%.1f h=%.1f"
                  % (r, names[c] if c < len(names) else c, conf[r], *ours[r, :4]))

        print("max |diff| ONNX Runtime vs OpenCV over compared quantities: %.3g (tolerance %g)" % (worst, TOL))
        assert not failures, "\n".join(failures)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    try:
        test_model_vs_opencv()
    except AssertionError as e:
        print("FAIL: %s" % e)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
