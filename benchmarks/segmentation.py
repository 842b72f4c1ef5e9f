"""Tumor segmentation on real MRI, cross-validated by patient: method, ablations, regions.

Every case of ``../shared/data/brats2018`` and ``../shared/data/brats2023_ssa``
(BraTS 2018 and BraTS-Africa 2023; whole tumor WT, tumor core TC, enhancing
tumor ET from the expert labels) is scored by 5-fold patient-level
cross-validation: the cases of each collection, sorted by name, are dealt to
the folds in turn, so every fold mixes both collections. For each fold, every
constant of a variant is chosen on the other four folds (the grid point with
the best mean WT Dice; for the regions, the best mean of TC and ET Dice) and
the held-out cases are scored with it. Every figure in the report is a
held-out figure, except the row and column marked *fixed*.

Variants, cumulative, so that each row adds one step to the one above:

- ``v0.1 (fixed)``: the previous default, FLAIR robust z-score >= 2, 2-D PCNN
  (beta 0.05), largest component; its constants were chosen on the 10 BraTS
  2018 cases, so on those it is not a held-out figure;
- ``contrast``: FLAIR tissue contrast (mode / 99th percentile), threshold by CV,
  no linking, largest component;
- ``+ T2``: FLAIR and T2 in the stimulus (weight by CV);
- ``+ selection``: the component kept by CV between the thickest (most
  voxels two steps inside) and the most left-right asymmetric;
- ``+ 3-D PCNN``: linking strength by CV (0 or 0.1), linking across slices,
  then the contrast percentile (98, 99, 99.5) by CV with the threshold, the
  other constants held;
- ``2-D PCNN``: the constants of ``+ 3-D PCNN``, each slice linked on its own,
  threshold chosen again;
- ``default``: the grid of ``+ 3-D PCNN``, then the percentile, then the
  satellites (other components kept at 0.5 or 0.25 of the best one's score, or
  none), each chosen on the training folds by the one-standard-error rule (the
  simplest configuration within one standard error of the best: no linking
  before linking, the thickest before the asymmetric component, the 99th
  percentile before others, one component before satellites): the method of
  ``segment_tumor``. The rule was adopted after a
  first run in which the plain best (row ``+ 3-D PCNN``) chose linking and
  asymmetry in most folds, choices that failed on synthetic phantoms with a
  bias field; both rows are reported;
- ``fitted readout``: :func:`pcnnseg.fit_segmenter` on the training folds (its
  decision level, linking, selection and satellites by an inner CV on them);
  the ablation ``one component kept`` scores the same trees and decision with
  satellites off.

Regions (TC, ET) of the default and of the fitted readout, given the fold's
whole tumor (:func:`pcnnseg.tumor.tumor_regions`): the enhancement threshold,
the share of the case's Otsu threshold it rises to (``enhancing_otsu``, 0: off)
and the T1 weight and part by CV on the training folds, then, those held, the
necrosis threshold (or none) by the one-standard-error rule; ablations hold the
T1 part, the necrosis step or the Otsu share (off) fixed and choose the rest by
the same folds, or choose the necrosis step by the best mean.

Fixed before any cross-validation, by exploratory analysis of all 22 cases
during development (their held-out effect is not measured here): the tissue
contrast itself (mode and upper percentile rather than median and MAD), the
grids below, the stimulus scale ``A_SCALE`` and the opening, closing and
hole-filling steps.

Per-case results are cached in ``benchmarks/results/.segmentation_cache.json``
(``--fresh`` ignores it), so an interrupted run resumes; the cache is tied to
:data:`CACHE_VERSION`, to be raised whenever the method's code changes results.

Usage::

    python benchmarks/segmentation.py [--data DIR ...] [--fresh] [--skip-fitted]
                                      [--repeats 3] [--save-segmenter]

Writes ``benchmarks/results/segmentation.json`` and ``segmentation.md``. Exits 0
with a message when no data folder exists.
"""
import argparse
import dataclasses
import hashlib
import itertools
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pcnnseg import energy, metrics, tumor  # noqa: E402
from pcnnseg.io import find_brats_cases, load_brats_case, write_bytes_atomic  # noqa: E402
from pcnnseg.preprocess import robust_z, tissue_contrast  # noqa: E402
from pcnnseg.simulate import record_runs  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DEFAULT_DATA = [os.path.join(SHARED, "brats2018"), os.path.join(SHARED, "brats2023_ssa")]
RESULTS = os.path.join(ROOT, "benchmarks", "results")
CACHE = os.path.join(RESULTS, ".segmentation_cache.json")
CACHE_VERSION = 1
N_FOLDS = 5
REGIONS = ("whole_tumor", "tumor_core", "enhancing")

THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
T2_WEIGHTS = (0.3, 0.6, 1.0)
BETAS = (0.0, 0.1)
SELECTIONS = ("thickest", "asymmetry")
PERCENTILES = (98.0, 99.5)           # tried against the default 99
SATELLITE_SHARES = (0.5, 0.25)      # tried against the default 1 (one component)
ENHANCING = (0.15, 0.2, 0.25, 0.3)
T1_WEIGHTS = (0.0, 0.5, 1.0)
T1_PARTS = ("signed", "positive")
NECROSIS = (None, 0.2, 0.35, 0.5)
OTSU_SHARES = (0.0, 0.5, 0.75)       # enhancing_otsu: off, or a share of Otsu's threshold

# name -> (grid of segment_tumor keyword sets, fixed keywords)
VARIANTS = {
    "contrast": ([{"threshold": t} for t in THRESHOLDS],
                 {"t2_weight": 0.0, "beta": 0.0, "selection": "largest", "flair_only": True}),
    "+ T2": ([{"threshold": t, "t2_weight": w} for t, w in itertools.product(THRESHOLDS, T2_WEIGHTS)],
             {"beta": 0.0, "selection": "largest"}),
    "+ selection": ([{"threshold": t, "t2_weight": w, "selection": s}
                     for t, w, s in itertools.product(THRESHOLDS, T2_WEIGHTS, SELECTIONS)],
                    {"beta": 0.0}),
    "+ 3-D PCNN": ([{"threshold": t, "t2_weight": w, "beta": b, "selection": s}
                    for t, w, b, s in itertools.product(THRESHOLDS, T2_WEIGHTS, BETAS,
                                                        SELECTIONS)], {}),
}
PCNN_3D = "+ 3-D PCNN"
DEFAULT_VARIANT = "default"


def _key(*parts):
    return json.dumps(parts, sort_keys=True)


def _region_key(name, source, grid_point):
    # without the necrosis step or the adaptive threshold, the key of the runs
    # before they existed
    point = grid_point[:4] if grid_point[4] == 0 else grid_point
    return _key("regions", name, source, point if point[3:] != (None,) else point[:3])


class Cache:
    """Per-case results by key, saved after every new entry (resumable runs)."""

    def __init__(self, path, fresh):
        self.path = path
        self.data = {}
        if not fresh and os.path.exists(path):
            with open(path) as fh:
                saved = json.load(fh)
            if saved.get("version") == CACHE_VERSION:
                self.data = saved["entries"]

    def get(self, key, compute):
        if key not in self.data:
            self.data[key] = compute()
            text = json.dumps({"version": CACHE_VERSION, "entries": self.data})
            write_bytes_atomic(self.path, text.encode())
        return self.data[key]


def folds_of(collections):
    """Fold of each case: per collection, sorted by name, dealt in turn."""
    fold = {}
    for collection in sorted(set(collections.values())):
        names = sorted(n for n, c in collections.items() if c == collection)
        for i, name in enumerate(names):
            fold[name] = i % N_FOLDS
    return fold


def _hd95(mask, truth, spacing):
    hd = metrics.hausdorff95(mask, truth, spacing=spacing)
    return float(hd) if np.isfinite(hd) else None   # empty mask: no distance


def choose(candidates, train, score):
    """The candidate with the best mean score over the training cases."""
    return max(candidates, key=lambda c: np.mean([score(name, c) for name in train]))


def complexity(kw):
    """Moving parts of a configuration, for :func:`choose_simplest`: linking, the
    left-right asymmetry assumption, a percentile other than the default 99,
    satellite components."""
    return (int(kw.get("beta", 0.0) > 0) + int(kw.get("selection") == "asymmetry")
            + int(kw.get("contrast_percentile", 99.0) != 99.0)
            + int(kw.get("satellites", 1.0) != 1.0))


