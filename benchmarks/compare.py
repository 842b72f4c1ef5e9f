"""Head to head on real MRI: the PCNN pipeline against the compressed U-Net and the U-Net.

Methods, on the same validation cases (those of the bundled U-Net's split, never
trained on, though they chose its epoch and recipe) and the same slices:

- ``pcnn``: :func:`pcnnseg.segment_tumor` on the case's four sequences, plus the
  tumor box of every brain slice read off that map (:func:`pcnnseg.detect_volume`
  given the mask; on a single slice, the box of the slice's map). The
  segmentation constants of each validation case are those its fold of the
  cross-validation in ``segmentation.json`` chose on the other folds
  (``benchmarks/segmentation.py``), so no segmentation constant was chosen on
  the validation labels (the method's design was fixed on all cases, these
  included: the report says so); without that
  file, the package defaults (refit on every case, so not held-out figures:
  the report says which);
- ``cnn_fp32``, ``cnn_int8``: :func:`cnn_baseline.predict` with the bundled
  weights, fp32 and int8;
- ``unet_fp32``: the classic U-Net, untrained (size and speed only); its volume
  is timed once, on the first case, at the highest thread count.

Each (method, thread count) runs in its own process (``--worker``), so peak
resident memory and CPU time belong to that method alone; the processes run in
``--rounds`` rounds, the order of methods rotating, and medians pool the rounds.
Per worker:

- latency per slice: the whole method on one 2-D slice (the slice with the most
  tumor pixels in each case), ``--slice-repeats`` times; per volume: the whole method on each
  case's volume (slices with at least 100 brain pixels, as the U-Net's
  training);
- throughput: brain slices per second over the volume runs;
- CPU seconds (this process, all threads) of the volume runs, and the counters
  of :class:`pcnnseg.energy.EnergyMeter` (RAPL, NVML) where readable;
- operations: PCNN neuron updates and synaptic events recorded during the volume
  runs (:func:`pcnnseg.energy.pcnn_operations`); U-Net MACs per slice
  (:func:`cnn_baseline.count_macs`) times the slices segmented;
- peak resident memory (``ru_maxrss``) and the resident memory after loading the
  data, before the method (the difference is the method's).

Energy per slice is reported per source: measured (RAPL / NVML) when a counter
was readable, and two labelled estimates: CPU seconds x ``--watts-per-core``
(:func:`pcnnseg.energy.energy_from_cpu_time`) and operation counts x Horowitz's
45 nm energies (:func:`pcnnseg.energy.energy_from_operations`; for the PCNN both
event-driven and dense synaptic counts; the clean-up and the boxes
are not PCNN operations and are not in that count, but are in the CPU time).

Usage::

    python benchmarks/compare.py [--data DIR [DIR ...]] [--threads 1 2]
        [--rounds 2] [--slice-repeats 10] [--watts-per-core 10]
    python benchmarks/compare.py --report-only   # remake the report from compare.json

Writes ``benchmarks/results/compare.json``, ``compare.md``,
``compare_dice_energy.png`` and ``compare_latency.png`` (plots need matplotlib:
``pip install pcnnseg[plots]``). Exits 0 with a message when the data folder or
the bundled weights are absent.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pcnnseg import energy, metrics  # noqa: E402
from pcnnseg.io import BRATS_SEQUENCES, load_brats_case  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DEFAULT_DATA = [os.path.join(SHARED, "brats2018"), os.path.join(SHARED, "brats2023_ssa")]
RESULTS = os.path.join(ROOT, "benchmarks", "results")
METHODS = ("pcnn", "pcnn_segment", "cnn_fp32", "cnn_int8", "unet_fp32")
LABELS = {"pcnn": "PCNN (segment + boxes)", "pcnn_segment": "PCNN (segment only)",
          "cnn_fp32": "compressed U-Net fp32",
          "cnn_int8": "compressed U-Net int8", "unet_fp32": "U-Net fp32 (untrained)"}
ACCURACY_KEYS = ("dice", "hd95_mm", "cases", "detection_hit_rate", "detection_slices")
MIN_BRAIN_PIXELS = 100
MIN_TUMOR_PIXELS = 500  # slices that score detection


# ------------------------------------------------------------------ one method

def _rss_mib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PCNN:
    """Whole-tumor segmentation of the volume, with or without the tumor box of every
    brain slice read off it; ``constants`` maps a case name to segment_tumor's keywords."""

    def __init__(self, constants, *, detection=True):
        import pcnnseg

        self.pcnnseg = pcnnseg
        self.constants = constants
        self.detection = detection

    @staticmethod
    def _sequences(stack):
        return dict(zip(BRATS_SEQUENCES, stack))

    def slice(self, stack, flair, name):
        from pcnnseg.boxes import largest_component_box

        mask = self.pcnnseg.segment_tumor(self._sequences(stack),
                                          **self.constants.get(name, {}))
        return mask, largest_component_box(mask) if self.detection else None

    def volume(self, stack, flair, slices, name, spacing):
        seqs = self._sequences(stack)
        mask = self.pcnnseg.segment_tumor(seqs, spacing=spacing, **self.constants.get(name, {}))
        boxes = None
        if self.detection:
            found = self.pcnnseg.detect_volume(seqs, whole_tumor=mask, spacing=spacing)
            boxes = {int(z): found.slices[z].box for z in slices}
        return mask, boxes

    def describe(self):
        from pcnnseg.segmentation import intensity_order_model

        params, M, W = intensity_order_model().kernel_params()
        return {"parameters": int(params.size + M.size + W.size),
                "parameters_note": f"{params.size} kernel constants, {M.size + W.size} "
                                   f"synaptic weights",
                "size_on_disk_bytes": 0, "size_note": "nothing learned to store"}


