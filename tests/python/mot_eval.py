#!/usr/bin/env python3
"""MOTA and IDF1 of a tracker's output against MOT ground truth, by motmetrics (the independent
evaluator; run with the checkers' venv, .deps/checkers).

Usage: mot_eval.py GT.txt HYPOTHESIS.txt   (both MOT15-2D: frame,id,left,top,width,height,conf,-1,-1,-1)
Prints one line: `MOTA <x> IDF1 <y> switches <n> frames <f>`.
"""
import sys

import motmetrics as mm


def main():
    gt = mm.io.loadtxt(sys.argv[1], fmt="mot15-2D")
    hypothesis = mm.io.loadtxt(sys.argv[2], fmt="mot15-2D")
    accumulator = mm.utils.compare_to_groundtruth(gt, hypothesis, "iou", distth=0.5)
    summary = mm.metrics.create().compute(accumulator, metrics=["mota", "idf1", "num_switches", "num_frames"], name="run")
    row = summary.loc["run"]
    print("MOTA %.4f IDF1 %.4f switches %d frames %d" % (row["mota"], row["idf1"], row["num_switches"], row["num_frames"]))


if __name__ == "__main__":
    main()