def choose_simplest(candidates, train, score, cost=complexity):
    """The one-standard-error rule (Hastie, Tibshirani & Friedman, The Elements of
    Statistical Learning, 2nd ed., sec. 7.10): among the candidates whose mean
    training score is within one standard error of the best one's, the one with
    the fewest moving parts (``cost``, default :func:`complexity`), the best mean
    among those."""
    scores = {i: [score(name, c) for name in train] for i, c in enumerate(candidates)}
    mean = {i: float(np.mean(v)) for i, v in scores.items()}
    best = max(mean, key=mean.get)
    floor = mean[best] - float(np.std(scores[best], ddof=1) / np.sqrt(len(train)))
    close = [i for i in mean if mean[i] >= floor]
    return candidates[min(close, key=lambda i: (cost(candidates[i]), -mean[i]))]


def v01_segment(flair):
    """The v0.1 default, kept here to measure against: robust z of FLAIR over the
    brain (median, 1.4826 MAD), stimulus clip(z / 8), 2-D intensity-order PCNN
    (beta 0.05) to z = 2, 3-D opening, largest component, holes filled."""
    from scipy import ndimage as ndi
    from pcnnseg.preprocess import fill_holes_slicewise, keep_largest_component
    from pcnnseg.segmentation import first_pulse_iteration, intensity_order_model
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
        z.append(float(np.median(robust_z(flair, brain)[wt])))
        c.append(float(np.median(tissue_contrast(flair, brain)[wt])))
    cv = lambda v: float(np.std(v) / np.mean(v))  # noqa: E731
    return {"robust_z": {"mean": float(np.mean(z)), "cv": cv(z)},
            "tissue_contrast": {"mean": float(np.mean(c)), "cv": cv(c)}}


class Study:
    """The cases, their folds, and cached per-case scores of any configuration."""

    def __init__(self, cases, cache):
        self.cases = cases
        self.names = sorted(cases)
        self.fold = folds_of({n: c["collection"] for n, c in cases.items()})
        self.cache = cache

    def train(self, k):
        return [n for n in self.names if self.fold[n] != k]

    def test(self, k):
        return [n for n in self.names if self.fold[n] == k]

    def spacing(self, name):
        return tuple(reversed(self.cases[name]["case"].geometry.spacing))

    def whole(self, name, kw):
        """segment_tumor's whole tumor for keywords ``kw`` (``flair_only``: FLAIR alone)."""
        kw = dict(kw)
        case = self.cases[name]["case"]
        images = {"flair": case.images["flair"]} if kw.pop("flair_only", False) else case
        return tumor.segment_tumor(images, spacing=self.spacing(name), **kw)

    def wt(self, name, variant, kw):
        def compute():
            mask = self.whole(name, kw)
            truth = self.cases[name]["truth"]["whole_tumor"]
            return {"dice": metrics.dice(mask, truth),
                    "hd95_mm": _hd95(mask, truth, self.spacing(name))}
        return self.cache.get(_key("wt", name, variant, kw), compute)

    def regions(self, name, source, grid, whole):
        """Region Dice of every (enhancing threshold, T1 weight, T1 part, necrosis
        threshold, Otsu share) in ``grid`` for the whole tumor ``whole()`` (called
        only when some are not cached yet)."""
        keys = [_region_key(name, source, g) for g in grid]
        if not all(k in self.cache.data for k in keys):
            mask = whole()
            truth = self.cases[name]["truth"]
            for key, g in zip(keys, grid):
                self.cache.get(key, lambda g=g: {
                    r: metrics.dice(found, truth[r]) for r, found in metrics.brats_regions(
                        tumor.tumor_regions(self.cases[name]["case"], mask,
                                            spacing=self.spacing(name),
                                            **_region_kw(g))).items()})
        return {g: self.cache.data[k] for g, k in zip(grid, keys)}

    def cross_validate(self, grid, score):
        """Per fold, the grid point best on the training folds."""
        return {k: choose(grid, self.train(k), score) for k in range(N_FOLDS)}


