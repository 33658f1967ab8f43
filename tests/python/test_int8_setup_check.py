#!/usr/bin/env python3
"""The set-up's INT8 self-check (scripts/quantize_int8.py + scripts/int8_agreement.py).

Run with the set-up's venv: .deps/venv/bin/python tests/python/test_int8_setup_check.py
Needs what scripts/setup.sh makes (models, media). Prints one line per test and `N passed, M failed`;
exits non-zero on any failure.
"""
import os
import re
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUANTIZE = os.path.join(ROOT, "scripts", "quantize_int8.py")
AGREEMENT = os.path.join(ROOT, "scripts", "int8_agreement.py")
FP32 = os.path.join(ROOT, "models", "yolov3-tiny-416.onnx")
INT8 = os.path.join(ROOT, "models", "yolov3-tiny-416-int8.onnx")
FIGURES = re.compile(r"\d+/\d+ FP32 detections matched \(\d\.\d{3}\), counts within ±1 on \d+/\d+ frames "
                     r"\(\d\.\d{3}\); bar 0\.95 / 0\.95")


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=900)


def test_broken_calibration_is_refused():
    # Percentile 90 clips most activations: a model that finds almost nothing FP32 finds.
    with tempfile.TemporaryDirectory(prefix="int8-check.") as tmp:
        output = os.path.join(tmp, "broken-int8.onnx")
        res = run(QUANTIZE, "--output", output, "--percentile", "90")
        assert res.returncode == 1, "exit status %d, expected 1\n%s%s" % (res.returncode, res.stdout, res.stderr)
        assert "INT8 model refused" in res.stderr and FIGURES.search(res.stderr), res.stderr
        assert "nothing written to " + output in res.stderr, res.stderr
        assert sorted(os.listdir(tmp)) == [], "left behind: %s" % os.listdir(tmp)


def test_setup_model_passes():
    assert os.path.exists(INT8), "run scripts/setup.sh first (%s)" % INT8
    res = run(AGREEMENT)
    lines = res.stdout.strip().splitlines()
    assert res.returncode == 0 and len(lines) == 1, "exit status %d\n%s%s" % (res.returncode, res.stdout, res.stderr)
    assert "on 48 held-back frames" in lines[0] and FIGURES.search(lines[0]) and lines[0].endswith(": pass"), lines[0]


def test_agreement_fails_below_the_bar():
    # A stand-in "INT8" model: FP32 with the first convolution's weights scaled down.
    import numpy as np
    import onnx
    from onnx import numpy_helper
    model = onnx.load(FP32)
    first_conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weight = next(t for t in model.graph.initializer if t.name == first_conv.input[1])
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * np.float32(0.3), weight.name))
    with tempfile.TemporaryDirectory(prefix="int8-check.") as tmp:
        bad = os.path.join(tmp, "bad.onnx")
        onnx.save(model, bad)
        res = run(AGREEMENT, "--int8", bad)
    assert res.returncode == 1, "exit status %d, expected 1\n%s%s" % (res.returncode, res.stdout, res.stderr)
    assert FIGURES.search(res.stdout) and res.stdout.strip().endswith(": FAIL"), res.stdout


def main():
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
            passed += 1
            print("PASS", name)
        except Exception:
            failed += 1
            print("FAIL", name)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
