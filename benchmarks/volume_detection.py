"""Tumor boxes of every slice, read off the whole-tumor map, cross-validated by patient.

Every case of ``../shared/data/brats2018`` and ``../shared/data/brats2023_ssa``
runs through :func:`pcnnseg.detect_volume` with the untrained segmentation,
its constants those the case's fold chose on the other folds
(``benchmarks/results/segmentation.json``), and with a fitted readout
(:func:`pcnnseg.fit_segmenter`, fitted on the training folds only). The folds are those of
``benchmarks/segmentation.py`` (5 folds by patient, each mixing both
collections). Per slice with brain: the score (whole-tumor area in mm² on the
slice, or minus the distance in mm to the nearest slice with map) and the box;
the truth is the bounding box of the largest connected part of the expert whole
tumor on the slice, and a slice holds a tumor when any of its voxels is
labelled.

Reported, all held-out:

- hit rate (box IoU >= 0.5) on the tumor slices of at least 500 pixels,
  centre of the box in the tumor, median IoU, per collection, with the
  "no tumor" threshold applied (a tumor slice judged tumor-free is a miss);
- slice-level tumor presence: ROC AUC of the score, and sensitivity and
  specificity at the threshold chosen on the training folds (the area that
  maximises sensitivity + specificity there);
- volume level: the share of volumes with at least one slice judged to hold a
  tumor (all development volumes hold one, so only sensitivity);
- milliseconds per slice with brain: the whole ``detect_volume`` (segmentation
  included) and the boxes alone given a mask (the work added to a
  segmentation run), median of ``--repeats`` runs per case, 2 cores.

Per-case results are cached in ``benchmarks/results/.volume_detection_cache.json``
(``--fresh`` ignores it). Writes ``benchmarks/results/volume_detection.json`` and
``volume_detection.md``; exits 0 with a message when no data folder exists.

Usage::

    python benchmarks/volume_detection.py [--data DIR ...] [--fresh] [--repeats 3]
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pcnnseg.boxes import box_iou, largest_component_box  # noqa: E402
from pcnnseg.io import find_brats_cases, load_brats_case, write_bytes_atomic  # noqa: E402
from pcnnseg.volume_detection import BOX_MARGIN, MIN_TUMOR_AREA, _grown, detect_volume  # noqa: E402
from compare import cross_validated_constants  # noqa: E402
from segmentation import DEFAULT_DATA, N_FOLDS, RESULTS, folds_of  # noqa: E402

CACHE = os.path.join(RESULTS, ".volume_detection_cache.json")
CACHE_VERSION = 2   # 2: the score of a slice the map misses is minus its distance
MIN_PIXELS = 500
#: Candidate "no tumor" areas (mm²); 0 keeps every slice with any tumor voxel.
AREAS = (0.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 600.0)
#: Candidate box margins (share of the box's width and height, each side); on
#: ties the smallest.
MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2)
#: Candidate decision levels of the map the boxes are read from, beside the
#: segmentation's own ("own", kept on ties): the untrained segmentation's
#: contrast threshold (``segment_tumor(threshold=...)``), and the fitted readout's
#: probability level. A map cut for the best Dice need not give the best boxes.
BOX_LEVELS = {"default": (0.2, 0.25, 0.3), "fitted": (0.5, 0.6, 0.7, 0.8)}
METHODS = ("default", "fitted")
#: Report headings: "default" is the untrained segmentation (``segmenter=None``),
#: "fitted" a readout fitted on the training folds (like ``segmenter="default"``).
TITLES = {"default": "untrained segmentation (`detect_volume`)",
          "fitted": "fitted readout, fitted on the training folds "
                    "(`detect_volume(..., segmenter=...)`)"}


def slice_records(case, mask, spacing):
    """Per slice with brain: index, score (mm²), box, truth area (px), truth box."""
    truth = case.labels > 0
    brain = next(iter(case.images.values())) != 0
    found = detect_volume(case.images, whole_tumor=mask, spacing=spacing, min_area=0.0,
                          margin=0.0)
    out = []
    for z, d in enumerate(found.slices):
        if not brain[z].any():
            continue
        tbox = largest_component_box(truth[z])
        out.append({"z": z, "score": d.score, "box": None if d.box is None else list(d.box),
                    "truth_px": int(truth[z].sum()),
                    "truth_box": None if tbox is None else list(tbox)})
    return out


def _load(paths):
    cases, collections = {}, {}
    for root in paths:
        if not os.path.isdir(root):
            continue
        for folder in find_brats_cases(root):
            case = load_brats_case(folder)
            cases[case.name] = case
            collections[case.name] = os.path.basename(os.path.normpath(root))
    return cases, collections


def _cache(fresh):
    if not fresh and os.path.exists(CACHE):
        with open(CACHE) as fh:
            saved = json.load(fh)
        if saved.get("version") == CACHE_VERSION:
            return saved["entries"]
    return {}


def _save(entries):
    write_bytes_atomic(CACHE, json.dumps({"version": CACHE_VERSION,
                                          "entries": entries}).encode())


def collect(cases, fold, fresh):
    """Per-case slice records of both methods at each candidate map level
    (``{method: {level: {case: records}}}``, level ``"own"`` the segmentation's
    own), fitting the readout per fold."""
    import dataclasses

    from pcnnseg import segment_tumor
    from pcnnseg.segmenter import LEVELS, SATELLITES, fit_segmenter

    entries = _cache(fresh)
    names = sorted(cases)
    constants, held_out = cross_validated_constants(names)
    if not held_out:
        raise SystemExit("benchmarks/results/segmentation.json lacks these cases' fold "
                         "constants: run benchmarks/segmentation.py first")
    keys = {}
    for k in range(N_FOLDS):
        train = [n for n in names if fold[n] != k]
        test = [n for n in names if fold[n] == k]
        # the key follows the training cases and the fitting's candidate decisions
        tag = hashlib.sha1(" ".join(train).encode()).hexdigest()[:12] + json.dumps(
            [LEVELS, SATELLITES])
        seg = None
        for n in test:
            case = cases[n]
            spacing = tuple(reversed(case.geometry.spacing))
            held = json.dumps(constants[n], sort_keys=True)
            keys[n] = {"default": {"own": f"default {held} {n}"},
                       "fitted": {"own": f"fitted {tag} {n}"}}
            keys[n]["default"].update({t: f"default threshold={t} {held} {n}"
                                       for t in BOX_LEVELS["default"]})
            keys[n]["fitted"].update({v: f"fitted level={v} {tag} {n}"
                                      for v in BOX_LEVELS["fitted"]})
            for level, key in keys[n]["default"].items():
                if key not in entries:
                    chosen = dict(constants[n], **({} if level == "own" else {"threshold": level}))
                    entries[key] = slice_records(case, segment_tumor(case, **chosen), spacing)
                    _save(entries)
            for level, key in keys[n]["fitted"].items():
                if key not in entries:
                    seg = seg or fit_segmenter([cases[t] for t in train])
                    use = seg if level == "own" else dataclasses.replace(seg, level=level)
                    entries[key] = slice_records(case, segment_tumor(case, segmenter=use),
                                                 spacing)
                    _save(entries)
        print(f"fold {k} done", flush=True)
    return {m: {level: {n: entries[keys[n][m][level]] for n in names}
                for level in keys[names[0]][m]} for m in METHODS}


def _flagged(r, area):
    """Whether a slice record is judged to hold a tumor at the "no tumor" ``area``."""
    return r["score"] >= area and r["score"] > 0


def _youden(records, area):
    pos = [r for r in records if r["truth_px"] > 0]
    neg = [r for r in records if r["truth_px"] == 0]
    sens = np.mean([_flagged(r, area) for r in pos]) if pos else math.nan
    spec = np.mean([not _flagged(r, area) for r in neg]) if neg else math.nan
    return sens, spec


def auc(records):
    """ROC AUC of the score for tumor presence (ties count half)."""
    pos = np.array([r["score"] for r in records if r["truth_px"] > 0])
    neg = np.array([r["score"] for r in records if r["truth_px"] == 0])
    if not len(pos) or not len(neg):
        return math.nan
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    values = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(values))
    ranks[order] = _average_ranks(values)
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(sorted_values):
    ranks = np.arange(1, len(sorted_values) + 1, dtype=float)
    start = 0
    for i in range(1, len(sorted_values) + 1):
        if i == len(sorted_values) or sorted_values[i] != sorted_values[start]:
            ranks[start:i] = (start + 1 + i) / 2.0
            start = i
    return ranks


def grown(per_case, margin, shapes):
    """The records with their boxes grown by ``margin`` (share of their width and
    height, each side), as :func:`detect_volume` grows them; ``shapes[name]`` is
    the case's slice shape."""
    return {n: [dict(r, box=None if r["box"] is None
                     else list(_grown(r["box"], margin, shapes[n]))) for r in records]
            for n, records in per_case.items()}