class _CNN:
    def __init__(self, method):
        import torch

        import cnn_baseline

        torch.set_flush_denormal(True)
        self.cb, self.method = cnn_baseline, method
        if method == "unet_fp32":
            torch.manual_seed(0)
            self.model = cnn_baseline.UNet().eval()
        else:
            self.model = cnn_baseline.load_pretrained(method == "cnn_int8")

    def slice(self, stack, flair, name):
        return self.cb.predict(stack, model=self.model), None

    def volume(self, stack, flair, slices, name, spacing):
        return self.cb.predict(stack, model=self.model,
                               min_brain_pixels=MIN_BRAIN_PIXELS), None

    def describe(self):
        """Size and MACs; called after the peak memory was read (int8 counts on fp32)."""
        fp32 = self.cb.load_pretrained() if self.method == "cnn_int8" else self.model
        n = self.cb.count_parameters(fp32)
        out = {"parameters": n, "macs_per_slice": self.cb.count_macs(fp32),
               "precision": "int8" if self.method == "cnn_int8" else "fp32"}
        if self.method == "cnn_int8":  # its first level runs in float (quantize.py)
            out["float_macs_per_slice"] = self.cb.count_macs(fp32.inc)
        if self.method == "unet_fp32":
            return {**out, "size_on_disk_bytes": 4 * n,
                    "size_note": "fp32 parameters (not saved: untrained)"}
        return {**out, "size_on_disk_bytes": self.cb.bundle.compressed_size(self.model),
                "size_note": "state dict, LZMA-compressed"}


def _load(data, name):
    """Case, its (4, Z, Y, X) stack, its brain slices, and the slice timed alone
    (the one with the most tumor pixels)."""
    from cnn_baseline.data import normalize_case
    from pcnnseg.preprocess import nonempty_slices

    folders = [os.path.join(d, name) for d in data if os.path.isdir(os.path.join(d, name))]
    if not folders:
        raise FileNotFoundError(f"case {name!r} is in none of {data}")
    case = load_brats_case(folders[0])
    stack = np.stack([case.images[s] for s in BRATS_SEQUENCES])
    brain = normalize_case(stack)[1]
    slices = nonempty_slices(brain, min_pixels=MIN_BRAIN_PIXELS)
    tumor = case.labels > 0
    mid = int(np.argmax(tumor.sum(axis=(1, 2))))
    return case, stack, slices, mid


