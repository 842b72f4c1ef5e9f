"""Kernel throughput: pcnnseg's fused Numba loops against a NumPy reference and
public PCNN packages, side by side in one run.

Cases (DESIGN.md, issue "PCNN core"):

- ``single``: one 256 x 256 phantom slice, 50 iterations;
- ``batch``: 64 patches of 64 x 64 cut from phantom slices, 50 iterations.

Throughput is pixel-iterations per second (H * W * N * images / median seconds).
Fast implementations are timed round-robin, one run of each per round, so drift on a
shared machine hits them alike (grouped by thread count); slow packages get fewer
runs. Each package runs the
model it implements (pulse-coupled-nn: the classic Johnson PCNN with a 3x3 Gaussian
kernel; pyclustering: its PCNN on an 8-neighbour grid, C++ core), so their figures
compare cost per pixel-iteration, not identical outputs.

Usage::

    python benchmarks/kernels.py [--repeats 30] [--no-packages]
    python benchmarks/kernels.py --busy [--repeats 30]

Writes ``benchmarks/results/kernels.json`` and ``kernels.md``; ``--busy`` runs only
the busy-machine section (:func:`busy_section`) and writes ``kernels_busy.json``
and ``kernels_busy.md``.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time

import numba
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pcnnseg_kernels  # noqa: E402
import pcnnseg  # noqa: E402
from pcnnseg import PCNN, SPCNN, normalize, phantom  # noqa: E402
from tests import reference  # noqa: E402

N_ITER = 50
PYCLUSTERING_PATCHES = 4
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def make_inputs():
    """The 256x256 slice and the (64, 64, 64) batch of patches, normalised."""
    image, _ = phantom.make_slice((256, 256), seed=0)
    rng = np.random.default_rng(0)
    patches = []
    for seed in range(8):
        slice_, _ = phantom.make_slice((240, 240), seed=seed)
        for _ in range(8):
            y, x = rng.integers(30, 240 - 64 - 30, size=2)
            patches.append(slice_[y:y + 64, x:x + 64])
    batch = np.stack(patches)
    return normalize(image), normalize(batch, value_range=(0.0, float(batch.max())))


def time_runs(fn, min_runs, budget_s):
    """Run ``fn`` at least ``min_runs`` times (more while under ``budget_s``)."""
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget_s and len(times) < 100):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def round_robin(fns, repeats):
    """Time each callable once per round, ``repeats`` rounds."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def with_threads(n, fn):
    def run():
        before = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            fn()
        finally:
            numba.set_num_threads(before)
    return run


def pcnnseg_fns(S, B):
    """Callables for pcnnseg's kernels and API on the two cases."""
    spcnn = SPCNN.from_image(S)
    pcnn = PCNN()
    out = {}
    n_all = numba.config.NUMBA_NUM_THREADS
    for label, model in (("SPCNN", spcnn), ("PCNN", pcnn)):
        p, M, W = model.kernel_params()
        for threads in sorted({1, n_all}):
            out[("single", f"pcnnseg {label} kernel, {threads} thread(s)")] = with_threads(
                threads, lambda p=p, M=M, W=W, t=threads:
                pcnnseg_kernels.pcnn_image(S, p, M, W, N_ITER, False, t))
            out[("batch", f"pcnnseg {label} batch kernel, {threads} thread(s)")] = with_threads(
                threads, lambda p=p, M=M, W=W:
                pcnnseg_kernels.pcnn_batch(B, p, M, W, N_ITER, False))
    p, M, W = spcnn.kernel_params()
    # ablations: where the time goes
    generic = M * np.float32(1 + 2 ** -20)  # symmetric but not dyadic: 9-term sums
    out[("single", f"ablation: SPCNN with 9-term synaptic sums, {n_all} thread(s)")] = (
        lambda: pcnnseg_kernels.pcnn_image(S, p, generic, generic, N_ITER, False, n_all))
    out[("single", f"ablation: SPCNN as {n_all} bands with halos on 1 thread")] = with_threads(
        1, lambda: pcnnseg_kernels.pcnn_image(S, p, M, W, N_ITER, False, n_all))
    out[("single", f"pcnnseg SPCNN kernel + pulse stack, {n_all} thread(s)")] = (
        lambda: pcnnseg_kernels.pcnn_image(S, p, M, W, N_ITER, True, n_all))
    out[("single", f"pcnnseg.pulse() end to end (SPCNN from image), {n_all} thread(s)")] = (
        lambda: pcnnseg.pulse(S, n_iter=N_ITER))
    out[("single", "pcnnseg.pulse() overhead only: normalise + SPCNN.from_image")] = (
        lambda: SPCNN.from_image(S))
    return out, spcnn, pcnn


