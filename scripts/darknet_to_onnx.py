#!/usr/bin/env python3
"""Convert a Darknet YOLOv3-tiny model (.cfg + .weights) to ONNX, using only numpy and onnx.

Usage:
    darknet_to_onnx.py --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights --size 416 --output model.onnx

Model interface
---------------
Input  `images`: float32 [batch, 3, size, size], RGB, values in 0..1 (Darknet convention: pixel / 255,
                 no mean subtraction), plain resize (no letterbox needed by the model itself).
                 The batch dimension is dynamic (dim_param "batch").
Output `output`: float32 [batch, boxes, 5 + classes]; for yolov3-tiny at 416: [batch, 2535, 85] with
                 2535 = (13*13 + 26*26) * 3.
    Each row: cx, cy, w, h   box centre and size in input pixels (0..size),
              objectness     sigmoid(t_o),
              class[0..C-1]  sigmoid(t_c), NOT multiplied by objectness.
    Decoding (as Darknet): cx = (sigmoid(tx) + grid_x) * stride_x, cy = (sigmoid(ty) + grid_y) * stride_y,
              w = exp(tw) * anchor_w, h = exp(th) * anchor_h, with stride = size / grid and the anchors
              (in input pixels) selected by the [yolo] layer's `mask`.

Box order
---------
    The [yolo] layers in cfg order (for yolov3-tiny: the 13x13 layer first, then the 26x26 layer).
    Within one layer: row-major over the grid (y, then x), with the anchors innermost:
        row = layer_offset + (y * W + x) * A + a        (A = number of anchors in the mask, 3)
    where layer_offset is the total number of rows of the preceding [yolo] layers. This is the same
    row order as OpenCV's Darknet importer ("Region" layer outputs, concatenated in cfg order).

Numerics
--------
    Batch norm is folded into the convolution with eps = 1e-6, as OpenCV's Darknet importer does
    (and as Darknet's own normalize_cpu: sqrt(var + .000001f)). A [maxpool] uses Darknet's padding:
    `padding` defaults to size - 1, split as floor(p/2) left/top and ceil(p/2) right/bottom, padded
    cells never win (ONNX MaxPool pads behave the same), output = (in + padding - size) / stride + 1.
    So the size=2 stride=1 maxpool of yolov3-tiny keeps 13x13 and pads right/bottom by one.
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
BN_EPS = 1e-6
LEAKY_SLOPE = 0.1


# --------------------------------------------------------------------------------------------------
# cfg parsing
# --------------------------------------------------------------------------------------------------
def parse_cfg(path):
    """Returns a list of (section_type, {key: value-string}) in file order."""
    sections = []
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                end = line.find("]")
                if end < 0:
                    raise ValueError("bad section header in %s: %r" % (path, raw))
                sections.append((line[1:end].strip().lower(), {}))
                continue
            if "=" not in line:
                raise ValueError("bad line in %s: %r" % (path, raw))
            if not sections:
                raise ValueError("option before any section in %s: %r" % (path, raw))
            key, value = line.split("=", 1)
            sections[-1][1][key.strip()] = value.strip()
    return sections


def ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


# --------------------------------------------------------------------------------------------------
# weights reading
# --------------------------------------------------------------------------------------------------
class WeightsReader:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        major, minor, revision = np.frombuffer(data, dtype="<i4", count=3, offset=0)
        major, minor, revision = int(major), int(minor), int(revision)
        if major * 10 + minor >= 2 and major < 1000 and minor < 1000:
            seen = int(np.frombuffer(data, dtype="<i8", count=1, offset=12)[0])
            offset = 20
        else:
            seen = int(np.frombuffer(data, dtype="<i4", count=1, offset=12)[0])
            offset = 16
        if major > 1000 or minor > 1000:
            raise ValueError("transposed Darknet weights (major/minor > 1000) are not supported")
        self.version = (major, minor, revision)
        self.seen = seen
        self.data = data
        self.offset = offset

    def take(self, count):
        end = self.offset + 4 * count
        if end > len(self.data):
            raise ValueError("weights file too short: need %d bytes, have %d" % (end, len(self.data)))
        arr = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.offset).astype(np.float32)
        self.offset = end
        return arr

    def remaining(self):
        return len(self.data) - self.offset


# --------------------------------------------------------------------------------------------------
# graph building
# --------------------------------------------------------------------------------------------------
class GraphBuilder:
    def __init__(self):
        self.nodes = []
        self.initializers = []
        self.counter = 0

    def name(self, prefix):
        self.counter += 1
        return "%s_%d" % (prefix, self.counter)

    def const(self, prefix, array):
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, prefix=None, **attrs):
        out = self.name(prefix or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def build(cfg_path, weights_path, size):
    sections = parse_cfg(cfg_path)
    if not sections or sections[0][0] not in ("net", "network"):
        raise ValueError("cfg must start with [net]")
    net = sections[0][1]
    channels = int(net.get("channels", 3))
    height = size if size else int(net.get("height", 416))
    width = size if size else int(net.get("width", 416))

    weights = WeightsReader(weights_path)
    g = GraphBuilder()

    # Per Darknet layer: (tensor name, (C, H, W)).
    outputs = []
    yolo_outputs = []  # decoded [N, rows, 5+classes] tensor names
    total_rows = 0
    num_classes = None
    cur = "images"
    shape = (channels, height, width)

    for index, (kind, opts) in enumerate(sections[1:]):
        c, h, w = shape
        if kind in ("convolutional", "conv"):
            filters = int(opts["filters"])
            ksize = int(opts.get("size", 1))
            stride = int(opts.get("stride", 1))
            pad = int(opts.get("pad", 0))
            padding = ksize // 2 if pad else int(opts.get("padding", 0))
            groups = int(opts.get("groups", 1))
            if groups != 1:
                raise ValueError("layer %d: grouped convolution is not supported" % index)
            bn = int(opts.get("batch_normalize", 0)) == 1
            activation = opts.get("activation", "logistic")

            biases = weights.take(filters)
            if bn:
                scales = weights.take(filters)
                mean = weights.take(filters)
                var = weights.take(filters)
            kernel = weights.take(filters * c * ksize * ksize).reshape(filters, c, ksize, ksize)
            if bn:
                # y = scales * (conv - mean) / sqrt(var + eps) + biases, folded in float64.
                factor = scales.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
                kernel = (kernel.astype(np.float64) * factor[:, None, None, None]).astype(np.float32)
                bias = (biases.astype(np.float64) - mean.astype(np.float64) * factor).astype(np.float32)
            else:
                bias = biases

            wname = g.const("conv%d_w" % index, kernel)
            bname = g.const("conv%d_b" % index, bias)
            cur = g.op("Conv", [cur, wname, bname], prefix="conv%d" % index,
                       kernel_shape=[ksize, ksize], strides=[stride, stride],
                       pads=[padding, padding, padding, padding])
            if activation == "leaky":
                cur = g.op("LeakyRelu", [cur], prefix="leaky%d" % index, alpha=LEAKY_SLOPE)
            elif activation == "logistic":
                cur = g.op("Sigmoid", [cur], prefix="logistic%d" % index)
            elif activation == "relu":
                cur = g.op("Relu", [cur], prefix="relu%d" % index)
            elif activation != "linear":
                raise ValueError("layer %d: unsupported activation %r" % (index, activation))
            shape = (filters, (h + 2 * padding - ksize) // stride + 1, (w + 2 * padding - ksize) // stride + 1)

        elif kind in ("maxpool", "max"):
            ksize = int(opts.get("size", 2))
            stride = int(opts.get("stride", 2))
            padding = int(opts.get("padding", ksize - 1))
            before, after = padding // 2, padding - padding // 2
            cur = g.op("MaxPool", [cur], prefix="maxpool%d" % index,
                       kernel_shape=[ksize, ksize], strides=[stride, stride],
                       pads=[before, before, after, after])
            shape = (c, (h + padding - ksize) // stride + 1, (w + padding - ksize) // stride + 1)

        elif kind == "route":
            refs = []
            for ref in ints(opts["layers"]):
                refs.append(ref + index if ref < 0 else ref)
            for ref in refs:
                if not 0 <= ref < index:
                    raise ValueError("layer %d: bad route reference %d" % (index, ref))
            if int(opts.get("groups", 1)) != 1:
                raise ValueError("layer %d: route groups are not supported" % index)
            srcs = [outputs[r] for r in refs]
            hw = {s[1][1:] for s in srcs}
            if len(hw) != 1:
                raise ValueError("layer %d: route inputs differ in spatial size: %s" % (index, hw))
            if len(srcs) == 1:
                cur = srcs[0][0]
            else:
                cur = g.op("Concat", [s[0] for s in srcs], prefix="route%d" % index, axis=1)
            shape = (sum(s[1][0] for s in srcs),) + srcs[0][1][1:]

        elif kind == "upsample":
            stride = int(opts.get("stride", 2))
            if stride < 1:
                raise ValueError("layer %d: downsampling upsample is not supported" % index)
            scales = g.const("upsample%d_scales" % index, np.array([1, 1, stride, stride], dtype=np.float32))
            cur = g.op("Resize", [cur, "", scales], prefix="upsample%d" % index, mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")
            shape = (c, h * stride, w * stride)

        elif kind == "yolo":
            classes = int(opts["classes"])
            mask = ints(opts["mask"])
            anchors = np.array(floats(opts["anchors"]), dtype=np.float32).reshape(-1, 2)
            if float(opts.get("scale_x_y", 1)) != 1:
                raise ValueError("layer %d: scale_x_y != 1 is not supported" % index)
            if int(opts.get("new_coords", 0)) != 0:
                raise ValueError("layer %d: new_coords is not supported" % index)
            if num_classes is None:
                num_classes = classes
            elif num_classes != classes:
                raise ValueError("[yolo] layers disagree on the number of classes")
            na = len(mask)
            attrs = 5 + classes
            if c != na * attrs:
                raise ValueError("layer %d: input has %d channels, expected %d" % (index, c, na * attrs))
            rows = h * w * na

            # [N, A*(5+C), H, W] -> [N, A, 5+C, H, W] -> [N, H, W, A, 5+C] -> [N, H*W*A, 5+C]
            t = g.op("Reshape", [cur, g.const("yolo%d_shape5" % index,
                                              np.array([0, na, attrs, h, w], dtype=np.int64))],
                     prefix="yolo%d_split" % index)
            t = g.op("Transpose", [t], prefix="yolo%d_nhwac" % index, perm=[0, 3, 4, 1, 2])
            t = g.op("Reshape", [t, g.const("yolo%d_shape3" % index,
                                            np.array([0, rows, attrs], dtype=np.int64))],
                     prefix="yolo%d_rows" % index)

            def part(start, end, tag):
                return g.op("Slice", [t,
                                      g.const("yolo%d_%s_start" % (index, tag), np.array([start], dtype=np.int64)),
                                      g.const("yolo%d_%s_end" % (index, tag), np.array([end], dtype=np.int64)),
                                      g.const("yolo%d_%s_axis" % (index, tag), np.array([2], dtype=np.int64))],
                            prefix="yolo%d_%s" % (index, tag))

            # Constant per-row tables, row = (y*W + x)*A + a.
            gy, gx, _ = np.meshgrid(np.arange(h), np.arange(w), np.arange(na), indexing="ij")
            grid = np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1).astype(np.float32)  # [rows, 2]
            stride_xy = np.array([width / w, height / h], dtype=np.float32)
            anchor_wh = np.tile(anchors[mask], (h * w, 1)).astype(np.float32)            # [rows, 2]

            xy = g.op("Sigmoid", [part(0, 2, "xy")], prefix="yolo%d_xy_sig" % index)
            xy = g.op("Add", [xy, g.const("yolo%d_grid" % index, grid)], prefix="yolo%d_xy_grid" % index)
            xy = g.op("Mul", [xy, g.const("yolo%d_stride" % index, stride_xy)], prefix="yolo%d_xy_px" % index)
            wh = g.op("Exp", [part(2, 4, "wh")], prefix="yolo%d_wh_exp" % index)
            wh = g.op("Mul", [wh, g.const("yolo%d_anchors" % index, anchor_wh)], prefix="yolo%d_wh_px" % index)
            scores = g.op("Sigmoid", [part(4, attrs, "scores")], prefix="yolo%d_scores" % index)
            yolo_outputs.append(g.op("Concat", [xy, wh, scores], prefix="yolo%d_out" % index, axis=2))
            total_rows += rows
            # A [yolo] layer passes its input through (for later routes).

        else:
            raise ValueError("layer %d: unsupported section [%s]" % (index, kind))

        outputs.append((cur, shape))

    if not yolo_outputs:
        raise ValueError("no [yolo] layers in cfg")
    if weights.remaining() != 0:
        raise ValueError("weights file has %d unused bytes (cfg/weights mismatch?)" % weights.remaining())

    if len(yolo_outputs) == 1:
        g.nodes.append(helper.make_node("Identity", yolo_outputs, ["output"], name="output"))
    else:
        g.nodes.append(helper.make_node("Concat", yolo_outputs, ["output"], name="output", axis=1))

    graph = helper.make_graph(
        g.nodes, "darknet_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", channels, height, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", total_rows, 5 + num_classes])],
        g.initializers)
    model = helper.make_model(graph, producer_name="tributary-darknet_to_onnx",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # onnxruntime-compatible IR for opset 13
    model.doc_string = ("Converted from %s (weights %s, Darknet version %d.%d.%d, seen %d). Output rows: "
                        "cx, cy, w, h (input pixels), objectness, class probabilities (sigmoid, not "
                        "multiplied by objectness)." % (os.path.basename(cfg_path), os.path.basename(weights_path),
                                                        *weights.version, weights.seen))
    return model, (channels, height, width), total_rows, num_classes, len(yolo_outputs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--size", type=int, default=416, help="network input width and height")
    ap.add_argument("--output", required=True)
    args = ap.parse_args(argv)
    if args.size <= 0 or args.size % 32:
        ap.error("--size must be a positive multiple of 32")

    model, (c, h, w), rows, classes, nyolo = build(args.cfg, args.weights, args.size)
    onnx.checker.check_model(model)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.output + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, args.output)
    print("darknet_to_onnx: wrote %s: images [batch,%d,%d,%d] -> output [batch,%d,%d] "
          "(%d yolo layers, %d classes, opset %d, %d nodes)"
          % (args.output, c, h, w, rows, 5 + classes, nyolo, classes, OPSET, len(model.graph.node)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