def simplest_default(study, train):
    """The default's constants chosen on ``train`` by the one-standard-error rule:
    the ``+ 3-D PCNN`` grid, then the percentile with the threshold, then the
    satellites."""
    def score(n, g):
        return study.wt(n, PCNN_3D, g)["dice"]
    first = choose_simplest(VARIANTS[PCNN_3D][0], train, score)
    options = [first] + [{**first, "threshold": t, "contrast_percentile": p}
                         for p in PERCENTILES for t in THRESHOLDS]
    second = choose_simplest(options, train, score)
    options = [second] + [{**second, "satellites": f} for f in SATELLITE_SHARES]
    return choose_simplest(options, train, score)


REGION_KEYWORDS = ("enhancing_threshold", "t1_weight", "t1_part", "necrosis_threshold",
                   "enhancing_otsu")


def _region_kw(grid_point):
    return dict(zip(REGION_KEYWORDS, grid_point))


def _region_score(scores):
    return float(np.mean([scores["tumor_core"], scores["enhancing"]]))


def choose_regions(grid, train, regions_of, necrosis=NECROSIS, one_se=True):
    """The regions' constants chosen on ``train``: the grid point (no necrosis step)
    with the best mean TC and ET Dice, then, the rest held, the necrosis threshold
    among ``necrosis``, by the one-standard-error rule (off, unless a threshold
    beats it by more than a standard error) or, with ``one_se=False``, by the best
    mean. ``regions_of(name, points)`` gives each point's region Dice."""
    def scorer(points):
        table = {n: regions_of(n, points) for n in train}   # once per case, not per point
        return lambda n, g: _region_score(table[n][g])

    first = choose(grid, train, scorer(grid))
    options = [first[:3] + (t,) + first[4:] for t in necrosis]
    if one_se:
        return choose_simplest(options, train, scorer(options),
                               cost=lambda g: int(g[3] is not None))
    return choose(options, train, scorer(options))


