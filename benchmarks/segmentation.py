"""Tumor segmentation on real MRI, cross-validated by patient: method, ablations, regions.

Every case of ``../shared/data/brats2018`` and ``../shared/data/brats2023_ssa``
(BraTS 2018 and BraTS-Africa 2023; whole tumor WT, tumor core TC, enhancing
tumor ET from the expert labels) is scored by 5-fold patient-level
cross-validation: the cases of each collection, sorted by name, are dealt to
the folds in turn, so every fold mixes both collections. For each fold, every
constant of a variant is chosen on the other four folds (the grid point with
the best mean WT Dice; for the regions, the best mean of TC and ET Dice) and
the held-out cases are scored with it. Every figure in the report is a
held-out figure, except the rows labelled "fixed".

Variants, cumulative, so that each row adds one step to the one above:

- ``v0.1 (fixed)``: the previous default, FLAIR robust z-score >= 2, 2-D PCNN
  (beta 0.05), largest component; its constants were chosen on the 10 BraTS
  2018 cases, so on those it is not a held-out figure;
- ``contrast``: FLAIR tissue contrast (mode / 99th percentile), threshold by CV,
  no linking, largest component;
- ``+ T2``: FLAIR and T2 in the stimulus (weight by CV);
- ``+ selection``: the component kept by CV between the thickest (most
  voxels two steps inside) and the most left-right asymmetric;
- ``+ 3-D PCNN``: linking strength by CV (0, 0.1, 0.3), linking across
  slices: the default method (``segment_tumor``);
- ``2-D PCNN``: the same grid, each slice linked on its own;
- ``fitted readout``: :func:`pcnnseg.fit_segmenter` on the training folds
  (its decision level by an inner CV on them), the rest as the default.

Regions (TC, ET) of the default and of the fitted readout: the enhancement
threshold by CV on the training folds, given the fold's whole tumor.

Per-case results are cached in ``benchmarks/results/.segmentation_cache.json``
(delete it, or pass ``--fresh``, to recompute), so an interrupted run resumes.

Usage::

    python benchmarks/segmentation.py [--data DIR ...] [--fresh] [--skip-fitted]

Writes ``benchmarks/results/segmentation.json`` and ``segmentation.md``. Exits 0
with a message when no data folder exists.
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

from pcnnseg import energy, metrics  # noqa: E402
from pcnnseg.io import find_brats_cases, load_brats_case  # noqa: E402
from pcnnseg.preprocess import tissue_contrast  # noqa: E402
from pcnnseg.simulate import record_runs  # noqa: E402
from pcnnseg import tumor  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DEFAULT_DATA = [os.path.join(SHARED, "brats2018"), os.path.join(SHARED, "brats2023_ssa")]
RESULTS = os.path.join(ROOT, "benchmarks", "results")
CACHE = os.path.join(RESULTS, ".segmentation_cache.json")
N_FOLDS = 5

THRESHOLDS = (0.35, 0.4, 0.45, 0.5)
T2_WEIGHTS = (0.3, 0.6)
BETAS = (0.0, 0.1, 0.3)
SELECTIONS = ("thickest", "asymmetry")
ENHANCING = (0.15, 0.2, 0.25, 0.3)
FULL_GRID = [{"threshold": t, "t2_weight": w, "beta": b, "selection": s}
             for t, w, b, s in itertools.product(THRESHOLDS, T2_WEIGHTS, BETAS, SELECTIONS)]

# name -> (grid of segment_tumor keyword sets, fixed keywords)
VARIANTS = {
    "contrast": ([{"threshold": t} for t in THRESHOLDS],
                 {"t2_weight": 0.0, "beta": 0.0, "selection": "largest", "flair_only": True}),
    "+ T2": ([{"threshold": t, "t2_weight": w} for t, w in itertools.product(THRESHOLDS, T2_WEIGHTS)],
             {"beta": 0.0, "selection": "largest"}),
    "+ selection": ([{"threshold": t, "t2_weight": w, "selection": s}
                     for t, w, s in itertools.product(THRESHOLDS, T2_WEIGHTS, SELECTIONS)],
                    {"beta": 0.0}),
    "+ 3-D PCNN": (FULL_GRID, {}),
    "2-D PCNN": (FULL_GRID, {"linking": "2d"}),
}
DEFAULT_VARIANT = "+ 3-D PCNN"


def _key(*parts):
    return json.dumps(parts, sort_keys=True)


class Cache:
    """Per-case results by key, saved after every new entry (resumable runs)."""

    def __init__(self, path, fresh):
        self.path = path
        self.data = {}
        if not fresh and os.path.exists(path):
            with open(path) as fh:
                self.data = json.load(fh)

    def get(self, key, compute):
        if key not in self.data:
            self.data[key] = compute()
            tmp = self.path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(self.data, fh)
            os.replace(tmp, self.path)
        return self.data[key]


def folds_of(cases):
    """Fold of each case: per collection, sorted by name, dealt in turn."""
    fold = {}
    for collection in sorted({c["collection"] for c in cases}):
        names = sorted(c["name"] for c in cases if c["collection"] == collection)
        for i, name in enumerate(names):
            fold[name] = i % N_FOLDS
    return fold


def _scores(labels_or_mask, truth_regions, spacing, regions):
    if regions:
        pred = metrics.brats_regions(labels_or_mask)
        return {r: metrics.dice(pred[r], truth_regions[r])
                for r in ("whole_tumor", "tumor_core", "enhancing")}
    wt = labels_or_mask
    return {"dice": metrics.dice(wt, truth_regions["whole_tumor"]),
            "hd95_mm": metrics.hausdorff95(wt, truth_regions["whole_tumor"], spacing=spacing)}


def _inputs(case, kw):
    kw = dict(kw)
    if kw.pop("flair_only", False):
        return {"flair": case.images["flair"]}, kw
    return case, kw


def run_wt(case, truth, kw):
    images, kw = _inputs(case, kw)
    mask = tumor.segment_tumor(images, **kw)
    out = _scores(mask, truth, tuple(reversed(case.geometry.spacing)), False)
    hd = out["hd95_mm"]
    out["hd95_mm"] = None if not np.isfinite(hd) else hd
    return out


def run_regions(case, truth, kw, segmenter=None):
    images, kw = _inputs(case, kw)
    labels = tumor.segment_tumor(images, regions=True, segmenter=segmenter, **kw)
    return _scores(labels, truth, None, True)


def choose(candidates, train, score):
    """The candidate with the best mean score over the training cases."""
    return max(candidates, key=lambda c: np.mean([score(name, c) for name in train]))


def v01_segment(flair):
    """The v0.1 default, kept here to measure against: robust z of FLAIR over the
    brain (median, 1.4826 MAD), stimulus clip(z / 8), 2-D intensity-order PCNN
    (beta 0.05) to z = 2, 3-D opening, largest component, holes filled."""
    from scipy import ndimage as ndi
    from pcnnseg.preprocess import fill_holes_slicewise, keep_largest_component
    from pcnnseg.segment import first_pulse_iteration, intensity_order_model
    from pcnnseg.simulate import pulse

    brain = flair != 0
    values = flair[brain].astype(np.float64)
    median = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - median))
    S = np.clip((flair - median) / mad / 8.0, 0, 1).astype(np.float32)
    S[~brain] = 0
    n_iter = first_pulse_iteration(2.0 / 8.0, 0.05) + 1
    fired = pulse(S, intensity_order_model(beta=0.05), n_iter=n_iter,
                  value_range=(0, 1)).fire_time >= 0
    opened = ndi.binary_opening(fired, structure=ndi.generate_binary_structure(3, 1))
    return fill_holes_slicewise(keep_largest_component(opened))


def normalisation_spread(cases):
    """Between-case coefficient of variation of the tumor's median FLAIR, in robust-z
    units and in tissue-contrast units (what tissue_contrast's docstring cites)."""
    z, c = [], []
    for case in cases.values():
        flair, wt = case["case"].images["flair"], case["truth"]["whole_tumor"]
        brain = flair != 0
        values = flair[brain].astype(np.float64)
        med = np.median(values)
        mad = 1.4826 * np.median(np.abs(values - med))
        z.append((np.median(flair[wt]) - med) / mad)
        c.append(float(np.median(tissue_contrast(flair, brain)[wt])))
    cv = lambda v: float(np.std(v) / np.mean(v))  # noqa: E731
    return {"robust_z": {"mean": float(np.mean(z)), "cv": cv(z)},
            "tissue_contrast": {"mean": float(np.mean(c)), "cv": cv(c)}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    parser.add_argument("--fresh", action="store_true", help="ignore the cache")
    parser.add_argument("--skip-fitted", action="store_true",
                        help="leave out the fitted readout (needs scikit-learn)")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs per case")
    parser.add_argument("--save-segmenter", action="store_true",
                        help="also fit the readout on every case and save it as the "
                             "package's bundled one (pcnnseg/data/segmenter.npz)")
    args = parser.parse_args(argv)
    roots = [d for d in args.data if os.path.isdir(d)]
    if not roots:
        print(f"no data at {args.data}: nothing to evaluate")
        return 0
    os.makedirs(RESULTS, exist_ok=True)
    cache = Cache(CACHE, args.fresh)

    cases = {}
    for root in roots:
        for case_dir in find_brats_cases(root):
            case = load_brats_case(case_dir)
            cases[case.name] = {"case": case, "collection": os.path.basename(root),
                                "truth": metrics.brats_regions(case.labels)}
    names = sorted(cases)
    fold = folds_of([{"name": n, "collection": cases[n]["collection"]} for n in names])
    print(f"{len(names)} cases in {N_FOLDS} folds", flush=True)

    def wt(name, variant, kw):
        c = cases[name]
        return cache.get(_key("wt", name, variant, kw), lambda: run_wt(c["case"], c["truth"], kw))

    # --- whole tumor, every variant
    report = {"variants": {}, "folds": fold}
    chosen_default = {}
    for variant, (grid, fixed) in VARIANTS.items():
        per_case, choices = {}, {}
        for k in range(N_FOLDS):
            train = [n for n in names if fold[n] != k]
            best = choose(grid, train, lambda n, g: wt(n, variant, {**fixed, **g})["dice"])
            choices[k] = best
            for n in names:
                if fold[n] == k:
                    per_case[n] = wt(n, variant, {**fixed, **best})
        report["variants"][variant] = {"per_case": per_case, "chosen": choices, "fixed": fixed}
        if variant == DEFAULT_VARIANT:
            chosen_default = choices
        print(f"{variant}: CV WT Dice {np.mean([per_case[n]['dice'] for n in names]):.3f}",
              flush=True)

    v01 = {n: cache.get(_key("wt", n, "v0.1"), lambda n=n: {
        "dice": metrics.dice(v01_segment(cases[n]["case"].images["flair"]),
                             cases[n]["truth"]["whole_tumor"])}) for n in names}
    report["v0.1"] = v01

    # --- regions of the default: enhancement threshold by CV, given the fold's WT
    def regions(name, kw, segmenter_key=None, segmenter=None):
        c = cases[name]
        return cache.get(_key("regions", name, kw, segmenter_key),
                         lambda: run_regions(c["case"], c["truth"], kw, segmenter))

    def region_choice(k, wt_kw, segmenter_key=None, segmenter=None):
        train = [n for n in names if fold[n] != k]
        return choose(ENHANCING, train, lambda n, e: np.mean([
            regions(n, {**wt_kw, "enhancing_threshold": e}, segmenter_key, segmenter)[r]
            for r in ("tumor_core", "enhancing")]))

    default_regions, enh_choice = {}, {}
    for k in range(N_FOLDS):
        kw = chosen_default[k]
        e = region_choice(k, kw)
        enh_choice[k] = e
        for n in names:
            if fold[n] == k:
                default_regions[n] = regions(n, {**kw, "enhancing_threshold": e})
    report["regions"] = {"per_case": default_regions, "enhancing_threshold": enh_choice}
    print("regions done", flush=True)

    # --- fitted readout
    if not args.skip_fitted:
        from pcnnseg.segmenter import fit_segmenter
        fitted_wt, fitted_regions, fitted_levels = {}, {}, {}
        for k in range(N_FOLDS):
            test = [n for n in names if fold[n] == k]
            key = f"fold{k}"
            cached = all(_key("regions", n, {"enhancing_threshold": enh_choice[k]}, key)
                         in cache.data and _key("wt", n, "fitted", key) in cache.data
                         for n in test)
            if not cached:
                train = [cases[n]["case"] for n in names if fold[n] != k]
                seg = fit_segmenter(train)
                fitted_levels[k] = {"level": seg.level, "beta": seg.beta}
            else:
                seg = None
            for n in test:
                c = cases[n]
                fitted_wt[n] = cache.get(_key("wt", n, "fitted", key), lambda: {
                    **_scores(tumor.segment_tumor(c["case"], segmenter=seg), c["truth"],
                              tuple(reversed(c["case"].geometry.spacing)), False)})
                fitted_regions[n] = regions(n, {"enhancing_threshold": enh_choice[k]}, key, seg)
            print(f"fitted fold {k} done", flush=True)
        report["fitted"] = {"per_case": fitted_wt, "regions": fitted_regions,
                            "decision": fitted_levels}

    # --- timing and operation counts of the refit defaults
    refit = choose(VARIANTS[DEFAULT_VARIANT][0], names,
                   lambda n, g: wt(n, DEFAULT_VARIANT, g)["dice"])
    refit_enh = choose(ENHANCING, names, lambda n, e: np.mean([
        regions(n, {**refit, "enhancing_threshold": e})[r] for r in ("tumor_core", "enhancing")]))
    report["refit"] = {**refit, "enhancing_threshold": refit_enh}
    timing = {}
    tumor.segment_tumor(cases[names[0]]["case"])       # compile outside the clock
    for n in names:
        case = cases[n]["case"]
        times_wt, times_regions = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            tumor.segment_tumor(case, **refit)
            times_wt.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with record_runs() as runs:
                tumor.segment_tumor(case, regions=True, **refit, enhancing_threshold=refit_enh)
            times_regions.append(time.perf_counter() - t0)
        ops = energy.pcnn_operations(runs)
        n_slices = int((case.images["flair"] != 0).any(axis=(1, 2)).sum())
        joules = energy.energy_from_operations(energy.pcnn_arithmetic(ops)).joules
        timing[n] = {"seconds_wt": float(np.median(times_wt)),
                     "seconds_regions": float(np.median(times_regions)),
                     "op_energy_mj_per_slice": 1e3 * joules / n_slices,
                     "neuron_updates_per_slice": ops["neuron_updates"] / n_slices,
                     "synaptic_events_per_slice": ops["synaptic_events"] / n_slices}
    report["timing"] = timing
    if args.save_segmenter:
        from pcnnseg.segmenter import _DEFAULT_FILE, fit_segmenter
        bundled = fit_segmenter([cases[n]["case"] for n in names])
        bundled.save(_DEFAULT_FILE)
        report["bundled_segmenter"] = {"level": bundled.level, "beta": bundled.beta,
                                       "fitted_on": list(bundled.fitted_on)}
    report["normalisation"] = normalisation_spread(cases)
    report["collections"] = {n: cases[n]["collection"] for n in names}
    report["module_constants"] = {"threshold": tumor.THRESHOLD, "t2_weight": tumor.T2_WEIGHT,
                                  "beta": tumor.LINKING,
                                  "enhancing_threshold": tumor.ENHANCING_THRESHOLD}
    report["threads"] = os.cpu_count()
    report["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    with open(os.path.join(RESULTS, "segmentation.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    md = markdown(report)
    with open(os.path.join(RESULTS, "segmentation.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def markdown(report):
    names = sorted(report["collections"])
    groups = {"all": names}
    for n in names:
        groups.setdefault(report["collections"][n], []).append(n)
    default = report["variants"][DEFAULT_VARIANT]["per_case"]
    regions = report["regions"]["per_case"]
    lines = [
        "# Tumor segmentation, cross-validated by patient",
        "",
        f"{len(names)} cases ({', '.join(f'{g}: {len(v)}' for g, v in groups.items() if g != 'all')}), "
        f"{N_FOLDS}-fold patient-level cross-validation, each fold mixing both collections; "
        f"every constant chosen on the training folds, every figure below from the held-out "
        f"fold unless marked *fixed*. {report['date']}, {report['threads']} cores. "
        "`python benchmarks/segmentation.py`.",
        "",
        "## Whole tumor (WT), each row adding one step",
        "",
        "| variant | " + " | ".join(f"WT Dice {g}" for g in groups) + " | worst case | cases < 0.5 |",
        "|---|" + "---:|" * (len(groups) + 2),
    ]

    def row(label, per_case):
        d = {n: per_case[n]["dice"] for n in names}
        worst = min(d, key=d.get)
        cells = [f"{_mean([d[n] for n in group]):.3f}" for group in groups.values()]
        return (f"| {label} | " + " | ".join(cells) + f" | {d[worst]:.3f} ({worst}) | "
                f"{sum(v < 0.5 for v in d.values())} |")

    lines.append(row("v0.1 default (*fixed*: chosen on the 10 BraTS 2018 cases)", report["v0.1"]))
    for variant in VARIANTS:
        label = f"**{variant} (default)**" if variant == DEFAULT_VARIANT else variant
        lines.append(row(label, report["variants"][variant]["per_case"]))
    if "fitted" in report:
        lines.append(row("fitted readout (trees on per-voxel features)", report["fitted"]["per_case"]))
    lines += ["", "Constants chosen per fold (default variant): " + "; ".join(
        f"fold {k}: " + ", ".join(f"{a}={b}" for a, b in v.items())
        for k, v in report["variants"][DEFAULT_VARIANT]["chosen"].items()) + ".",
        "Enhancement threshold per fold: " + ", ".join(
            f"{k}: {v}" for k, v in report["regions"]["enhancing_threshold"].items()) + "."]
    if "fitted" in report and report["fitted"]["decision"]:
        lines.append("Fitted readout decision (inner CV) per fold: " + "; ".join(
            f"{k}: level {v['level']}, beta {v['beta']}"
            for k, v in report["fitted"]["decision"].items()) + ".")
    refit = report["refit"]
    lines += ["", "Refit on all cases (the committed defaults of `pcnnseg.tumor`; not a "
              "result, since every case chose them): " + ", ".join(f"{a}={b}" for a, b in refit.items())
              + ". Module constants: " + ", ".join(f"{a}={b}" for a, b in
                                                 report["module_constants"].items()) + "."]
    lines += ["", "## Regions of the default method (held-out)", "",
              "| | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
    for r, label in (("whole_tumor", "WT Dice"), ("tumor_core", "TC Dice"), ("enhancing", "ET Dice")):
        lines.append(f"| {label} | " + " | ".join(
            f"{_mean([regions[n][r] for n in g]):.3f}" for g in groups.values()) + " |")
    lines.append("| WT HD95 mm | " + " | ".join(
        f"{_mean([default[n]['hd95_mm'] for n in g]):.1f}" for g in groups.values()) + " |")
    if "fitted" in report:
        fr = report["fitted"]["regions"]
        for r, label in (("tumor_core", "TC Dice, fitted WT"), ("enhancing", "ET Dice, fitted WT")):
            lines.append(f"| {label} | " + " | ".join(
                f"{_mean([fr[n][r] for n in g]):.3f}" for g in groups.values()) + " |")
    t = report["timing"]
    lines += ["", "## Cost of the refit default (2 cores, median of repeated runs per case)", "",
              f"- seconds per volume, WT: median {np.median([t[n]['seconds_wt'] for n in names]):.2f}, "
              f"max {max(t[n]['seconds_wt'] for n in names):.2f}",
              f"- seconds per volume, regions: median "
              f"{np.median([t[n]['seconds_regions'] for n in names]):.2f}, "
              f"max {max(t[n]['seconds_regions'] for n in names):.2f}",
              f"- per slice with brain (regions run): "
              f"{np.median([t[n]['neuron_updates_per_slice'] for n in names]) / 1e6:.2f} M neuron "
              f"updates, {np.median([t[n]['synaptic_events_per_slice'] for n in names]) / 1e3:.1f} k "
              f"synaptic events, {np.median([t[n]['op_energy_mj_per_slice'] for n in names]):.3f} mJ "
              "(estimate: operation counts x Horowitz 2014 45 nm energies, event-driven, "
              "arithmetic only; `pcnnseg.energy`)"]
    norm = report["normalisation"]
    lines += ["", "## Normalisation", "",
              f"Tumor's median FLAIR across the {len(names)} cases: robust z (median/MAD) mean "
              f"{norm['robust_z']['mean']:.2f}, coefficient of variation {norm['robust_z']['cv']:.2f}; "
              f"tissue contrast (mode / 99th percentile) mean {norm['tissue_contrast']['mean']:.2f}, "
              f"coefficient of variation {norm['tissue_contrast']['cv']:.2f}."]
    lines += ["", "## Per case (held-out)", "",
              "| case | collection | fold | v0.1 WT | default WT | WT HD95 mm | TC | ET | "
              + ("fitted WT | " if "fitted" in report else "") + "s WT | s regions |",
              "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if "fitted" in report else "")
              + "---:|---:|"]
    for n in names:
        hd = default[n]["hd95_mm"]
        fitted = f"{report['fitted']['per_case'][n]['dice']:.3f} | " if "fitted" in report else ""
        lines.append(
            f"| {n} | {report['collections'][n]} | {report['folds'][n]} | "
            f"{report['v0.1'][n]['dice']:.3f} | {default[n]['dice']:.3f} | "
            f"{'-' if hd is None else f'{hd:.1f}'} | {regions[n]['tumor_core']:.3f} | "
            f"{regions[n]['enhancing']:.3f} | {fitted}{t[n]['seconds_wt']:.2f} | "
            f"{t[n]['seconds_regions']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
