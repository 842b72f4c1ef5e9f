"""Whole-tumor segmentation accuracy of ``segment_tumor`` on real MRI.

Runs on every case of ``../shared/data/brats2018`` (BraTS 2018, expert labels;
whole tumor = labels {1, 2, 4}) and reports per case the volume Dice and HD95
(mm), the mean Dice over tumor-bearing slices, and seconds per volume (median of
``--repeats`` runs); then the mean over cases. Variants measured on the same data:
no linking (``beta = 0``), and N4 bias correction first. A leave-one-out check of
the constants: for each case, the (z_threshold, beta) of a small grid that is best
on the other nine cases is applied to it.

Usage::

    python benchmarks/segmentation.py [--data ../shared/data/brats2018] [--repeats 3]

Writes ``benchmarks/results/segmentation.json`` and ``segmentation.md``. Exits 0
with a message when the data folder is absent.
"""
import argparse
import itertools
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pcnnseg import metrics  # noqa: E402
from pcnnseg.io import find_brats_cases, load_brats_case  # noqa: E402
from pcnnseg.preprocess import bias_correct  # noqa: E402
from pcnnseg.segment import LINKING, Z_THRESHOLD, segment_tumor  # noqa: E402

DEFAULT_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "brats2018")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
GRID = list(itertools.product([1.75, 2.0, 2.25], [0.0, 0.05, 0.15]))


def score(mask, truth, spacing_zyx):
    return {"dice": metrics.dice(mask, truth),
            "hd95_mm": metrics.hausdorff95(mask, truth, spacing=spacing_zyx),
            "slice_dice": metrics.mean_tumor_slice_dice(mask, truth),
            "sensitivity": metrics.sensitivity(mask, truth),
            "specificity": metrics.specificity(mask, truth)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data):
        print(f"no data at {args.data}: nothing to evaluate")
        return 0

    rows, grid_dice = [], {g: [] for g in GRID}
    for case_dir in find_brats_cases(args.data):
        case = load_brats_case(case_dir, sequences=("flair",))
        flair = case.images["flair"]
        truth = metrics.brats_regions(case.labels)["whole_tumor"]
        spacing = tuple(reversed(case.geometry.spacing))
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            mask = segment_tumor(flair)
            times.append(time.perf_counter() - t0)
        row = {"case": case.name, "seconds": float(np.median(times)),
               **score(mask, truth, spacing)}
        row["no_linking_dice"] = metrics.dice(segment_tumor(flair, beta=0.0), truth)
        t0 = time.perf_counter()
        corrected = bias_correct(flair, flair > 0)
        row["n4_seconds"] = time.perf_counter() - t0
        row["n4_dice"] = metrics.dice(segment_tumor(corrected), truth)
        for g in GRID:
            grid_dice[g].append(metrics.dice(segment_tumor(flair, z_threshold=g[0], beta=g[1]),
                                             truth))
        rows.append(row)
        print(f"{case.name}: Dice {row['dice']:.3f}, HD95 {row['hd95_mm']:.1f} mm, "
              f"{row['seconds']:.2f} s", flush=True)

    n = len(rows)
    held_out = []
    for i in range(n):
        best = max(GRID, key=lambda g: np.mean([d for j, d in enumerate(grid_dice[g]) if j != i]))
        held_out.append({"case": rows[i]["case"], "chosen": list(best),
                         "dice": grid_dice[best][i]})
    keys = ["dice", "hd95_mm", "slice_dice", "sensitivity", "specificity", "seconds",
            "no_linking_dice", "n4_dice", "n4_seconds"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    summary = {
        "method": f"segment_tumor defaults (z_threshold={Z_THRESHOLD}, beta={LINKING})",
        "cases": n, "mean": mean,
        "leave_one_out": {"grid": [list(g) for g in GRID], "per_case": held_out,
                          "mean_dice": float(np.mean([h["dice"] for h in held_out]))},
        "grid_mean_dice": {f"z={g[0]}, beta={g[1]}": float(np.mean(grid_dice[g])) for g in GRID},
        "threads": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "segmentation.json"), "w") as fh:
        json.dump({"summary": summary, "cases": rows}, fh, indent=2)
    md = _markdown(summary, rows)
    with open(os.path.join(RESULTS, "segmentation.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


def _markdown(summary, rows):
    m = summary["mean"]
    lines = [
        "# Whole-tumor segmentation on BraTS 2018 (FLAIR, no training)",
        "",
        f"{summary['method']}; {summary['cases']} cases of ../shared/data/brats2018, "
        f"{summary['date']}, {summary['threads']} cores. `python benchmarks/segmentation.py`.",
        "Dice and HD95 on the whole volume (HD95: 95th percentile of surface distances, mm); "
        "slice Dice: mean over slices with tumor; seconds: median wall time per volume.",
        "",
        "| case | Dice | HD95 mm | slice Dice | sensitivity | specificity | s/volume | "
        "Dice, no linking | Dice, N4 first |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['dice']:.3f} | {r['hd95_mm']:.1f} | {r['slice_dice']:.3f} | "
                     f"{r['sensitivity']:.3f} | {r['specificity']:.4f} | {r['seconds']:.2f} | "
                     f"{r['no_linking_dice']:.3f} | {r['n4_dice']:.3f} |")
    lines.append(f"| **mean** | **{m['dice']:.3f}** | {m['hd95_mm']:.1f} | {m['slice_dice']:.3f} | "
                 f"{m['sensitivity']:.3f} | {m['specificity']:.4f} | {m['seconds']:.2f} | "
                 f"{m['no_linking_dice']:.3f} | {m['n4_dice']:.3f} |")
    loo = summary["leave_one_out"]
    lines += ["", f"N4 bias correction took {m['n4_seconds']:.1f} s per volume on average.", "",
              "Constants: mean Dice over the 10 cases for each (z_threshold, beta) of the grid:", "",
              "| setting | mean Dice |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in summary["grid_mean_dice"].items()]
    lines += ["", f"Leave-one-out (setting chosen on the other nine cases, applied to the tenth): "
              f"mean Dice {loo['mean_dice']:.3f}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