def run(study, args):
    names = study.names
    report = {"variants": {}, "folds": study.fold,
              "collections": {n: study.cases[n]["collection"] for n in names}}

    # --- whole tumor, variant by variant
    for variant, (grid, fixed) in VARIANTS.items():
        chosen = study.cross_validate(
            grid, lambda n, g, v=variant, f=fixed: study.wt(n, v, {**f, **g})["dice"])
        report["variants"][variant] = {"chosen": {k: {**fixed, **g} for k, g in chosen.items()}}
        print(f"{variant}: grid done", flush=True)
    # the contrast percentile, by CV with the threshold, the fold's other constants held
    three_d = {}
    for k, best in report["variants"][PCNN_3D]["chosen"].items():
        options = [best] + [{**best, "threshold": t, "contrast_percentile": p}
                            for p in PERCENTILES for t in THRESHOLDS]
        three_d[k] = choose(options, study.train(k),
                            lambda n, g: study.wt(n, PCNN_3D, g)["dice"])
    report["variants"][PCNN_3D]["chosen"] = three_d
    two_d = {}
    for k, best in three_d.items():
        options = [{**best, "threshold": t, "linking": "2d"} for t in THRESHOLDS]
        two_d[k] = choose(options, study.train(k), lambda n, g: study.wt(n, "2-D PCNN", g)["dice"])
    report["variants"]["2-D PCNN"] = {"chosen": two_d}
    default_choice = {k: simplest_default(study, study.train(k)) for k in range(N_FOLDS)}
    report["variants"][DEFAULT_VARIANT] = {"chosen": default_choice}
    for variant, entry in report["variants"].items():
        key = PCNN_3D if variant == DEFAULT_VARIANT else variant
        entry["per_case"] = {n: study.wt(n, key, entry["chosen"][study.fold[n]]) for n in names}
        print(f"{variant}: CV WT Dice "
              f"{np.mean([entry['per_case'][n]['dice'] for n in names]):.3f}", flush=True)
    report["v0.1"] = {n: study.cache.get(_key("wt", n, "v0.1"), lambda n=n: {
        "dice": metrics.dice(v01_segment(study.cases[n]["case"].images["flair"]),
                             study.cases[n]["truth"]["whole_tumor"])}) for n in names}

    # --- regions of the default, given the fold's whole tumor
    region_grid = list(itertools.product(ENHANCING, T1_WEIGHTS, T1_PARTS, (None,), OTSU_SHARES))

    def default_scores(k):
        kw = default_choice[k]
        return lambda n, grid: study.regions(n, ("default", kw), grid,
                                             lambda: study.whole(n, kw))

    region_choice, per_case = {}, {}
    for k in range(N_FOLDS):
        region_choice[k] = choose_regions(region_grid, study.train(k), default_scores(k))
        for n in study.test(k):
            per_case[n] = default_scores(k)(n, [region_choice[k]])[region_choice[k]]
    report["regions"] = {"per_case": per_case,
                         "chosen": {k: _region_kw(g) for k, g in region_choice.items()}}
    # ablations: the T1 part, or the necrosis step, held fixed, the rest chosen by
    # the same folds
    fixed = {f"{part} T1 subtracted only": ([g for g in region_grid if g[2] == part],
                                             NECROSIS, True) for part in T1_PARTS}
    fixed["no necrosis step"] = (region_grid, (None,), True)
    fixed["fixed enhancing threshold (no Otsu share)"] = (
        [g for g in region_grid if g[4] == 0], NECROSIS, True)
    fixed["necrosis step by the best mean"] = (region_grid, NECROSIS, False)
    report["regions"]["ablation"] = {}
    for label, (grid, necrosis, one_se) in fixed.items():
        ablation = {}
        for k in range(N_FOLDS):
            best = choose_regions(grid, study.train(k), default_scores(k), necrosis, one_se)
            ablation.update({n: default_scores(k)(n, [best])[best] for n in study.test(k)})
        report["regions"]["ablation"][label] = ablation
    print("regions done", flush=True)

    # --- fitted readout
    if not args.skip_fitted:
        report["fitted"] = fitted(study, region_choice)

    # --- the defaults refit on every case, their cost and operation counts
    refit = simplest_default(study, names)
    refit_regions = choose_regions(region_grid, names, lambda n, grid: study.regions(
        n, ("default", refit), grid, lambda: study.whole(n, refit)))
    report["refit"] = {**refit, **_region_kw(refit_regions)}
    report["timing"] = timing(study, report["refit"], args.repeats)
    if args.save_segmenter:
        from pcnnseg.segmenter import _DEFAULT_FILE, fit_segmenter
        bundled = fit_segmenter([study.cases[n]["case"] for n in names])
        bundled.save(_DEFAULT_FILE)
        report["bundled_segmenter"] = {"level": bundled.level, "beta": bundled.beta,
                                       "selection": bundled.selection,
                                       "satellites": bundled.satellites,
                                       "fitted_on": list(bundled.fitted_on)}
    report["normalisation"] = normalisation_spread(study.cases)
    report["module_constants"] = {
        "threshold": tumor.THRESHOLD, "t2_weight": tumor.T2_WEIGHT, "beta": tumor.LINKING,
        "selection": tumor.SELECTION, "satellites": tumor.SATELLITES,
        "linking": tumor.LINKING_DIMENSIONS,
        "contrast_percentile": tumor.CONTRAST_PERCENTILE,
        "enhancing_threshold": tumor.ENHANCING_THRESHOLD,
        "enhancing_otsu": tumor.ENHANCING_OTSU, "t1_weight": tumor.ENHANCEMENT_T1_WEIGHT, "t1_part": tumor.ENHANCEMENT_T1_PART,
        "necrosis_threshold": tumor.NECROSIS_THRESHOLD}
    return report


