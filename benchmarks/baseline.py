"""The compressed U-Net baseline on its validation cases: accuracy, latency, size.

For the bundled weights (``cnn_baseline/weights``): fp32, int8 and, when it
is bundled, the pruned int8 network (:mod:`cnn_baseline.prune`; with
``--pruned DIR`` also every pruned network of that folder), on the
validation cases of their split (read from the weights; never trained on, but
they chose the epoch by early stopping and the int8 network's float first
level, as the report says):

* Dice and HD95 (mm) of each region the weights predict (whole tumor, tumor
  core, enhancing tumor) on each whole volume, with :func:`cnn_baseline.predict`;
* latency per slice: one forward pass on a ``(1, 4, 128, 128)`` slice, median of
  ``--slice-repeats`` runs; per volume: ``predict`` on the first validation case
  (normalisation, cropping, every slice with brain, pasting back), median of
  ``--volume-repeats`` runs. fp32 (default memory format), fp32 channels_last,
  int8 and pruned int8 are timed side by side, round-robin, in this one run;
* parameters (non-zero convolution weights left after pruning), multiply-
  accumulates per slice, and the size of each weights file on disk, as bundled
  and LZMA-compressed (``xz -9e``: what the zeros of pruning save); the classic
  U-Net's parameter count for comparison.

Usage::

    python benchmarks/baseline.py [--data DIR [DIR ...]] [--threads 2] [--pruned DIR]
        [--slice-repeats 30] [--volume-repeats 3]

Writes ``benchmarks/results/baseline.json`` and ``baseline.md``. Exits 0 with a
message when the data folder or the weights are absent.
"""
import argparse
import copy
import datetime
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

import cnn_baseline  # noqa: E402
from cnn_baseline import inference  # noqa: E402
from cnn_baseline.data import extract_slices  # noqa: E402
from cnn_baseline.networks import UNet, count_macs, count_parameters  # noqa: E402
from cnn_baseline.bundle import compressed_size  # noqa: E402
from cnn_baseline.prune import sparsity  # noqa: E402
from pcnnseg import metrics  # noqa: E402
from pcnnseg.io import BRATS_SEQUENCES, find_brats_cases, load_brats_case  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DEFAULT_DATA = [os.path.join(SHARED, "brats2018"), os.path.join(SHARED, "brats2023_ssa")]
RESULTS = os.path.join(ROOT, "benchmarks", "results")
#: Timed variants; the weights variant each runs (channels_last: fp32 weights).
TIMED = {"fp32": "fp32", "fp32_channels_last": "fp32", "int8": "int8",
         "pruned_int8": "pruned_int8"}


def _device_words(summary):
    """Where the weights were trained, in words."""
    device = summary.get("train_device", "cpu")
    where = "the GPU" if device == "cuda" else "the CPU"
    torch_version = summary.get("train_torch")
    return f"{where}, torch {torch_version}" if torch_version else where


