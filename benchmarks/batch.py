"""Batch throughput: cases per minute over the development cases, on one machine
and on a Dask cluster (issue 15).

The cases of ``../shared/data/brats2018`` and ``../shared/data/brats2023_ssa``
(22) are segmented into BraTS label maps, scored against their labels, by the
command a user runs, timed from its start to its exit::

    pcnnseg segment DATASET -o OUT --regions --overwrite -q --workers 1
    pcnnseg segment DATASET -o OUT --regions --overwrite -q --workers 2
    pcnnseg segment DATASET -o OUT --regions --overwrite -q --scheduler ADDRESS

``DATASET`` is a temporary folder of links to the cases, ``OUT`` a fresh
temporary folder each time. ``ADDRESS`` is that of a LocalCluster of two
single-threaded worker processes started once beforehand (its start-up is
reported apart, as an existing cluster's would not be paid per command) and
restarted before each of its runs, so that its workers start fresh, as the
local pool's do. Every run thus pays the command's start, and the parallel ones
their workers' imports and kernel loading.

The configurations run round-robin, ``--rounds`` times; figures are medians over
rounds: cases per minute, the speed-up of 2 local workers over 1 (goal >= 1.8x
on 2 cores), Dask's overhead against the local pool (goal <= 5 % per case) as
the ratio of wall times and in seconds per case, the median time of a case
inside its worker, and each worker process's peak resident memory (from
``cases.csv``). Before the rounds, two plain loops measure what two processes
side by side get on the machine itself (:func:`bench_machine.parallel_scaling`):
one in cache, one streaming arrays through memory; a batch's speed-up lies
between the two as its cases lean on one or the other.

Usage::

    python benchmarks/batch.py [--rounds 2] [--limit N] [--results DIR]

Writes ``batch.json`` and ``batch.md`` under ``benchmarks/results/`` (or
``--results``). Skips, saying so, when the data folders are absent.
"""
import argparse
import csv
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_machine import cpu_name, parallel_scaling  # noqa: E402
from pcnnseg import batch, datasets  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DEFAULT_DATA = [os.path.join(SHARED, "brats2018"), os.path.join(SHARED, "brats2023_ssa")]
RESULTS = os.path.join(ROOT, "benchmarks", "results")
CONFIGS = {"local, 1 worker": ["--workers", "1"], "local, 2 workers": ["--workers", "2"],
           "dask, 2 workers": ["--scheduler"]}   # + the cluster's address
WORKERS = {"local, 1 worker": 1, "local, 2 workers": 2, "dask, 2 workers": 2}


def interleaved_cases(folders, limit):
    """The cases of each folder, taken in turn from each (so that a limit keeps
    every collection), at most ``limit``."""
    lists = [datasets.find_cases(folder) for folder in folders]
    cases = [c for group in itertools.zip_longest(*lists) for c in group if c is not None]
    return cases[:limit] if limit else cases


def link_dataset(cases, folder):
    """A dataset folder of links to ``cases``' folders."""
    os.makedirs(folder)
    for case in cases:
        os.symlink(os.path.abspath(case.path), os.path.join(folder, case.name))
    return folder