def worker(args):
    """Run one method at one thread count; write its figures as JSON to ``args.out``."""
    import numba

    numba.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover - the parent checks for torch
        pass
    from pcnnseg.boxes import box_iou, largest_component_box
    from pcnnseg.simulate import record_runs

    loaded = [_load(args.data, n) for n in args.cases]
    rss_data = _rss_mib()
    pcnn = args.worker.startswith("pcnn")
    constants = {}
    if pcnn and args.pcnn_constants:
        with open(args.pcnn_constants) as fh:
            constants = json.load(fh)
    runner = (_PCNN(constants, detection=args.worker == "pcnn") if pcnn
              else _CNN(args.worker))
    unet = args.worker == "unet_fp32"
    first = loaded[0]
    runner.slice(first[1][:, first[3]], first[0].images["flair"][first[3]], first[0].name)

    slice_s = []
    for _ in range(min(args.slice_repeats, 3) if unet else args.slice_repeats):
        for case, stack, _, mid in loaded:
            t0 = time.perf_counter()
            runner.slice(stack[:, mid], case.images["flair"][mid], case.name)
            slice_s.append(time.perf_counter() - t0)

    volumes = []
    run_volumes = args.volumes and (not unet or args.threads == max(args.all_threads))
    for case, stack, slices, _ in (loaded[:1] if unet else loaded) if run_volumes else []:
        flair = case.images["flair"]
        with record_runs() as runs, energy.EnergyMeter(nvml=args.nvml) as meter:
            mask, boxes = runner.volume(stack, flair, slices, case.name,
                                        tuple(reversed(case.geometry.spacing)))
        row = {"case": case.name, "slices": int(len(slices)),
               "wall_s": meter.wall_seconds, "cpu_s": meter.cpu_seconds,
               "counters": [e.to_dict() for e in meter.energies]}
        if pcnn:
            row["pcnn_operations"] = energy.pcnn_operations(runs)
        if args.accuracy and not unet:
            truth = case.labels > 0
            m = metrics.evaluate(mask, truth, spacing=tuple(case.geometry.spacing[::-1]))
            row["dice"], row["hd95_mm"] = m["dice"], m["hausdorff95"]
            if boxes is not None:
                scored = [z for z in boxes if truth[z].sum() >= MIN_TUMOR_PIXELS]
                hits = [boxes[z] is not None
                        and box_iou(boxes[z], largest_component_box(truth[z])) >= 0.5
                        for z in scored]
                row["detection_slices"], row["detection_hits"] = len(scored), int(sum(hits))
        volumes.append(row)

    out = {"method": args.worker, "threads": args.threads, "slice_s": slice_s,
           "volumes": volumes, "rss_after_data_mib": rss_data,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           **runner.describe()}
    with open(args.out, "w") as fh:
        json.dump(out, fh)
    return 0


# ------------------------------------------------------------------ the run

def cross_validated_constants(cases, path=os.path.join(RESULTS, "segmentation.json")):
    """segment_tumor's keywords for each case: those its cross-validation fold chose
    on the other folds (``benchmarks/segmentation.py``), and whether every case
    has them (else the package defaults, which were fitted on every case)."""
    try:
        with open(path) as fh:
            report = json.load(fh)
        chosen = report["variants"]["default"]["chosen"]
        constants = {c: chosen[str(report["folds"][c])] for c in cases}
    except (OSError, ValueError, KeyError, TypeError):
        return {}, False   # no results yet, an older format, or a case outside the study
    return constants, True


def _run_worker(method, threads, args, out, accuracy):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(max(args.threads)),
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method,
           "--data", *args.data, "--out", out,
           "--slice-repeats", str(args.slice_repeats), "--worker-threads", str(threads),
           "--threads", *map(str, args.threads), "--cases", *args.cases]
    cmd += ["--accuracy"] if accuracy else []
    cmd += ["--pcnn-constants", args.pcnn_constants] if args.pcnn_constants else []
    cmd += ["--nvml"] if args.nvml else []
    cmd += [] if args.volumes else ["--no-volumes"]
    subprocess.run(cmd, check=True, env=env)
    with open(out) as fh:
        return json.load(fh)


def _median(values):
    return float(np.median(values)) if len(values) else None


