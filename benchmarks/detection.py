"""Tumor-box detection on real MRI: hit rate, IoU and milliseconds per slice.

On every FLAIR slice of ``../shared/data/brats2018`` and
``../shared/data/brats2023_ssa`` whose whole tumor covers at least
``--min-area`` pixels, the box returned by
:func:`pcnnseg.detection.detect` is compared with the bounding box of the tumor's
largest connected component. Reported per method: hit rate (IoU >= 0.5), rate
of box centres inside the tumor, median IoU, and the best IoU any scored
candidate reaches (what a perfect ranking would get).

Methods, all on the same slices:

- ``reference``: the default; the reference signature is fitted on the cases
  of the other four folds of a 5-fold patient-level split, each fold mixing both
  collections (the folds of ``benchmarks/segmentation.py``), so no case is
  scored with its own labels; but the detector's settings (``INNER``, ``CONTEXT``, ``N_ITER``,
  ``N_NEIGHBOURS``) were chosen on the BraTS 2018 slices, so its figures there
  are not held-out and likely optimistic (the report says so);
- ``published``: distance to the slice's own signature (``reference=None``);
- both again with the ``selectivesearch`` package's proposals instead of the
  Numba ones.

Timing (``numba`` threads as set, default all cores): the default detector end
to end, and split into stimulus, proposals and signatures, per slice; medians
over slices. ``--save-reference`` also fits the reference on all cases and
writes the one bundled with pcnnseg. Figures per collection and over all.

Usage::

    python benchmarks/detection.py [--data DIR ...] [--no-package]
                                   [--save-reference]

Writes ``benchmarks/results/detection.json`` and ``detection.md``. Exits 0 with a
message when the data folder is absent.
"""
import argparse
import json
import os
import platform
import sys
import time

import numba
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pcnnseg.detection as D  # noqa: E402
from pcnnseg.boxes import box_iou, largest_component_box  # noqa: E402
from pcnnseg.io import find_brats_cases, load_brats_case  # noqa: E402
from pcnnseg.segmentation import intensity_order_model  # noqa: E402
from pcnnseg.simulate import pulse  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segmentation import DEFAULT_DATA, N_FOLDS, folds_of  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")


def load_slices(folders, min_area):
    """{case: (flair slices, whole-tumor masks)} for slices with enough tumor, and
    {case: collection}."""
    cases, collections = {}, {}
    for data in folders:
        if not os.path.isdir(data):
            continue
        for case_dir in find_brats_cases(data):
            case = load_brats_case(case_dir, sequences=("flair",))
            flair, tumor = case.images["flair"], case.labels > 0
            keep = np.flatnonzero(tumor.sum(axis=(1, 2)) >= min_area)
            cases[case.name] = (flair[keep], tumor[keep])
            collections[case.name] = os.path.basename(os.path.normpath(data))
    return cases, collections


def ms(start):
    return 1e3 * (time.perf_counter() - start)