def fitted(study, region_choice):
    """The fitted readout per fold: held-out WT and regions."""
    from pcnnseg.segmenter import LEVELS, SATELLITES, fit_segmenter

    out = {"per_case": {}, "regions": {}, "decision": {}, "one_component": {}}
    for k in range(N_FOLDS):
        train = study.train(k)
        # the cache key follows the training cases and the fitting's candidate levels
        tag = ("fitted", hashlib.sha1(" ".join(train).encode()).hexdigest()[:12],
               list(LEVELS), list(SATELLITES))
        grid = [region_choice[k]]
        cached = all(_key("wt", n, *tag) in study.cache.data
                     and _region_key(n, tag, grid[0]) in study.cache.data
                     and _key("wt one component", n, *tag) in study.cache.data
                     and _key("decision", k, *tag) in study.cache.data
                     for n in study.test(k))
        seg = None if cached else fit_segmenter([study.cases[n]["case"] for n in train])
        out["decision"][k] = study.cache.get(_key("decision", k, *tag), lambda: {
            "level": seg.level, "beta": seg.beta, "selection": seg.selection,
            "satellites": seg.satellites})
        masks = {}

        def mask(n):
            if n not in masks:
                masks[n] = tumor.segment_tumor(study.cases[n]["case"], segmenter=seg)
            return masks[n]

        for n in study.test(k):
            truth = study.cases[n]["truth"]["whole_tumor"]
            out["per_case"][n] = study.cache.get(_key("wt", n, *tag), lambda n=n: {
                "dice": metrics.dice(mask(n), truth),
                "hd95_mm": _hd95(mask(n), truth, study.spacing(n))})
            out["regions"][n] = study.regions(n, tag, grid, lambda n=n: mask(n))[grid[0]]
            # ablation: the same trees and decision, one component kept
            out["one_component"][n] = study.cache.get(_key("wt one component", n, *tag),
                                                      lambda n=n, truth=truth: {
                "dice": metrics.dice(tumor.segment_tumor(
                    study.cases[n]["case"], segmenter=dataclasses.replace(seg, satellites=1.0)),
                    truth)})
        print(f"fitted fold {k} done", flush=True)
    return out


def timing(study, refit, repeats):
    """Seconds per volume (median of ``repeats``) and operation counts per slice."""
    wt_kw = {k: v for k, v in refit.items() if k not in REGION_KEYWORDS}
    first = study.cases[study.names[0]]["case"]
    tumor.segment_tumor(first, regions=True, **refit)      # compile outside the clock
    out = {}
    for n in study.names:
        case = study.cases[n]["case"]
        times_wt, times_regions = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            tumor.segment_tumor(case, **wt_kw)
            times_wt.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with record_runs() as runs:
                tumor.segment_tumor(case, regions=True, **refit)
            times_regions.append(time.perf_counter() - t0)
        ops = energy.pcnn_operations(runs)
        n_slices = int((case.images["flair"] != 0).any(axis=(1, 2)).sum())
        joules = energy.energy_from_operations(energy.pcnn_arithmetic(ops)).joules
        out[n] = {"seconds_wt": float(np.median(times_wt)),
                  "seconds_regions": float(np.median(times_regions)),
                  "op_energy_mj_per_slice": 1e3 * joules / n_slices,
                  "neuron_updates_per_slice": ops["neuron_updates"] / n_slices,
                  "synaptic_events_per_slice": ops["synaptic_events"] / n_slices}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    parser.add_argument("--fresh", action="store_true", help="ignore the cache")
    parser.add_argument("--skip-fitted", action="store_true",
                        help="leave out the fitted readout (needs scikit-learn)")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs per case (>= 1)")
    parser.add_argument("--save-segmenter", action="store_true",
                        help="also fit the readout on every case and save it as the "
                             "package's bundled one (pcnnseg/data/segmenter.npz)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: expected at least 1")
    roots = [d for d in args.data if os.path.isdir(d)]
    if not roots:
        print(f"no data at {args.data}: nothing to evaluate")
        return 0
    os.makedirs(RESULTS, exist_ok=True)
    cases = {}
    for root in roots:
        for case_dir in find_brats_cases(root):
            case = load_brats_case(case_dir)
            cases[case.name] = {"case": case, "collection": os.path.basename(os.path.normpath(root)),
                                "truth": metrics.brats_regions(case.labels)}
    study = Study(cases, Cache(CACHE, args.fresh))
    print(f"{len(cases)} cases in {N_FOLDS} folds", flush=True)
    report = run(study, args)
    report["threads"] = os.cpu_count()
    report["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_bytes_atomic(os.path.join(RESULTS, "segmentation.json"),
                       json.dumps(report, indent=1).encode())
    md = markdown(report)
    write_bytes_atomic(os.path.join(RESULTS, "segmentation.md"), md.encode())
    print(md)
    return 0


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def _kw(kw):
    return ", ".join(f"{a}={b}" for a, b in kw.items())