def summarise(runs, *, watts_per_core):
    """Pool the workers' raw figures into one row per (method, threads)."""
    rows = []
    keys = sorted({(r["method"], r["threads"]) for r in runs},
                  key=lambda k: (METHODS.index(k[0]), k[1]))
    for method, threads in keys:
        mine = [r for r in runs if r["method"] == method and r["threads"] == threads]
        first = mine[0]
        vols = [v for r in mine for v in r["volumes"]]
        row = {"method": method, "label": LABELS[method], "threads": threads,
               "parameters": first["parameters"],
               "size_on_disk_bytes": first["size_on_disk_bytes"],
               "size_note": first.get("size_note", ""),
               "latency_slice_ms": 1e3 * _median([s for r in mine for s in r["slice_s"]]),
               "peak_rss_mib": max(r["peak_rss_mib"] for r in mine),
               "rss_after_data_mib": _median([r["rss_after_data_mib"] for r in mine]),
               "peak_above_data_mib": max(r["peak_rss_mib"] - r["rss_after_data_mib"]
                                          for r in mine),
               "n_volume_runs": len(vols)}
        if vols:
            n_slices = sum(v["slices"] for v in vols)
            row["latency_volume_s"] = _median([v["wall_s"] for v in vols])
            row["throughput_slices_per_s"] = n_slices / sum(v["wall_s"] for v in vols)
            cpu_per_slice = _median([v["cpu_s"] / v["slices"] for v in vols])
            row["cpu_s_per_slice"] = cpu_per_slice
            est = energy.energy_from_cpu_time(cpu_per_slice, watts_per_core=watts_per_core)
            row["energy_per_slice"] = {"estimate:cpu-time": est.to_dict()}
            if method.startswith("pcnn"):
                ops = {k: sum(v["pcnn_operations"][k] for v in vols) / n_slices
                       for k in vols[0]["pcnn_operations"]}
                row["operations_per_slice"] = ops
                for mode, event in (("event-driven", True), ("dense", False)):
                    counts = {k: int(c) for k, c in
                              energy.pcnn_arithmetic(ops, event_driven=event).items()}
                    e = energy.energy_from_operations(counts)
                    row["energy_per_slice"][f"estimate:operations ({mode})"] = e.to_dict()
            else:
                # predict() runs the network once on each brain slice
                macs = first["macs_per_slice"]
                in_float = first.get("float_macs_per_slice", 0)
                row["operations_per_slice"] = {"macs": macs, "float_macs": in_float}
                counts = energy.cnn_arithmetic(macs - in_float, precision=first["precision"])
                for op, n in energy.cnn_arithmetic(in_float).items():
                    counts[op] = counts.get(op, 0) + n
                e = energy.energy_from_operations(counts)
                row["energy_per_slice"]["estimate:operations"] = e.to_dict()
            for source in ("rapl", "nvml"):
                readings = [c["joules"] / v["slices"] for v in vols for c in v["counters"]
                            if c["source"] == source and c["joules"] is not None]
                if readings:
                    row["energy_per_slice"][source] = {
                        "joules": _median(readings), "source": source,
                        "detail": next(c["detail"] for v in vols for c in v["counters"]
                                       if c["source"] == source and c["joules"] is not None)}
            scored = [v for v in vols if "dice" in v]
            if scored:
                row["cases"] = {v["case"]: {"dice": v["dice"], "hd95_mm": v["hd95_mm"]}
                                for v in scored}
                row["dice"] = float(np.mean([v["dice"] for v in scored]))
                row["hd95_mm"] = float(np.mean([v["hd95_mm"] for v in scored]))
                if "detection_slices" in scored[0]:
                    n = sum(v["detection_slices"] for v in scored)
                    row["detection_hit_rate"] = sum(v["detection_hits"] for v in scored) / n
                    row["detection_slices"] = n
        rows.append(row)
    # Accuracy does not depend on the thread count: it is scored once per method.
    for scored in [r for r in rows if "dice" in r]:
        for r in rows:
            if r["method"] == scored["method"] and "dice" not in r:
                r.update({k: scored[k] for k in ACCURACY_KEYS if k in scored})
    return rows