def _median_ms(values):
    return float(np.median(values) * 1e3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slice-repeats", type=int, default=30)
    parser.add_argument("--volume-repeats", type=int, default=3)
    parser.add_argument("--pruned", default=None,
                        help="folder of python -m cnn_baseline.prune: also measure its "
                             "pruned_*_int8.pt.xz networks")
    args = parser.parse_args(argv)
    folders = {}
    for root in args.data:
        if os.path.isdir(root):
            folders.update({d.name: d for d in find_brats_cases(root)})
    if not folders:
        print(f"no data at {args.data}: nothing to evaluate")
        return 0
    if not (inference.FP32_WEIGHTS.is_file() and inference.INT8_WEIGHTS.is_file()):
        print("bundled weights missing: train and quantize first")
        return 0
    torch.set_num_threads(args.threads)
    # As in training: denormal floats can make CPU kernels many times slower.
    torch.set_flush_denormal(True)

    fp32 = cnn_baseline.load_pretrained()
    fp32_cl = copy.deepcopy(fp32).to(memory_format=torch.channels_last)
    models = {"fp32": (fp32, False), "fp32_channels_last": (fp32_cl, True),
              "int8": (cnn_baseline.load_pretrained(variant="int8"), False)}
    paths = {v: inference.VARIANTS[v] for v in inference.VARIANTS
             if inference.VARIANTS[v].is_file()}
    if "pruned_int8" in paths:
        models["pruned_int8"] = (cnn_baseline.load_pretrained(variant="pruned_int8"), False)
    bundled = list(paths)
    if args.pruned:   # the sweep of python -m cnn_baseline.prune, beside the bundled ones
        for f in sorted(pathlib.Path(args.pruned).glob("pruned_*_int8.pt.xz")):
            name = f.name[:-len(".pt.xz")]
            models[name] = (cnn_baseline.load_pretrained(variant="pruned_int8", path=f), False)
            paths[name] = f
    weights = list(paths)
    timed = [v for v in TIMED if v in models] + [v for v in weights if v not in TIMED]
    info = fp32.info
    split = info["split"]
    missing = [n for n in split["val_cases"] if n not in folders]
    if missing:
        print(f"validation cases {missing} not found in {args.data}: nothing to evaluate")
        return 0
    regions = info["regions"]
    load = os.getloadavg()

    # ---------------------------------------------------------------- accuracy
    rows = []
    first = None  # the case timed below; the others need not stay in memory
    for name in split["val_cases"]:
        case = load_brats_case(folders[name])
        if first is None:
            first = case
        truth = metrics.brats_regions(case.labels)
        spacing = tuple(case.geometry.spacing[::-1])
        for variant in weights:
            model, cl = models[variant]
            pred = cnn_baseline.predict(case, model=model, regions=regions, channels_last=cl)
            row = {"case": name, "variant": variant}
            for k, region in enumerate(regions):
                # One check of the pair and one confusion count for the three metrics.
                m = metrics.evaluate(pred[k], truth[region], spacing=spacing)
                row[f"dice_{region}"] = m["dice"]
                row[f"hd95_mm_{region}"] = m["hausdorff95"]
                row[f"sensitivity_{region}"] = m["sensitivity"]
                row[f"volume_ratio_{region}"] = float(pred[k].sum() / max(truth[region].sum(), 1))
            rows.append(row)
            print(row, flush=True)

    # ---------------------------------------------------------------- latency
    slices = extract_slices(first, regions=tuple(regions))
    mid = slices.images[len(slices.images) // 2][None]
    x = torch.from_numpy(np.ascontiguousarray(mid))
    inputs = {v: x.contiguous(memory_format=torch.channels_last) if models[v][1] else x
              for v in timed}
    slice_times = {v: [] for v in timed}
    with torch.no_grad():
        for v in timed:  # warm-up
            for _ in range(3):
                models[v][0](inputs[v])
        for _ in range(args.slice_repeats):
            for v in timed:
                t0 = time.perf_counter()
                models[v][0](inputs[v])
                slice_times[v].append(time.perf_counter() - t0)
    volume = np.stack([first.images[s] for s in BRATS_SEQUENCES])
    volume_times = {v: [] for v in timed}
    for _ in range(args.volume_repeats):
        for v in timed:
            model, cl = models[v]
            t0 = time.perf_counter()
            cnn_baseline.predict(volume, model=model, channels_last=cl)
            volume_times[v].append(time.perf_counter() - t0)

    # ---------------------------------------------------------------- size
    n_params = count_parameters(fp32)
    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "quantized_engine": info.get("backend", torch.backends.quantized.engine),
        "loadavg_at_start": [round(v, 2) for v in load],
        "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
        "regions": regions, "train_cases": split["train_cases"],
        "val_cases": split["val_cases"], "train_slices": split["train_slices"],
        "best_epoch": info["best_epoch"], "epochs_run": info["epochs_run"],
        "train_minutes": info["train_minutes"],
        "train_device": info.get("device", "cpu"), "train_torch": info.get("torch"),
        "recipe": {k: info.get(k) for k in ("tumor_share", "schedule", "monitor")},
        "parameters": n_params, "classic_unet_parameters": count_parameters(UNet()),
        "macs_per_slice": count_macs(fp32),
        "int8_float_macs_per_slice": count_macs(fp32.inc),
        "variants": weights, "bundled": bundled, "timed": timed,
        "files": {v: paths[v].name for v in weights},
        "collections": split.get("collections", {}),
        "size_on_disk_bytes": {v: paths[v].stat().st_size for v in weights},
        "size_standalone_xz_bytes": {v: compressed_size(models[v][0]) for v in weights},
        "nonzero_conv_weights": {"fp32": sparsity(fp32)[1]},
        "latency_slice_ms": {v: _median_ms(slice_times[v]) for v in timed},
        "latency_volume_s": {v: float(np.median(volume_times[v])) for v in timed},
        "volume_timed": split["val_cases"][0], "volume_slices_segmented": len(slices.index),
        "slice_repeats": args.slice_repeats, "volume_repeats": args.volume_repeats,
    }
    summary["pruning"] = {v: models[v][0].info["pruning"] for v in weights
                          if "pruning" in models[v][0].info}
    for v, pruning in summary["pruning"].items():
        summary["nonzero_conv_weights"][v] = pruning["remaining_weights"]
    for variant in weights:
        sel = [r for r in rows if r["variant"] == variant]
        summary[f"mean_{variant}"] = {k: float(np.mean([r[k] for r in sel]))
                                      for k in sel[0] if k not in ("case", "variant")}
    summary["dice_change_vs_fp32"] = {
        v: {region: summary[f"mean_{v}"][f"dice_{region}"]
            - summary["mean_fp32"][f"dice_{region}"] for region in regions}
        for v in weights if v != "fp32"}
    pcnn = os.path.join(RESULTS, "segmentation.json")
    try:   # the held-out figures of benchmarks/segmentation.py's cross-validation
        with open(pcnn) as fh:
            seg = json.load(fh)["variants"]["default"]["per_case"]
        summary["pcnn_dice_same_cases"] = {n: seg[n]["dice"] for n in split["val_cases"]
                                           if n in seg}
    except (OSError, ValueError, KeyError):
        pass

    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "baseline.json"), "w") as fh:
        json.dump({"summary": summary, "cases": rows,
                   "raw_latency_slice_s": slice_times, "raw_latency_volume_s": volume_times,
                   "training_history": info["history"]}, fh, indent=2)
    md = _markdown(summary, rows)
    with open(os.path.join(RESULTS, "baseline.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


def _markdown(s, rows):
    regions = s["regions"]
    short = {"whole_tumor": "WT", "tumor_core": "TC", "enhancing": "ET"}
    lat_s, lat_v = s["latency_slice_ms"], s["latency_volume_s"]
    collections = sorted({c for c in s.get("collections", {}).values()})
    lines = [
        "# Compressed U-Net baseline on its validation cases",
        "",
        f"{s['date']}; {s['machine']}, torch {s['torch']}, {s['threads']} threads, "
        f"quantized engine {s['quantized_engine']}. `python benchmarks/baseline.py`.",
        f"Bundled weights: trained on {len(s['train_cases'])} cases ({s['train_slices']} "
        f"slices{', collections ' + ', '.join(collections) if collections else ''}), "
        f"best of {s['epochs_run']} epochs = epoch {s['best_epoch']} "
        f"({s['train_minutes']} min on {_device_words(s)}); evaluated on the "
        f"{len(s['val_cases'])} validation cases {', '.join(s['val_cases'])}.",
        f"How the figures were obtained: the {len(s['val_cases'])} validation cases were "
        "never trained on, but they chose the epoch (the best score on them, early "
        "stopping), the training recipe's departures from the paper (tumor share "
        f"{s.get('recipe', {}).get('tumor_share')}, "
        f"schedule {s.get('recipe', {}).get('schedule')}, "
        "`cnn_baseline/weights/README.md`) and, for int8, that the first level stays in "
        "float (a diagnosis on earlier validation slices, `cnn_baseline/quantize.py`): the "
        "figures below are not fully independent of them.",
        "Dice and HD95 (95th percentile of surface distances, mm) on whole volumes, "
        "predicted slice by slice.",
        "",
        "Sensitivity and predicted / true volume show over- or under-segmentation.",
        "",
        "| case | weights | " + " | ".join(
            f"Dice {short[r]} | HD95 {short[r]} mm | sensitivity {short[r]} | "
            f"volume pred / true {short[r]}" for r in regions) + " |",
        "|---|---|" + "---:|---:|---:|---:|" * len(regions),
    ]

    def cells(r):
        return " | ".join(f"{r[f'dice_{g}']:.3f} | {_mm(r[f'hd95_mm_{g}'])} | "
                          f"{r[f'sensitivity_{g}']:.3f} | {r[f'volume_ratio_{g}']:.2f}"
                          for g in regions)

    for r in rows:
        lines.append(f"| {r['case']} | {r['variant']} | {cells(r)} |")
    for v in s["variants"]:
        lines.append(f"| **mean** | {v} | {cells(s[f'mean_{v}'])} |")
    missing = [short[g] for g in ("whole_tumor", "tumor_core", "enhancing") if g not in regions]
    if missing:
        lines += ["", f"{', '.join(missing)}: not measured, the bundled network predicts "
                      f"{', '.join(short[g] for g in regions)} only."]
    if len(regions) == 3:
        got = [s["mean_fp32"][f"dice_{g}"] for g in regions]
        verdict = ("reached" if all(d >= goal for d, goal in zip(got, (0.81, 0.77, 0.53)))
                   else "not reached")
        lines += ["", "Goal: at least the published Dice (Niepceron et al. 2020, BraTS 2015) "
                      "of 0.81 whole tumor, 0.77 core, 0.53 enhancing. Here, fp32: "
                  + ", ".join(f"{short[g]} {d:.3f}" for g, d in zip(regions, got))
                  + f" on the {len(s['val_cases'])} validation cases, {verdict}."]
    for v, change in s["dice_change_vs_fp32"].items():
        lines.append(f"Dice change {v} - fp32 (mean over cases): " + ", ".join(
            f"{short[g]} {d:+.4f}" for g, d in change.items()) + ".")
    if "pcnn_dice_same_cases" in s:
        lines += ["PCNN (`segment_tumor`, no training, held-out figures of the "
                  "cross-validation in benchmarks/results/segmentation.md) "
                  "whole-tumor Dice on the same cases: " + ", ".join(
                      f"{k} {v:.3f}" for k, v in s["pcnn_dice_same_cases"].items()) + "."]
    timed = s["timed"]
    lines += [
        "",
        f"Latency, medians, measured side by side round-robin in one run "
        f"({s['threads']} threads; load average {s['loadavg_at_start'][0]} at start, "
        f"{s['loadavg_at_end'][0]} at end: the 2 cores are shared):",
        "",
        "| | " + " | ".join(v.replace("_", " ") for v in timed) + " |",
        "|---|" + "---:|" * len(timed),
        f"| ms per slice (1 x 4 x 128 x 128, {s['slice_repeats']} runs) | "
        + " | ".join(f"{lat_s[v]:.1f}" for v in timed) + " |",
        f"| s per volume ({s['volume_timed']}, {s['volume_slices_segmented']} slices, "
        f"preprocessing included, {s['volume_repeats']} runs) | "
        + " | ".join(f"{lat_v[v]:.2f}" for v in timed) + " |",
        "| speed-up over fp32, per slice | "
        + " | ".join(f"{lat_s['fp32'] / lat_s[v]:.2f}" for v in timed) + " |",
        "",
        "Per slice here is the network's forward pass alone on a prepared tensor, the "
        "variants in this one process. The head to head "
        "(benchmarks/results/compare.md) times the whole `cnn_baseline.predict` on a "
        "240 x 240 slice of four sequences (normalisation, cropping and resampling to "
        "128 x 128, pasting back), each method in its own process, in another run: "
        "its milliseconds are higher, and they are the ones to compare with the PCNN.",
        "",
        f"Size: {s['parameters']:,} parameters (classic U-Net: "
        f"{s['classic_unet_parameters']:,}), {s['macs_per_slice'] / 1e6:.0f} million "
        f"multiply-accumulates per 128 x 128 slice (int8: the first level, "
        f"{s['int8_float_macs_per_slice'] / 1e6:.0f} million, stays in float).",
        "",
        "Size of each network as a file of its own (its state dict, `torch.save`, "
        "LZMA-compressed: `cnn_baseline.bundle.compressed_size`), the figure to compare; "
        "and the bundled file (the int8 one holds only the calibration of the fp32 "
        "weights, from which `load_pretrained` rebuilds the same int8 network):",
        "",
        "| weights | non-zero convolution weights | MiB on its own | smaller than fp32 | "
        "bundled file | MiB bundled |",
        "|---|---:|---:|---:|---|---:|",
    ]
    alone = s["size_standalone_xz_bytes"]
    for v in s["variants"]:
        nonzero = s["nonzero_conv_weights"].get(v, s["nonzero_conv_weights"]["fp32"])
        lines.append(f"| {v} | {nonzero:,} | {alone[v] / 2 ** 20:.2f} | "
                     f"{100 * (1 - alone[v] / alone['fp32']):.0f} % | `{s['files'][v]}` | "
                     f"{s['size_on_disk_bytes'][v] / 2 ** 20:.2f} |")
    total = sum(s["size_on_disk_bytes"][v] for v in s["bundled"])
    lines += ["", f"Bundled together: {total / 2 ** 20:.2f} MiB ({total / 1e6:.2f} MB)."]
    for v, p in s["pruning"].items():
        lines += ["", f"{v}: {p['method']}, {100 * p['amount']:.0f} % of the convolution "
                      f"weights removed, then {p['fine_tune_epochs']} epoch(s) of fine-tuning "
                      f"on the training cases with them held at zero (training loss "
                      f"{', '.join(f'{x:.4f}' for x in p['fine_tune_losses'])}), then int8 "
                      f"as the dense network (`python -m cnn_baseline.prune`)."]
    for v in s["pruning"]:
        smaller = 1 - alone[v] / alone["fp32"]
        drop = s["dice_change_vs_fp32"][v].get("whole_tumor")
        if drop is not None:
            met = "met" if smaller >= 0.70 and drop >= -0.01 else "not met"
            lines.append(f"\nGoal for {v} (at least 70 % smaller than fp32, whole-tumor Dice "
                         f"drop at most 0.01): {100 * smaller:.0f} % smaller, WT Dice "
                         f"{drop:+.4f}; {met}.")
    if s["pruning"]:
        lines += ["", "The zeros are stored: the dense int8 kernels do the same work on "
                      "them, so pruning makes the file smaller, not the network faster; any "
                      "latency difference between int8 and pruned int8 above is noise."]
    return "\n".join(lines) + "\n"


def _mm(value):
    return "—" if value is None or not np.isfinite(value) else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