def markdown(report):
    names = sorted(report["collections"])
    groups = {"all": names}
    for n in names:
        groups.setdefault(report["collections"][n], []).append(n)
    default = report["variants"][DEFAULT_VARIANT]["per_case"]
    regions = report["regions"]["per_case"]
    counts = ", ".join(f"{g}: {len(v)}" for g, v in groups.items() if g != "all")
    lines = [
        "# Tumor segmentation, cross-validated by patient",
        "",
        f"{len(names)} cases ({counts}), {N_FOLDS}-fold patient-level cross-validation, each "
        "fold mixing both collections; every constant below chosen on the training folds, "
        "every figure from the held-out fold unless marked *fixed*. "
        f"{report['date']}, {report['threads']} cores. `python benchmarks/segmentation.py`.",
        "Fixed during development on all 22 cases, before the cross-validation (not "
        "measured held-out): the tissue contrast itself, the grids, the stimulus scale, "
        "the clean-up steps. The fitted readout's candidate levels were extended from "
        "0.5-0.8 to 0.5-0.95 after its inner cross-validation chose the grid's edge (0.8) in "
        "every fold; exploratory runs on the held-out folds had also been seen, so its gain "
        "over the earlier 0.821 is slightly optimistic. Satellite components were added "
        "after a look at the fitted readout's held-out errors (one case's tumor fell in two "
        "components, and one was dropped), so the satellites rows are not independent of "
        "that look either.",
        "",
        "## Whole tumor (WT), each row adding one step",
        "",
        "| variant | " + " | ".join(f"WT Dice {g}" for g in groups) + " | WT HD95 mm | "
        "worst case | cases < 0.5 |",
        "|---|" + "---:|" * (len(groups) + 3),
    ]

    def row(label, per_case):
        d = {n: per_case[n]["dice"] for n in names}
        worst = min(d, key=d.get)
        cells = [f"{_mean([d[n] for n in group]):.3f}" for group in groups.values()]
        hd = _mean([per_case[n].get("hd95_mm") for n in names])
        return (f"| {label} | " + " | ".join(cells) + f" | {hd:.1f} | {d[worst]:.3f} "
                f"({worst}) | {sum(v < 0.5 for v in d.values())} |")

    lines.append(row("v0.1 default (*fixed*: chosen on the 10 BraTS 2018 cases)", report["v0.1"])
                 .replace("| nan |", "| — |"))
    for variant in list(VARIANTS) + ["2-D PCNN", DEFAULT_VARIANT]:
        label = ("**default: one-standard-error rule (`segment_tumor`)**" if variant == DEFAULT_VARIANT
                 else variant)
        lines.append(row(label, report["variants"][variant]["per_case"]))
    if "fitted" in report:
        if "one_component" in report["fitted"]:
            lines.append(row("fitted readout, one component kept",
                             report["fitted"]["one_component"]).replace("| nan |", "| — |"))
        lines.append(row("fitted readout (trees on per-voxel features)",
                         report["fitted"]["per_case"]))
    lines += ["", "HD95 averages the cases with a non-empty result."]
    lines += ["", "Constants chosen per fold, default: " + "; ".join(
        f"fold {k}: {_kw(v)}" for k, v in report["variants"][DEFAULT_VARIANT]["chosen"].items())
        + ".", "Regions per fold: " + "; ".join(
        f"{k}: {_kw(v)}" for k, v in report["regions"]["chosen"].items()) + "."]
    if "fitted" in report:
        lines.append("Fitted readout decision (inner CV on the training folds) per fold: "
                     + "; ".join(f"{k}: {_kw(v)}" for k, v in report["fitted"]["decision"].items())
                     + ".")
    lines += ["", "Refit on all cases: the committed defaults of `pcnnseg.tumor` (not a result: "
              "every case chose them): " + _kw(report["refit"]) + ". Module constants: "
              + _kw(report["module_constants"]) + "."]
    lines += ["", "## Regions (held-out)", "",
              "| | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
    for source, per_case, label in [("default", regions, "default")] + (
            [("fitted", report["fitted"]["regions"], "fitted readout's WT")]
            if "fitted" in report else []):
        for r, short in (("whole_tumor", "WT"), ("tumor_core", "TC"), ("enhancing", "ET")):
            lines.append(f"| {short} Dice, {label} | " + " | ".join(
                f"{_mean([per_case[n][r] for n in g]):.3f}" for g in groups.values()) + " |")
    for label, per_case in report["regions"].get("ablation", {}).items():
        for r, short in (("tumor_core", "TC"), ("enhancing", "ET")):
            lines.append(f"| {short} Dice, default, {label} | " + " | ".join(
                f"{_mean([per_case[n][r] for n in g]):.3f}" for g in groups.values()) + " |")
    if report["regions"].get("ablation"):
        lines += ["", "The part of the T1 contrast subtracted from T1ce (`t1_part`: the signed "
                      "contrast, or its positive part only) is chosen by the folds with the "
                      "enhancement threshold and T1 weight, and then the necrosis step (fluid, "
                      "`C_t2 - C_flair` over `necrosis_threshold`, joins the core; off, or "
                      f"one of the thresholds {', '.join(str(t) for t in NECROSIS[1:])}), the "
                      "rest held, by the one-standard-error rule (a threshold only if it "
                      "beats no necrosis step by more than a standard error on the training "
                      "folds); the last rows hold one of them fixed, or choose the necrosis "
                      "step by the best mean instead. Both were tried "
                      "after exploratory comparisons on all 22 cases (the positive part: "
                      "enhancing Dice up by 0.03 on the fitted readout's held-out whole "
                      "tumor; the necrosis step: core Dice up by 0.02 on the "
                      "expert whole tumor), so their rows are not independent of those ideas. "
                      "So was the Otsu share (`enhancing_otsu`: the enhancement threshold "
                      "rises to that share of the case's Otsu threshold on the enhancement "
                      "of the whole tumor): on the expert whole tumor of all 22 cases, "
                      "enhancing Dice 0.797 with a share of 0.6 against 0.751 at the best "
                      "fixed threshold."]
    t = report["timing"]
    med = lambda key: float(np.median([t[n][key] for n in names]))  # noqa: E731
    lines += ["", "## Cost of the refit default (2 cores, median of repeated runs per case)", "",
              f"- seconds per volume, WT: median {med('seconds_wt'):.2f}, "
              f"max {max(t[n]['seconds_wt'] for n in names):.2f}",
              f"- seconds per volume, WT and regions: median {med('seconds_regions'):.2f}, "
              f"max {max(t[n]['seconds_regions'] for n in names):.2f}",
              f"- per slice with brain (regions run): {med('neuron_updates_per_slice') / 1e6:.2f} M "
              f"neuron updates, {med('synaptic_events_per_slice') / 1e3:.1f} k synaptic events, "
              f"{med('op_energy_mj_per_slice'):.3f} mJ (estimate: operation counts x Horowitz "
              "2014 45 nm energies, event-driven, arithmetic only; `pcnnseg.energy`)"]
    norm = report["normalisation"]
    lines += ["", "## Normalisation", "",
              f"Tumor's median FLAIR across the {len(names)} cases: robust z (median / MAD) mean "
              f"{norm['robust_z']['mean']:.2f}, coefficient of variation {norm['robust_z']['cv']:.2f}; "
              f"tissue contrast (mode / 99th percentile) mean {norm['tissue_contrast']['mean']:.2f}, "
              f"coefficient of variation {norm['tissue_contrast']['cv']:.2f}."]
    fitted_col = "fitted" in report
    lines += ["", "## Per case (held-out, but the *fixed* v0.1 column)", "",
              "| case | collection | fold | v0.1 WT (*fixed*) | default WT | WT HD95 mm | TC | ET | "
              + ("fitted WT | " if fitted_col else "") + "s WT | s regions |",
              "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if fitted_col else "")
              + "---:|---:|"]
    for n in names:
        hd = default[n]["hd95_mm"]
        fit = f"{report['fitted']['per_case'][n]['dice']:.3f} | " if fitted_col else ""
        lines.append(
            f"| {n} | {report['collections'][n]} | {report['folds'][n]} | "
            f"{report['v0.1'][n]['dice']:.3f} | {default[n]['dice']:.3f} | "
            f"{'—' if hd is None else f'{hd:.1f}'} | {regions[n]['tumor_core']:.3f} | "
            f"{regions[n]['enhancing']:.3f} | {fit}{t[n]['seconds_wt']:.2f} | "
            f"{t[n]['seconds_regions']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