def energy_sources(rows, watts_per_core):
    """Where the energy figures come from, in words, with the models' constants."""
    pj = energy.HOROWITZ_45NM_PJ
    measured = any(s in r.get("energy_per_slice", {}) for r in rows for s in ("rapl", "nvml"))
    return "; ".join([
        "RAPL / NVML counters: " + ("read (see energy_per_slice)" if measured
                                    else "none readable on this machine (no figure measured)"),
        f"estimate: CPU seconds x {watts_per_core:g} W per busy core (assumed)",
        "estimate: operation counts x energy per operation (Horowitz, ISSCC 2014, 45 nm; "
        f"fp32 MAC {pj['fp32_mul'] + pj['fp32_add']:.1f} pJ, int8 MAC "
        f"{pj['int8_mul'] + pj['int32_add']:.1f} pJ with a 32-bit accumulate; arithmetic "
        "only, no memory traffic); PCNN: neuron updates + synaptic events (event-driven) "
        "or every synapse at every iteration (dense); U-Net: convolution MACs, the int8 "
        "network's first level counted in fp32 (it runs in float)",
    ])


def verdict(rows, method="pcnn"):
    """The goal: PCNN >= 10x cheaper per slice than the int8 U-Net, Dice within 0.05.

    Ratios of energy per slice (int8 over ``method``) for every source both have,
    at the lowest thread count (one thread when run: no core waits on another, so
    CPU time is the work's own); None when either lacks volume runs or Dice.
    """
    low = min(r["threads"] for r in rows)
    by = {r["method"]: r for r in rows if r["threads"] == low}
    pcnn, int8 = by.get(method), by.get("cnn_int8")
    if not pcnn or not int8 or any("energy_per_slice" not in r or "dice" not in r
                                   for r in (pcnn, int8)):
        return None
    ratios = {}
    for source, e in int8["energy_per_slice"].items():
        if source.startswith("estimate:operations"):
            for mode in ("event-driven", "dense"):
                mine = pcnn["energy_per_slice"][f"estimate:operations ({mode})"]["joules"]
                ratios[f"estimate:operations ({mode})"] = e["joules"] / mine
        elif source in pcnn["energy_per_slice"]:
            ratios[source] = e["joules"] / pcnn["energy_per_slice"][source]["joules"]
    dice_gap = int8["dice"] - pcnn["dice"]
    return {"method": method, "threads": low, "energy_ratio_int8_over_pcnn": ratios,
            "dice_int8_minus_pcnn": dice_gap,
            "energy_goal_met": {k: v >= 10 for k, v in ratios.items()},
            "dice_goal_met": dice_gap <= 0.05}


def _count(n):
    """An operation count for the table: 3.5 k, 478.5 k, 1.70 M, 815 M."""
    if n < 1e3:
        return f"{n:.0f}"
    if n < 1e6:
        return f"{n / 1e3:.1f} k"
    return f"{n / 1e6:.2f} M" if n < 1e7 else f"{n / 1e6:.0f} M"