def _hit(r, area):
    return (_flagged(r, area) and r["box"] is not None
            and box_iou(r["box"], r["truth_box"]) >= 0.5)


def _hit_rate(records, area):
    return float(np.mean([_hit(r, area) for r in records if r["truth_px"] >= MIN_PIXELS]))


def _choose(per_level, by_margin, cases):
    """``(level, area, margin)`` for ``cases``: per map level the "no tumor" area
    with the best sensitivity + specificity, then the margin with the best hit
    rate; the level whose boxes then hit most (the first on ties)."""
    best = None
    for level in per_level:
        records = [r for n in cases for r in per_level[level][n]]
        area = max(AREAS, key=lambda a: sum(_youden(records, a)))
        margin = max(MARGINS, key=lambda m: _hit_rate(
            [r for n in cases for r in by_margin[level][m][n]], area))
        rate = _hit_rate([r for n in cases for r in by_margin[level][margin][n]], area)
        if best is None or rate > best[0]:
            best = (rate, level, area, margin)
    return best[1:]


def evaluate(per_level, fold, collections, shapes):
    """Held-out figures of one method: the map level, the "no tumor" area and the
    box margin chosen on the training folds (:func:`_choose`); ``per_level`` maps
    each candidate level (``"own"`` first) to ``{case: records}``."""
    names = sorted(next(iter(per_level.values())))
    by_margin = {level: {m: grown(per_case, m, shapes) for m in MARGINS}
                 for level, per_case in per_level.items()}
    levels, chosen, margins, scored, unpadded = {}, {}, {}, [], []
    for k in range(N_FOLDS):
        levels[k], chosen[k], margins[k] = _choose(
            per_level, by_margin, [n for n in names if fold[n] != k])
        for n in names:
            if fold[n] == k:
                scored += [(n, r, chosen[k]) for r in by_margin[levels[k]][margins[k]][n]]
                unpadded += [(n, r, chosen[k]) for r in per_level[levels[k]][n]]
    rows = {}
    groups = {"all": names}
    for c in sorted(set(collections.values())):
        groups[c] = [n for n in names if collections[n] == c]
    for group, members in groups.items():
        member = set(members)
        hits, centre, ious, pos, neg = [], [], [], [], []
        for n, r, area in scored:
            if n not in member:
                continue
            flagged = _flagged(r, area)
            (pos if r["truth_px"] > 0 else neg).append(flagged)
            if r["truth_px"] >= MIN_PIXELS:
                iou = box_iou(r["box"], r["truth_box"]) if flagged and r["box"] else 0.0
                ious.append(iou)
                hits.append(iou >= 0.5)
                centre.append(flagged and r["box"] is not None and _centre_in(r))
        volumes = [any(_flagged(r, a) for m, r, a in scored if m == n)
                   for n in members]
        rows[group] = {
            "cases": len(members), "tumor_slices": len(hits),
            "hit_rate": float(np.mean(hits)), "centre_in_tumor": float(np.mean(centre)),
            "median_iou": float(np.median(ious)),
            "auc": auc([r for n, r, _ in scored if n in member]),
            "sensitivity": float(np.mean(pos)), "specificity": 1.0 - float(np.mean(neg)),
            "slices_with_tumor": len(pos), "slices_without": len(neg),
            "volumes_flagged": float(np.mean(volumes)),
            "hit_rate_no_margin": float(np.mean(
                [_hit(r, a) for n, r, a in unpadded
                 if n in member and r["truth_px"] >= MIN_PIXELS]))}
    per_case_hits = {n: _hit_rate(by_margin[levels[fold[n]]][margins[fold[n]]][n],
                                  chosen[fold[n]]) for n in names}
    refit_level, refit_area, refit_margin = _choose(per_level, by_margin, names)
    return {"groups": rows, "level_per_fold": levels, "threshold_per_fold": chosen,
            "margin_per_fold": margins,
            "refit": {"level": refit_level, "min_area": refit_area, "margin": refit_margin},
            "per_case_hit_rate": per_case_hits}


