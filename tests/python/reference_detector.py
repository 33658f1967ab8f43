#!/usr/bin/env python3
"""Independent reference for Tributary's detector: the same frames through ONNX Runtime's Python
API with plain numpy pre- and post-processing, written separately from the Swift code.

Usage: reference_detector.py DUMP_DIR CONFIG
DUMP_DIR holds frames written by the Swift test (`<name>.rgba`, raw RGBA rows of width*4 bytes,
size in `frames.txt`) and the Swift detections (`swift.txt`: name class conf left top width height).
Checks: same number of objects per frame and class, matched boxes IoU >= 0.9, confidences within
1e-3. Exits non-zero on any mismatch.
"""
import configparser
import os
import sys

import numpy as np
import onnxruntime as ort


def read_config(path):
    parser = configparser.ConfigParser(inline_comment_prefixes=None, interpolation=None)
    parser.optionxform = str
    with open(path) as f:
        parser.read_string(f.read())
    prop, attrs = parser["property"], parser["class-attrs-all"]
    folder = os.path.dirname(os.path.abspath(path))
    return {
        "model": os.path.normpath(os.path.join(folder, prop["onnx-file"])),
        "scale": float(prop["net-scale-factor"]),
        "offsets": [float(x) for x in prop.get("offsets", "0;0;0").split(";") if x.strip()],
        "bgr": prop.get("model-color-format", "0") == "1",
        "keep_aspect": prop.get("maintain-aspect-ratio", "0") == "1",
        "symmetric": prop.get("symmetric-padding", "0") == "1",
        "threshold": float(attrs.get("pre-cluster-threshold", "0.2")),
        "iou": float(attrs.get("nms-iou-threshold", "0.3")),
        "topk": int(attrs.get("topk", "-1")),
    }


def bilinear_resize(image, out_w, out_h):
    """Half-pixel-centre bilinear resize (OpenCV INTER_LINEAR convention) in float32."""
    in_h, in_w = image.shape[:2]
    def taps(n_out, n_in):
        s = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / n_out) - np.float32(0.5), 0)
        i0 = np.minimum(s.astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (s - i0).astype(np.float32)
    y0, y1, wy = taps(out_h, in_h)
    x0, x1, wx = taps(out_w, in_w)
    img = image.astype(np.float32)
    top = img[y0][:, x0] * (1 - wx)[None, :, None] + img[y0][:, x1] * wx[None, :, None]
    bottom = img[y1][:, x0] * (1 - wx)[None, :, None] + img[y1][:, x1] * wx[None, :, None]
    return top * (1 - wy)[:, None, None] + bottom * wy[:, None, None]


def preprocess(rgb, cfg, net_w, net_h):
    h, w = rgb.shape[:2]
    if cfg["keep_aspect"]:
        r = min(net_w / w, net_h / h)
        sw, sh = min(net_w, max(1, round(w * r))), min(net_h, max(1, round(h * r)))
    else:
        sw, sh = net_w, net_h
    px = (net_w - sw) // 2 if cfg["symmetric"] else 0
    py = (net_h - sh) // 2 if cfg["symmetric"] else 0
    canvas = np.zeros((net_h, net_w, 3), np.float32)
    canvas[py:py + sh, px:px + sw] = bilinear_resize(rgb, sw, sh)
    if cfg["bgr"]:
        canvas = canvas[:, :, ::-1]
    offsets = np.array(cfg["offsets"] or [0, 0, 0], np.float32)
    tensor = np.float32(cfg["scale"]) * (canvas - offsets)
    return tensor.transpose(2, 0, 1)[None], (sw / w, sh / h, px, py)


def iou(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0.0, min(ax2, bx2) - max(a[0], b[0])), max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def detect(output, cfg, transform, w, h):
    sx, sy, px, py = transform
    obj = output[:, 4]
    probs = output[:, 5:]
    cls = probs.argmax(axis=1)
    conf = obj * probs[np.arange(len(cls)), cls]
    keep = conf >= cfg["threshold"]
    boxes = []
    for c in sorted(set(cls[keep].tolist())):
        idx = np.where(keep & (cls == c))[0]
        idx = idx[np.argsort(-conf[idx], kind="stable")]
        kept = []
        for i in idx:
            cx, cy, bw, bh = output[i, :4]
            rect = (cx - bw / 2, cy - bh / 2, bw, bh)
            if all(iou(rect, k[1]) <= cfg["iou"] for k in kept):
                kept.append((i, rect))
            if cfg["topk"] > 0 and len(kept) >= cfg["topk"]:
                break
        for i, (l, t, bw, bh) in kept:
            x0 = min(max((l - px) / sx, 0), w); y0 = min(max((t - py) / sy, 0), h)
            x1 = min(max((l + bw - px) / sx, 0), w); y1 = min(max((t + bh - py) / sy, 0), h)
            if x1 > x0 and y1 > y0:
                boxes.append((int(c), float(conf[i]), (x0, y0, x1 - x0, y1 - y0)))
    return boxes


def main():
    dump, config = sys.argv[1], sys.argv[2]
    cfg = read_config(config)
    session = ort.InferenceSession(cfg["model"], providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    net_h, net_w = inp.shape[2], inp.shape[3]
    frames = [line.split() for line in open(os.path.join(dump, "frames.txt")) if line.strip()]
    swift = {}
    for line in open(os.path.join(dump, "swift.txt")):
        p = line.split()
        if p:
            swift.setdefault(p[0], []).append((int(p[1]), float(p[2]), tuple(map(float, p[3:7]))))
    failures, matched, total_ref = [], 0, 0
    worst_iou, worst_conf = 1.0, 0.0
    for name, w, h in frames:
        w, h = int(w), int(h)
        rgba = np.fromfile(os.path.join(dump, name + ".rgba"), np.uint8).reshape(h, w, 4)
        tensor, transform = preprocess(rgba[:, :, :3], cfg, net_w, net_h)
        output = session.run(None, {inp.name: tensor})[0][0]
        ref = detect(output, cfg, transform, w, h)
        got = swift.get(name, [])
        total_ref += len(ref)
        for c in sorted({d[0] for d in ref} | {d[0] for d in got}):
            r = [d for d in ref if d[0] == c]
            g = [d for d in got if d[0] == c]
            if len(r) != len(g):
                failures.append(f"{name}: class {c}: reference {len(r)} objects, Swift {len(g)}")
                continue
            used = set()
            for rd in sorted(r, key=lambda d: -d[1]):
                best, best_iou = None, -1.0
                for j, gd in enumerate(g):
                    if j not in used and iou(rd[2], gd[2]) > best_iou:
                        best, best_iou = j, iou(rd[2], gd[2])
                used.add(best)
                dconf = abs(rd[1] - g[best][1])
                worst_iou, worst_conf = min(worst_iou, best_iou), max(worst_conf, dconf)
                if best_iou < 0.9 or dconf > 1e-3:
                    failures.append(f"{name}: class {c}: IoU {best_iou:.4f}, confidence {rd[1]:.5f} vs {g[best][1]:.5f}")
                else:
                    matched += 1
    print(f"reference: {len(frames)} frames, {total_ref} objects; matched {matched}; "
          f"worst IoU {worst_iou:.5f}; worst |confidence difference| {worst_conf:.2e}")
    for f in failures[:20]:
        print("MISMATCH", f)
    if not frames or total_ref == 0:
        print("FAIL: nothing to compare")
        return 1
    print("PASS" if not failures else f"FAIL: {len(failures)} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