def numpy_fns(S, B, spcnn, pcnn):
    return {
        ("single", "NumPy reference SPCNN"): lambda: reference.run(S, spcnn, N_ITER),
        ("single", "NumPy reference PCNN"): lambda: reference.run(S, pcnn, N_ITER),
        ("batch", "NumPy reference SPCNN (loop over patches)"):
            lambda: [reference.run(b, spcnn, N_ITER) for b in B],
    }


def package_fns(S, B):
    """Public PCNN packages, when installed (the ``bench`` extra)."""
    out, notes = {}, {}
    try:
        from src.classic_model import ClassicalPCNN  # pulse-coupled-nn installs as 'src'

        def pcnn_nn(images):
            for image in images:
                model = ClassicalPCNN(image.shape, "gaussian", 3)
                for _ in range(N_ITER):
                    model.iterate(image)

        out[("single", "pulse-coupled-nn ClassicalPCNN")] = lambda: pcnn_nn([S.astype(np.float64)])
        out[("batch", "pulse-coupled-nn ClassicalPCNN (loop over patches)")] = (
            lambda: pcnn_nn(B.astype(np.float64)))
    except ImportError as err:
        notes["pulse-coupled-nn"] = f"not installed ({err})"
    try:
        from pyclustering.nnet import conn_represent, conn_type
        from pyclustering.nnet.pcnn import pcnn_network, pcnn_parameters

        def network(image, ccore):
            h, w = image.shape
            return pcnn_network(h * w, pcnn_parameters(), conn_type.GRID_EIGHT,
                                conn_represent.LIST, height=h, width=w, ccore=ccore)

        # Only 64x64 patches: for 256x256 the package's network construction ran out
        # of this machine's 24 GiB (Python core) or took minutes (C++ core: 128x128
        # took 11 s to build and 54 s to simulate).
        stim = [b.ravel().tolist() for b in B[:PYCLUSTERING_PATCHES]]
        nets_py = [network(b, False) for b in B[:PYCLUSTERING_PATCHES]]
        net_cc = network(B[0], True)
        out[("batch", f"pyclustering pcnn_network, Python core ({PYCLUSTERING_PATCHES} patches)")] = (
            lambda: [net.simulate(N_ITER, st) for net, st in zip(nets_py, stim)])
        out[("batch", "pyclustering pcnn_network, C++ core (1 patch)")] = (
            lambda: net_cc.simulate(N_ITER, stim[0]))
        notes["pyclustering"] = (
            "network construction excluded; run on 64x64 patches only (256x256 did not fit "
            "in 24 GiB); throughput counts the patches actually run")
    except ImportError as err:
        notes["pyclustering"] = f"not installed ({err})"
    return out, notes