def _centre_in(r):
    """Whether the box's centre lies in the truth box (the tumor's largest part)."""
    x, y, w, h = r["box"]
    tx, ty, tw, th = r["truth_box"]
    cx, cy = x + w / 2.0, y + h / 2.0
    return tx <= cx <= tx + tw and ty <= cy <= ty + th


def timing(cases, repeats):
    """Median ms per slice with brain: whole detect_volume, and boxes given a mask."""
    from pcnnseg import segment_tumor

    whole, boxes = [], []
    for n in sorted(cases):
        case = cases[n]
        brain_slices = int((next(iter(case.images.values())) != 0).any(axis=(1, 2)).sum())
        mask = segment_tumor(case)
        detect_volume(case)  # compile and warm
        t_all, t_box = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            detect_volume(case)
            t_all.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            detect_volume(case, whole_tumor=mask)
            t_box.append(time.perf_counter() - t0)
        whole.append(1e3 * np.median(t_all) / brain_slices)
        boxes.append(1e3 * np.median(t_box) / brain_slices)
    return {"ms_per_slice_detect_volume": float(np.median(whole)),
            "ms_per_slice_boxes_given_mask": float(np.median(boxes)),
            "repeats": repeats}


def markdown(report):
    lines = ["# Tumor boxes from the whole-tumor map, cross-validated by patient", "",
             f"{report['n_cases']} cases ({', '.join(f'{c}: {k}' for c, k in report['collections'].items())}), "
             f"5-fold patient-level cross-validation (the folds of `benchmarks/segmentation.py`); "
             f"the fitted readout, the \"no tumor\" area and the box margin are chosen on the "
             f"training folds, every "
             f"figure is held-out from those choices; the segmentation's form (its steps, grids and "
             f"stimulus) was fixed during development on all 22 cases (see segmentation.md). "
             f"{report['date']}, 2 cores. `python benchmarks/volume_detection.py`.",
             "",
             f"Hit: box IoU >= 0.5 with the box of the tumor's largest part, on slices with at least "
             f"{MIN_PIXELS} tumor pixels; a tumor slice judged tumor-free is a miss. Presence: a slice "
             f"holds a tumor when any voxel is labelled; its score is the map's area in mm², "
             "or, on a slice the map does not reach, minus its distance in mm to the "
             "nearest slice it reaches.", ""]
    for method in METHODS:
        r = report["methods"][method]
        lines += [f"## Boxes off the {TITLES[method]}", "",
                  "| cases | tumor slices >= 500 px | hit rate | hit rate, no margin | "
                  "centre in tumor box | median IoU | "
                  "presence AUC | sensitivity | specificity | volumes flagged |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for group, g in r["groups"].items():
            lines.append(f"| {group} ({g['cases']}) | {g['tumor_slices']} | {g['hit_rate']:.3f} | "
                         f"{g['hit_rate_no_margin']:.3f} | "
                         f"{g['centre_in_tumor']:.3f} | {g['median_iou']:.3f} | {g['auc']:.3f} | "
                         f"{g['sensitivity']:.3f} | {g['specificity']:.3f} | "
                         f"{g['volumes_flagged']:.2f} |")
        lines += [                  "", "\"No tumor\" area chosen per fold (mm²): " + ", ".join(
            f"{k}: {v:g}" for k, v in r["threshold_per_fold"].items()) + "; box margin (share "
            "of the box's width and height, each side): "
            + ", ".join(f"{k}: {v:g}" for k, v in r["margin_per_fold"].items())
            + f". Refit on all cases (not a result): {r['refit']['min_area']:g} mm², "
            f"margin {r['refit']['margin']:g}.", ""]
    lines += ["## Ablation: the map's level chosen for boxes", "",
              "The boxes above come from the map the segmentation makes. Here the folds also "
              "choose the level the map is cut at for boxes: the segmentation's own (\"own\"), or "
              "a lower one (the untrained segmentation's contrast threshold "
              + ", ".join(str(v) for v in BOX_LEVELS["default"]) + "; the readout's probability "
              "level " + ", ".join(str(v) for v in BOX_LEVELS["fitted"]) + "), the level "
              "whose boxes hit most on the training folds (with its own area and margin).", "",
              "| segmentation | level per fold | hit rate all | brats2018 | brats2023_ssa | "
              "presence AUC | sensitivity | specificity |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for method in METHODS:
        r = report["map_level_chosen"][method]
        g = r["groups"]
        lines.append(f"| {method} | " + ", ".join(str(v) for v in r["level_per_fold"].values())
                     + f" | {g['all']['hit_rate']:.3f} | "
                     + " | ".join(f"{g[c]['hit_rate']:.3f}" for c in ("brats2018", "brats2023_ssa")
                                  if c in g)
                     + f" | {g['all']['auc']:.3f} | {g['all']['sensitivity']:.3f} | "
                     f"{g['all']['specificity']:.3f} |")
    lines.append("")
    t = report.get("timing")
    if t:
        lines += ["## Cost", "",
                  f"- `detect_volume`, the untrained segmentation included: median {t['ms_per_slice_detect_volume']:.2f} "
                  f"ms per slice with brain (median over cases of the median of {t['repeats']} runs)",
                  f"- boxes read off a mask that a segmentation run already made: median "
                  f"{t['ms_per_slice_boxes_given_mask']:.3f} ms per slice", ""]
    lines += ["## Per case (hit rate, held-out)", "", "| case | untrained | fitted |",
              "|---|---:|---:|"]
    for n in sorted(report["methods"]["default"]["per_case_hit_rate"]):
        lines.append(f"| {n} | {report['methods']['default']['per_case_hit_rate'][n]:.3f} | "
                     f"{report['methods']['fitted']['per_case_hit_rate'][n]:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cases, collections = _load(args.data)
    if not cases:
        print(f"no BraTS cases under {args.data}; nothing to do")
        return 0
    fold = folds_of(collections)
    per_method = collect(cases, fold, args.fresh)
    shapes = {n: c.labels.shape[1:] for n, c in cases.items()}
    report = {"n_cases": len(cases),
              "collections": {c: sum(v == c for v in collections.values())
                              for c in sorted(set(collections.values()))},
              "module_min_tumor_area": MIN_TUMOR_AREA, "module_box_margin": BOX_MARGIN,
              "methods": {m: evaluate({"own": per_method[m]["own"]}, fold, collections,
                                      shapes) for m in METHODS},
              "map_level_chosen": {m: evaluate(per_method[m], fold, collections, shapes)
                                   for m in METHODS},
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.repeats > 0:
        report["timing"] = timing(cases, args.repeats)
    os.makedirs(RESULTS, exist_ok=True)
    write_bytes_atomic(os.path.join(RESULTS, "volume_detection.json"),
                       json.dumps(report, indent=1).encode())
    write_bytes_atomic(os.path.join(RESULTS, "volume_detection.md"), markdown(report).encode())
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