def run_command(arguments, dataset, scratch, environment):
    """Run ``pcnnseg segment`` over ``dataset`` in ``environment``; its wall time and
    ``cases.csv`` rows."""
    out = tempfile.mkdtemp(dir=scratch)
    command = [sys.executable, "-m", "pcnnseg", "segment", dataset, "-o", out, "--regions",
               "--overwrite", "-q", *arguments]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    with open(os.path.join(out, "cases.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    shutil.rmtree(out)
    return wall, rows


def summarise(name, runs, n_cases):
    """Figures of one configuration over its rounds."""
    walls = [wall for wall, _ in runs]
    rows = [row for _, rows in runs for row in rows]
    done = [float(r["seconds"]) for r in rows if r["status"] == "done"]
    peaks = {}
    for r in rows:
        if r["peak_memory_mib"]:
            peaks[r["worker"]] = max(peaks.get(r["worker"], 0.0), float(r["peak_memory_mib"]))
    wall = float(np.median(walls))
    # per round, the wall time the cases leave unexplained: the command's start,
    # its workers' start, the reports, and waiting for the last case
    outside = [w - sum(float(r["seconds"]) for r in rows if r["status"] == "done")
               / WORKERS[name] for w, rows in runs]
    return {"configuration": name, "workers": WORKERS[name], "walls_s": walls,
            "median_wall_s": wall, "cases_per_minute": 60.0 * n_cases / wall,
            "median_case_s": float(np.median(done)) if done else None,
            "median_outside_cases_s": float(np.median(outside)),
            "peak_memory_mib_per_worker": peaks,
            "max_peak_memory_mib": max(peaks.values()) if peaks else None,
            "failed": sorted({r["name"] for r in rows if r["status"] == "failed"})}


def ratios_of(rows, n_cases):
    """The speed-up of 2 local workers over 1 (of the median walls, and the median
    of the rounds' ratios), its ceiling, and Dask's overhead against the local pool."""
    by = {r["configuration"]: r for r in rows}
    one, local, dask = by["local, 1 worker"], by["local, 2 workers"], by["dask, 2 workers"]
    per_round = [a / b for a, b in zip(one["walls_s"], local["walls_s"])]
    return {
        "speedup_2_workers": local["cases_per_minute"] / one["cases_per_minute"],
        "speedup_per_round": per_round,
        "speedup_per_round_median": float(np.median(per_round)),
        # with no time outside the cases: what two cores busy at once allow
        "speedup_ceiling": 2.0 * one["median_case_s"] / local["median_case_s"],
        "dask_overhead": dask["median_wall_s"] / local["median_wall_s"] - 1.0,
        "dask_overhead_s_per_case": (dask["median_wall_s"] - local["median_wall_s"]) / n_cases,
    }


def _markdown(info, rows, ratios):
    lines = [
        "# Batch throughput",
        "",
        f"{info['cpu']}, {info['cores']} cores; {info['n_cases']} cases "
        f"({', '.join(os.path.basename(d) for d in info['data'])}) segmented into label "
        f"maps with regions and scored, by `pcnnseg segment DATASET -o OUT --regions` timed "
        f"from start to exit; medians of {info['rounds']} round(s), configurations in turn; "
        f"load average {info['loadavg_at_start'][0]:.2f} at start, "
        f"{info['loadavg_at_end'][0]:.2f} at end; `python benchmarks/batch.py"
        + (f" --limit {info['limit']}" if info["limit"] else "") + "`.",
        "",
        "| configuration | cases / min | wall s | median s / case in its worker | "
        "s outside the cases | peak MiB per worker | failed |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        peaks = ", ".join(f"{v:.0f}" for v in r["peak_memory_mib_per_worker"].values())
        lines.append(f"| {r['configuration']} | {r['cases_per_minute']:.1f} | "
                     f"{r['median_wall_s']:.1f} | {r['median_case_s']:.2f} | "
                     f"{r['median_outside_cases_s']:.1f} | {peaks} | "
                     f"{', '.join(r['failed']) or '-'} |")
    lines += ["", "| figure | value | goal |", "|---|---:|---|",
              f"| speed-up, 2 local workers over 1 | {ratios['speedup_2_workers']:.2f}x | "
              ">= 1.8x |",
              f"| the same, median of each round's ratio (range) | "
              f"{ratios['speedup_per_round_median']:.2f}x ({min(ratios['speedup_per_round']):.2f}"
              f"-{max(ratios['speedup_per_round']):.2f}) | |",
              f"| ceiling: 2 x (s / case, 1 worker) / (s / case, 2 workers) | "
              f"{ratios['speedup_ceiling']:.2f}x | |",
              f"| Dask over the local pool, wall time | {100 * ratios['dask_overhead']:+.1f} % "
              "| <= 5 % |",
              f"| Dask over the local pool, per case | "
              f"{ratios['dask_overhead_s_per_case']:+.3f} s | |",
              f"| Dask cluster start-up (once, not in its wall time) | "
              f"{info['cluster_start_s']:.1f} s | |"]
    lines += [f"| this machine, two processes side by side over one: {probe} | {value:.2f}x | |"
              for probe, value in info["two_at_once_speedup"].items()]
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=2, help="passes of each configuration")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most N cases, taken in turn from each folder (a quick run)")
    parser.add_argument("--results", default=RESULTS, help="folder for batch.json and batch.md")
    args = parser.parse_args(argv)
    missing = [d for d in args.data if not os.path.isdir(d)]
    if missing:
        print(f"benchmarks/batch.py: skipped, no data at {', '.join(missing)}")
        return 0
    try:
        from distributed import Client
    except ImportError:
        print("benchmarks/batch.py: skipped, needs the dask extra (pip install -e '.[dask]')")
        return 0

    # the commands' environment: this one before the LocalCluster, whose nannies
    # set their workers' variables (OMP_NUM_THREADS=1, ...) here
    environment = dict(os.environ)
    cases = interleaved_cases(args.data, args.limit)
    scratch = tempfile.mkdtemp(prefix="pcnnseg-batch-bench-")
    dataset = link_dataset(cases, os.path.join(scratch, "dataset"))
    load_start = os.getloadavg()
    scaling = parallel_scaling()
    start = time.perf_counter()
    cluster = batch.local_cluster(2)   # the cluster pcnnseg's --scheduler local:2 starts
    cluster_start = time.perf_counter() - start
    client = Client(cluster)
    runs = {name: [] for name in CONFIGS}
    try:
        for round_ in range(args.rounds):
            for name, arguments in CONFIGS.items():
                if name.startswith("dask"):
                    client.restart()   # fresh worker processes, as the local pool's
                    arguments = arguments + [cluster.scheduler_address]
                wall, rows = run_command(arguments, dataset, scratch, environment)
                runs[name].append((wall, rows))
                print(f"round {round_ + 1}: {name}: {len(cases)} cases in {wall:.1f} s",
                      flush=True)
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)
    rows = [summarise(name, runs[name], len(cases)) for name in CONFIGS]
    ratios = ratios_of(rows, len(cases))
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "usable_cores": batch.usable_cores(),
            "python": platform.python_version(), "data": args.data, "limit": args.limit,
            "n_cases": len(cases), "cases": [c.name for c in cases], "rounds": args.rounds,
            "cluster_start_s": cluster_start, "two_at_once_speedup": scaling,
            "loadavg_at_start": list(load_start),
            "loadavg_at_end": list(os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "batch.json"), "w") as fh:
        json.dump({"machine": info, "results": rows, "ratios": ratios}, fh, indent=2)
    md = _markdown(info, rows, ratios)
    with open(os.path.join(args.results, "batch.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