def score_boxes(boxes, distances, truth_box, tumor):
    best = int(np.argmin(distances))
    x, y, w, h = (int(v) for v in boxes[best])
    ious = [box_iou(tuple(int(v) for v in b), truth_box) for b in boxes]
    return {"iou": ious[best], "centre_in": bool(tumor[y + h // 2, x + w // 2]),
            "best_candidate_iou": max(ious)}


def evaluate_slice(image, tumor, reference, use_package):
    """Scores of every method on one slice, and the default detector's timings."""
    brain = image != 0
    truth_box = largest_component_box(tumor)
    t0 = time.perf_counter()
    S = D.detection_stimulus(image, brain)
    t_stim = ms(t0)
    out, timing = {}, {"stimulus_ms": t_stim}
    own = pulse(S, intensity_order_model(), n_iter=D.N_ITER,
                value_range=(0.0, 1.0)).counts / float(S.size)  # the published method's target
    for name in ("fast", "package") if use_package else ("fast",):
        t0 = time.perf_counter()
        boxes = D.candidate_boxes(S, brain, method=name)
        t_prop = ms(t0)
        t0 = time.perf_counter()
        sig = D.box_signatures(S, boxes, patch_size=reference.patch_size,
                               inner=reference.inner, context=reference.context,
                               n_iter=reference.n_iter)
        ref_dist = reference.distance(D.features(sig))
        t_sig = ms(t0)
        self_dist = np.sqrt(((sig[:, 0] - own) ** 2).sum(axis=-1))
        suffix = "" if name == "fast" else " + package proposals"
        out["reference" + suffix] = score_boxes(boxes, ref_dist, truth_box, tumor)
        out["published" + suffix] = score_boxes(boxes, self_dist, truth_box, tumor)
        timing[f"proposals_{name}_ms"] = t_prop
        timing[f"signatures_{name}_ms"] = t_sig
        timing[f"n_candidates_{name}"] = len(boxes)
    timing["parts_ms"] = (timing["stimulus_ms"] + timing["proposals_fast_ms"]
                          + timing["signatures_fast_ms"])
    t0 = time.perf_counter()
    D.detect(image, reference=reference)
    timing["detect_ms"] = ms(t0)
    return out, timing


def summarise(records):
    iou = np.array([r["iou"] for r in records])
    return {"n_slices": len(records), "hit_rate": float(np.mean(iou >= 0.5)),
            "centre_in_tumor": float(np.mean([r["centre_in"] for r in records])),
            "median_iou": float(np.median(iou)),
            "candidates_hit_rate": float(np.mean([r["best_candidate_iou"] >= 0.5
                                                  for r in records]))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    parser.add_argument("--min-area", type=int, default=500)
    parser.add_argument("--no-package", action="store_true",
                        help="skip the selectivesearch package (slow)")
    parser.add_argument("--save-reference", action="store_true",
                        help="fit the reference on all cases and bundle it with pcnnseg")
    args = parser.parse_args(argv)
    cases, collections = load_slices(args.data, args.min_area)
    if not cases:
        print(f"no data at {args.data}: nothing to evaluate")
        return 0
    fold = folds_of(collections)
    D.detect(*next(iter(cases.values()))[0][:1], reference=None)  # compile kernels

    per_method, timings, per_case = {}, [], {}
    for k in range(N_FOLDS):
        train = [c for c in cases if fold[c] != k]
        reference = D.fit_reference(np.concatenate([cases[c][0] for c in train]),
                                    np.concatenate([cases[c][1] for c in train]))
        for name in sorted(c for c in cases if fold[c] == k):
            flair, tumor = cases[name]
            case_hits = []
            for image, mask in zip(flair, tumor):
                scores, timing = evaluate_slice(image, mask, reference, not args.no_package)
                for method, record in scores.items():
                    per_method.setdefault(method, []).append({**record, "case": name})
                timings.append(timing)
                case_hits.append(scores["reference"]["iou"] >= 0.5)
            per_case[name] = {"n_slices": len(flair), "collection": collections[name],
                              "fold": fold[name], "hit_rate": float(np.mean(case_hits))}
            print(f"{name}: {len(flair)} slices, hit rate {per_case[name]['hit_rate']:.2f}",
                  flush=True)

    groups = {"all": set(cases)}
    for c in sorted(set(collections.values())):
        groups[c] = {n for n in cases if collections[n] == c}
    summary = {m: {g: summarise([r for r in records if r["case"] in members])
                   for g, members in groups.items()}
               for m, records in per_method.items()}
    keys = sorted({k for t in timings for k in t})
    median_timing = {k: float(np.median([t[k] for t in timings if k in t])) for k in keys}
    result = {
        "data": [os.path.relpath(d, ROOT) for d in args.data], "min_area_px": args.min_area,
        "collections": {g: len(m) for g, m in groups.items() if g != "all"},
        "settings": {"max_area": D.MAX_AREA, "min_side": D.MIN_SIDE,
                     "patch_size": D.PATCH_SIZE, "inner": D.INNER, "context": D.CONTEXT,
                     "n_iter": D.N_ITER, "n_neighbours": D.N_NEIGHBOURS},
        "methods": summary, "per_case_reference": per_case, "median_per_slice": median_timing,
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "numba_threads": numba.get_num_threads()},
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "detection.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    with open(os.path.join(RESULTS, "detection.md"), "w") as fh:
        fh.write(markdown(result))
    print(markdown(result))
    if args.save_reference:
        reference = D.fit_reference(np.concatenate([c[0] for c in cases.values()]),
                                    np.concatenate([c[1] for c in cases.values()]))
        reference.save(D._REFERENCE_FILE)
        print(f"wrote {D._REFERENCE_FILE} ({len(reference.exemplars)} boxes)")
    return 0


def markdown(result):
    t = result["median_per_slice"]
    n = next(iter(result["methods"].values()))["all"]["n_slices"]
    lines = [
        "# Tumor-box detection on FLAIR slices, one slice at a time",
        "",
        f"{n} slices with a whole tumor of at least {result['min_area_px']} pixels, "
        f"{len(result['per_case_reference'])} cases ("
        + ", ".join(f"{c}: {k}" for c, k in result["collections"].items()) + "). Truth: "
        "bounding box of the tumor's largest connected component. `candidates hit` is the "
        "best any scored box reaches. `python benchmarks/detection.py`.",
        "",
        "How the figures were obtained: the `reference` rows score each case with "
        "exemplars fitted on the cases of the other four folds (5-fold patient-level "
        "cross-validation, each fold mixing both collections: the folds of "
        "segmentation.md), but only the exemplars are held out: the detector's settings "
        f"(windows: inner {result['settings']['inner']:.1f} and context "
        f"{result['settings']['context']:.1f}; {result['settings']['n_iter']} iterations; "
        f"{result['settings']['n_neighbours']} neighbours) were chosen on the BraTS 2018 "
        "slices, so the brats2018 rows are not held-out figures and are likely optimistic. "
        "The `published` rows learn nothing from the labels (they share the proposals and "
        "the iterations). Boxes read off the 3-D tumor map, with a 'no tumor' answer, are "
        "scored in volume_detection.md.",
        "",
        "| method | slices | hit rate (IoU >= 0.5) | centre in tumor | median IoU | "
        "candidates hit |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, by_group in result["methods"].items():
        for group, s in by_group.items():
            lines.append(f"| {name}, {group} | {s['n_slices']} | {s['hit_rate']:.3f} | "
                         f"{s['centre_in_tumor']:.3f} | {s['median_iou']:.3f} | "
                         f"{s['candidates_hit_rate']:.3f} |")
    lines += [
        "",
        f"Median per slice, {result['machine']['numba_threads']} threads, on the same "
        f"slices in the same run: default detector end to end {t['detect_ms']:.1f} ms; its "
        f"three parts run one after another on each slice: stimulus "
        f"{t['stimulus_ms']:.1f}, proposals {t['proposals_fast_ms']:.1f}, signatures and "
        f"distances {t['signatures_fast_ms']:.1f} (median {t['n_candidates_fast']:.0f} "
        f"candidates), together {t['parts_ms']:.1f} (the median of each slice's sum; "
        "medians of parts need not add up to the median of their sums); the end-to-end "
        "call adds its argument checks and the brain mask."
    ]
    if "proposals_package_ms" in t:
        lines.append(f"The selectivesearch package's proposals: {t['proposals_package_ms']:.1f} ms "
                     f"({t['proposals_package_ms'] / t['proposals_fast_ms']:.1f}x the Numba "
                     f"ones, median {t['n_candidates_package']:.0f} candidates).")
    lines += ["", "| case | collection | fold | slices | hit rate (reference) |",
              "|---|---|---:|---:|---:|"]
    for name, c in sorted(result["per_case_reference"].items()):
        lines.append(f"| {name} | {c['collection']} | {c['fold']} | {c['n_slices']} | "
                     f"{c['hit_rate']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