def summarise(times, pixel_iters):
    t = np.asarray(times)
    med = float(np.median(t))
    return {"median_s": med, "p25_s": float(np.percentile(t, 25)),
            "p75_s": float(np.percentile(t, 75)), "runs": len(t),
            "pixel_iterations_per_s": pixel_iters / med}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="rounds for fast implementations")
    parser.add_argument("--no-packages", action="store_true", help="skip public packages")
    parser.add_argument("--busy", action="store_true",
                        help="only pulse() beside busy-loop processes, against its quiet "
                             "single-thread time (kernels_busy.json, kernels_busy.md)")
    parser.add_argument("--busy-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.busy_probe:
        return busy_probe(args.repeats)
    if args.busy:
        return busy_section(args.repeats)

    S, B = make_inputs()
    work = {"single": S.size * N_ITER, "batch": B.size * N_ITER}
    ours, spcnn, pcnn = pcnnseg_fns(S, B)
    t0 = time.perf_counter()
    for fn in ours.values():  # compile (or load the cache) before timing
        fn()
    warmup_s = time.perf_counter() - t0

    # Round-robin within each thread count: switching counts between runs left the
    # first multi-threaded runs waiting on threads to wake, inflating their times.
    timed = {}
    for threads in sorted(set(_threads_of(name) for _, name in ours)):
        group = {key: fn for key, fn in ours.items() if _threads_of(key[1]) == threads}
        timed.update(round_robin(group, args.repeats))
    slow, notes = numpy_fns(S, B, spcnn, pcnn), {}
    if not args.no_packages:
        pkgs, notes = package_fns(S, B)
        slow.update(pkgs)
    for key, fn in slow.items():
        fn()  # warm-up
        timed[key] = time_runs(fn, min_runs=3, budget_s=20.0)

    rows = []
    for (case, name), times in timed.items():
        n_work = work[case]
        if name.startswith("pyclustering"):
            n_work = B[0].size * N_ITER * (1 if "1 patch" in name else PYCLUSTERING_PATCHES)
        row = {"case": case, "implementation": name, **summarise(times, n_work)}
        if "overhead only" in name:
            row["pixel_iterations_per_s"] = None  # runs no iteration
        rows.append(row)

    def best(case, prefix):
        cands = [r for r in rows if r["case"] == case and r["implementation"].startswith(prefix)
                 and "pulse()" not in r["implementation"]
                 and "pulse stack" not in r["implementation"]]
        return max(cands, key=lambda r: r["pixel_iterations_per_s"]) if cands else None

    ratios = {}
    for case in ("single", "batch"):
        ours_best = best(case, "pcnnseg")
        for label, prefix in (("numpy", "NumPy"), ("pulse-coupled-nn", "pulse-coupled-nn"),
                              ("pyclustering", "pyclustering")):
            other = best(case, prefix)
            if other and ours_best:
                ratios[f"{case}: fastest pcnnseg / fastest {label}"] = (
                    ours_best["pixel_iterations_per_s"] / other["pixel_iterations_per_s"])

    info = {
        "cpu": _cpu_name(), "cores": os.cpu_count(), "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "threading_layer": numba.threading_layer(), "python": platform.python_version(),
        "numpy": np.__version__, "numba": numba.__version__,
        "compile_or_cache_load_s": warmup_s, "n_iter": N_ITER,
        "single_shape": list(S.shape), "batch_shape": list(B.shape),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "notes": notes,
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "kernels.json"), "w") as fh:
        json.dump({"machine": info, "results": rows, "ratios": ratios}, fh, indent=2)
    md = _markdown(info, rows, ratios)
    with open(os.path.join(RESULTS, "kernels.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


def _threads_of(name):
    """Thread count a pcnnseg row runs with (rows without one use all threads)."""
    if "on 1 thread" in name or "1 thread(s)" in name:
        return 1
    return numba.config.NUMBA_NUM_THREADS


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _markdown(info, rows, ratios):
    lines = [
        "# PCNN kernel throughput",
        "",
        f"{info['cpu']}, {info['cores']} cores, numba {info['numba']} "
        f"({info['threading_layer']}), numpy {info['numpy']}, {info['date']}. "
        f"{info['n_iter']} iterations; single = {tuple(info['single_shape'])}, "
        f"batch = {tuple(info['batch_shape'])}. Medians of repeated runs "
        "(p25-p75 in brackets); `python benchmarks/kernels.py`.",
        "",
        "| case | implementation | median ms | (p25-p75) | runs | pixel-iterations/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['implementation']} | {1e3 * r['median_s']:.2f} | "
                     f"{1e3 * r['p25_s']:.2f}-{1e3 * r['p75_s']:.2f} | {r['runs']} | "
                     + (f"{r['pixel_iterations_per_s']:.3g} |" if r["pixel_iterations_per_s"]
                        else "- |"))
    lines += ["", "| ratio (throughput) | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f}x |" for k, v in ratios.items()]
    if info["notes"]:
        lines += ["", "Notes: " + "; ".join(f"{k}: {v}" for k, v in info["notes"].items())]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------- busy machine (issue 15)

# Environments the busy section compares: what pcnnseg_kernels sets by default
# (idle OpenMP threads sleep), GNU OpenMP spinning (as it did before, by default),
# and Intel TBB's threading layer when the tbb package is installed.
BUSY_VARIANTS = {
    "pcnnseg default (OMP_WAIT_POLICY=PASSIVE)": {},
    "OMP_WAIT_POLICY=ACTIVE (spinning threads)": {"OMP_WAIT_POLICY": "ACTIVE"},
    "Numba's tbb threading layer (pip install tbb)": {"NUMBA_THREADING_LAYER": "tbb"},
}


def busy_probe(repeats):
    """Print, as JSON, the median seconds of ``pcnnseg.pulse`` on the 256x256 slice
    with all threads and with one (a child process of :func:`busy_section`)."""
    S, _ = make_inputs()
    n_all = numba.config.NUMBA_NUM_THREADS
    fns = {str(threads): with_threads(threads, lambda: pcnnseg.pulse(S, n_iter=N_ITER))
           for threads in sorted({n_all, 1}, reverse=True)}
    for fn in fns.values():
        fn()
    times = round_robin(fns, repeats)
    print(json.dumps({"threading_layer": numba.threading_layer(),
                      "wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                      "median_s": {k: float(np.median(v)) for k, v in times.items()}}))
    return 0


def _probe_in_child(env, repeats):
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--busy-probe",
                           "--repeats", str(repeats)], env=env, capture_output=True, text=True)
    if done.returncode != 0:   # the exception's line, such as tbb's being absent
        lines = done.stderr.strip().splitlines() or ["failed"]
        errors = [line for line in lines if re.match(r"[\w.]+(Error|Exception)\b", line)]
        return {"error": (errors or lines)[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def busy_section(repeats):
    """``pcnnseg.pulse`` while other processes keep every core busy, against its
    single-thread time on the same machine left quiet (issue 15's goal: at most
    2x). One busy loop per core; each environment of :data:`BUSY_VARIANTS` is
    measured in a fresh process, quiet first, then beside the loops."""
    # the children start from no setting of their own (this process's import of
    # pcnnseg_kernels set OMP_WAIT_POLICY here)
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER")}
    envs = {name: {**base, **env} for name, env in BUSY_VARIANTS.items()}
    quiet = {name: _probe_in_child(env, repeats) for name, env in envs.items()}
    loads = {"quiet": os.getloadavg()[0]}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(1.0)
        busy = {name: _probe_in_child(env, repeats) for name, env in envs.items()}
        loads["busy"] = os.getloadavg()[0]
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    reference = quiet[next(iter(BUSY_VARIANTS))].get("median_s", {}).get("1")
    rows = []
    for name in BUSY_VARIANTS:
        for threads in sorted({str(numba.config.NUMBA_NUM_THREADS), "1"}, reverse=True):
            q = quiet[name].get("median_s", {}).get(threads)
            b = busy[name].get("median_s", {}).get(threads)
            rows.append({"environment": name, "threads": int(threads),
                         "layer": busy[name].get("threading_layer"),
                         "quiet_ms": None if q is None else 1e3 * q,
                         "busy_ms": None if b is None else 1e3 * b,
                         "busy_over_quiet_single_thread": (None if b is None or not reference
                                                           else b / reference),
                         "error": busy[name].get("error") or quiet[name].get("error")})
    info = {"cpu": _cpu_name(), "cores": os.cpu_count(), "busy_loops": len(hogs),
            "numba": numba.__version__, "n_iter": N_ITER, "shape": [256, 256],
            "repeats": repeats, "loadavg": loads, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "kernels_busy.json"), "w") as fh:
        json.dump({"machine": info, "results": rows}, fh, indent=2)
    md = _busy_markdown(info, rows)
    with open(os.path.join(RESULTS, "kernels_busy.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


def _busy_markdown(info, rows):
    def ms(value):
        return "-" if value is None else f"{value:.2f}"

    lines = ["# pulse() on a busy machine", "",
             f"{info['cpu']}, {info['cores']} cores, numba {info['numba']}; "
             f"`pcnnseg.pulse` of a {info['shape'][0]}x{info['shape'][1]} slice, "
             f"{info['n_iter']} iterations, medians of {info['repeats']} runs, each "
             f"environment in a fresh process, quiet, then beside {info['busy_loops']} "
             f"busy-loop processes (load average {info['loadavg']['quiet']:.2f} quiet, "
             f"{info['loadavg']['busy']:.2f} busy); `python benchmarks/kernels.py --busy`. "
             "Goal: busy / quiet single-thread <= 2.", "",
             "| environment | threading layer | threads | quiet ms | busy ms | "
             "busy / quiet 1 thread |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        ratio = r["busy_over_quiet_single_thread"]
        lines.append(f"| {r['environment']} | {r['layer'] or r['error'] or '-'} | "
                     f"{r['threads']} | {ms(r['quiet_ms'])} | {ms(r['busy_ms'])} | "
                     + ("-" if ratio is None else f"{ratio:.1f}x") + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