def markdown(summary, rows):
    top = max(r["threads"] for r in rows)
    low = min(r["threads"] for r in rows)
    lines = [
        "# PCNN pipeline against the compressed U-Net: Dice, latency, memory, energy",
        "",
        f"{summary['date']}; {summary['machine']}; torch {summary['torch']}, numba "
        f"{summary['numba']}. `python benchmarks/compare.py` ({summary['rounds']} rounds, "
        f"{summary['slice_repeats']} slice repeats).",
        f"Validation cases (never in the U-Net's training, but they chose its epoch by "
        f"early stopping, its training recipe's departures from the paper and its int8 "
        f"network's float first level: baseline.md): "
        f"{', '.join(summary['cases'])}. The PCNN's boxes are read off its tumor map "
        f"(`pcnnseg.detect_volume`), so they add no PCNN work.",
        "Dice and HD95 of the whole tumor on the whole volumes; latencies are medians; "
        "per-slice energy divides a volume run by its brain slices.",
        ("PCNN figures are cross-validated: each case's segmentation constants were chosen "
         "by its fold of `benchmarks/segmentation.py` on the other folds ("
         + "; ".join(f"{c}: " + ", ".join(f"{k}={v}" for k, v in kw.items())
                     for c, kw in summary.get("pcnn_constants", {}).items()) + ")."
         if summary.get("pcnn_held_out") else
         "PCNN figures are NOT held-out: the package defaults were fitted on every case, "
         "these included (run benchmarks/segmentation.py first)."),
        "What was not held out: the PCNN method itself (tissue contrast, candidate grids, "
        "stimulus scale, clean-up) was fixed during development on all 22 cases of "
        "segmentation.md, these included, and so was the choice to read the boxes off "
        "the map (volume_detection.md).",
        "",
        f"Energy: {summary['energy_sources']}",
        "",
        f"## All methods: latency and memory at {top} thread(s), energy at {low}",
        "",
        "| method | WT Dice | HD95 mm | slice ms | volume s | slices/s | "
        "peak RSS MiB (above loaded data) | "
        "params | size MiB | ops / slice | energy / slice, CPU-time est. mJ | "
        "energy / slice, op-count est. mJ |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]

    def f(value, fmt):
        return "—" if value is None else format(value, fmt)

    for r in (r for r in rows if r["threads"] == top):
        e = next((x for x in rows if x["method"] == r["method"] and x["threads"] == low),
                 r).get("energy_per_slice", {})
        if r["method"].startswith("pcnn"):
            ops = r.get("operations_per_slice", {})
            ops_text = (f"{_count(ops['neuron_updates'])} neuron updates, "
                        f"{_count(ops['synaptic_events'])} synaptic events"
                        if ops else "—")
            op_mj = " / ".join(f(e.get(f"estimate:operations ({m})", {}).get("joules") and
                                 e[f"estimate:operations ({m})"]["joules"] * 1e3, ".3f")
                               for m in ("event-driven", "dense")) + " (event / dense)"
        else:
            macs = r.get("operations_per_slice", {}).get("macs")
            in_float = r.get("operations_per_slice", {}).get("float_macs")
            ops_text = f"{_count(macs)} MACs" if macs else "—"
            if macs and in_float and r["method"] == "cnn_int8":
                ops_text += f" ({_count(in_float)} in fp32)"
            j = e.get("estimate:operations", {}).get("joules")
            op_mj = f(j and j * 1e3, ".3f")
        cpu = e.get("estimate:cpu-time", {}).get("joules")
        lines.append(
            f"| {r['label']} | {f(r.get('dice'), '.3f')} | {f(r.get('hd95_mm'), '.1f')} | "
            f"{r['latency_slice_ms']:.1f} | {f(r.get('latency_volume_s'), '.2f')} | "
            f"{f(r.get('throughput_slices_per_s'), '.1f')} | {r['peak_rss_mib']:.0f} "
            f"({r['peak_above_data_mib']:+.0f}) | "
            f"{r['parameters']:,} | {r['size_on_disk_bytes'] / 2**20:.2f} | {ops_text} | "
            f"{f(cpu and cpu * 1e3, '.0f')} | {op_mj} |")
    lines += ["", "slice ms: the whole method on one 240 x 240 slice of four sequences (each "
                  "case's slice with the most tumor); for the U-Nets `cnn_baseline.predict`, "
                  "with its normalisation, cropping and resampling to 128 x 128 and pasting "
                  "back; each method in its own process, the methods side by side in rotating "
                  "rounds. benchmarks/results/baseline.md times the U-Net's forward pass alone "
                  "on a prepared 1 x 4 x 128 x 128 tensor, its variants in one process, in "
                  "another run: its milliseconds are lower. Compare the PCNN with the figures "
                  "here."]
    pcnn = next((r for r in rows if r["method"] == "pcnn" and r["threads"] == top), None)
    if pcnn and "detection_hit_rate" in pcnn:
        lines += ["", f"PCNN detection on the same volumes: hit rate (IoU >= 0.5) "
                      f"{pcnn['detection_hit_rate']:.3f} over {pcnn['detection_slices']} "
                      f"slices with at least {MIN_TUMOR_PIXELS} tumor pixels (boxes read off "
                      "the tumor map; its cross-validated figures over 22 cases are in "
                      "volume_detection.md)."]
    per_case = [r for r in rows if r["threads"] == top and "cases" in r]
    if per_case:
        lines += ["", "Per case (Dice / HD95 mm): " + "; ".join(
            f"{r['label']}: " + ", ".join(f"{c} {v['dice']:.3f} / {v['hd95_mm']:.1f}"
                                          for c, v in r["cases"].items())
            for r in per_case) + "."]
    by_method = {r["method"]: r for r in per_case}
    if "cnn_int8" in by_method:
        int8 = by_method["cnn_int8"]["cases"]
        said = []
        for method in ("pcnn", "pcnn_segment"):
            mine = by_method.get(method, {}).get("cases", {})
            gaps = {c: mine[c]["dice"] - int8[c]["dice"] for c in mine if c in int8}
            if gaps and gaps not in said:   # the same masks: said once
                said.append(gaps)
                names = " and ".join(LABELS[m] for m in ("pcnn", "pcnn_segment")
                                     if by_method.get(m, {}).get("cases") == mine)
                lines.append(
                    f"Dice, {names} minus the int8 U-Net, per case: "
                    + ", ".join(f"{c} {g:+.3f}" for c, g in gaps.items())
                    + f"; mean {np.mean(list(gaps.values())):+.3f} over {len(gaps)} "
                    "case(s): a difference on these cases, not an estimate for others.")
    lines += ["", "## Thread scaling", "",
              "| method | threads | slice ms | volume s | slices/s | CPU s / slice |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['threads']} | {r['latency_slice_ms']:.1f} | "
                     f"{f(r.get('latency_volume_s'), '.2f')} | "
                     f"{f(r.get('throughput_slices_per_s'), '.1f')} | "
                     f"{f(r.get('cpu_s_per_slice'), '.3f')} |")
    lines += ["", "CPU seconds include threads waiting for work; with more threads than "
                  "busy cores they overstate the work, hence energy at one thread."]
    verdicts = [v for v in summary.get("verdicts", []) if v]
    if verdicts:
        lines += ["", "## Goal: PCNN >= 10x cheaper per slice than the int8 U-Net, Dice "
                      "within 0.05", ""]
    for v in verdicts:
        ratios = ", ".join(f"{k} {x:.2f}x ({'met' if v['energy_goal_met'][k] else 'not met'})"
                           for k, x in v["energy_ratio_int8_over_pcnn"].items())
        met = all(v["energy_goal_met"].values()) and v["dice_goal_met"]
        lines += [f"- {LABELS[v['method']]}: energy per slice, int8 U-Net / PCNN "
                  f"({v['threads']} thread(s)): {ratios}. Dice int8 - PCNN "
                  f"{v['dice_int8_minus_pcnn']:+.3f} ("
                  f"{'met' if v['dice_goal_met'] else 'not met'}). "
                  f"Goal {'met on every estimate' if met else 'not met'}."]
    return "\n".join(lines) + "\n"


def plots(rows, folder):
    """Dice against energy per slice, and latency bars; None when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    low = min(r["threads"] for r in rows)
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in (r for r in rows if r["threads"] == low and "dice" in r
              and "energy_per_slice" in r):
        j = r["energy_per_slice"]["estimate:cpu-time"]["joules"] * 1e3
        ax.scatter(j, r["dice"], s=40)
        ax.annotate(r["label"], (j, r["dice"]), textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per slice, mJ ({low} thread(s); estimate: CPU seconds x W per core)")
    ax.set_ylabel("whole-tumor Dice (validation volumes)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    paths.append(os.path.join(folder, "compare_dice_energy.png"))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    threads = sorted({r["threads"] for r in rows})
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(threads)
    for k, t in enumerate(threads):
        values = [next((r["latency_slice_ms"] for r in rows
                        if r["method"] == m and r["threads"] == t), np.nan) for m in methods]
        ax.bar(np.arange(len(methods)) + k * width, values, width, label=f"{t} thread(s)")
    ax.set_xticks(np.arange(len(methods)) + width * (len(threads) - 1) / 2)
    ax.set_xticklabels([LABELS[m] for m in methods], rotation=15, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("latency per slice, ms (median)")
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(folder, "compare_latency.png"))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", default=DEFAULT_DATA,
                   help="folders of BraTS case folders (default: both collections)")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="thread counts to run (default 1 to all cores)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--slice-repeats", type=int, default=10)
    p.add_argument("--watts-per-core", type=float, default=energy.DEFAULT_WATTS_PER_CORE)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--nvml", action="store_true", help="also read NVML (GPU) counters")
    p.add_argument("--no-volumes", dest="volumes", action="store_false",
                   help="slices only (quick check)")
    p.add_argument("--results", default=RESULTS, help="output folder")
    p.add_argument("--report-only", action="store_true",
                   help="remake compare.md and the plots from the folder's compare.json "
                        "(no new measurement)")
    # Worker-only options, set by the parent.
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--cases", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--accuracy", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pcnn-constants", help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    args.threads = args.threads or list(range(1, (os.cpu_count() or 1) + 1))
    if args.worker:
        args.all_threads, args.threads = args.threads, args.worker_threads
        return worker(args)
    if args.report_only:
        with open(os.path.join(args.results, "compare.json")) as fh:
            saved = json.load(fh)
        rows = summarise(saved["raw"], watts_per_core=saved["summary"]["watts_per_core"])
        return write_report(args.results, saved["summary"], rows, saved["raw"])
    if not any(os.path.isdir(d) for d in args.data):
        print(f"no data at {args.data}: nothing to compare")
        return 0
    try:
        import numba
        import torch

        import cnn_baseline
    except ImportError as err:
        print(f"needs the baseline extra (PyTorch): {err}")
        return 0
    if not cnn_baseline.inference.FP32_WEIGHTS.is_file():
        print("bundled weights missing: train and quantize first")
        return 0
    split = cnn_baseline.load_pretrained().info["split"]
    args.cases = split["val_cases"]
    constants, held_out = cross_validated_constants(args.cases)
    load = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        args.pcnn_constants = os.path.join(tmp, "pcnn_constants.json")
        with open(args.pcnn_constants, "w") as fh:
            json.dump(constants, fh)
        for rnd in range(args.rounds):
            order = args.methods[rnd % len(args.methods):] + args.methods[
                :rnd % len(args.methods)]
            for threads in args.threads:
                for method in order:
                    accuracy = rnd == 0 and threads == max(args.threads)
                    t0 = time.perf_counter()
                    runs.append(_run_worker(method, threads, args,
                                            os.path.join(tmp, "out.json"), accuracy))
                    print(f"round {rnd + 1}, {threads} thread(s), {method}: "
                          f"{time.perf_counter() - t0:.0f} s", flush=True)
    rows = summarise(runs, watts_per_core=args.watts_per_core)
    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__, "numba": numba.__version__,
        "cases": args.cases, "train_cases": split["train_cases"], "rounds": args.rounds,
        "slice_repeats": args.slice_repeats, "threads": args.threads,
        "watts_per_core": args.watts_per_core,
        "pcnn_constants": constants, "pcnn_held_out": held_out,
        "loadavg_at_start": [round(v, 2) for v in load],
        "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
    }
    os.makedirs(args.results, exist_ok=True)
    return write_report(args.results, summary, rows, runs)


def write_report(folder, summary, rows, runs):
    """compare.json, compare.md and the plots in ``folder``; the verdicts and the
    statement of energy sources are (re)made here."""
    summary["energy_sources"] = energy_sources(rows, summary["watts_per_core"])
    summary["verdicts"] = [verdict(rows, m) for m in ("pcnn", "pcnn_segment")]
    with open(os.path.join(folder, "compare.json"), "w") as fh:
        json.dump({"summary": summary, "rows": rows, "raw": runs}, fh, indent=2)
    md = markdown(summary, rows)
    with open(os.path.join(folder, "compare.md"), "w") as fh:
        fh.write(md)
    print(md)
    made = plots(rows, folder)
    print("plots: " + (", ".join(made) if made else "skipped (pip install pcnnseg[plots])"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
