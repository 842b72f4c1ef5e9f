"""Kernel throughput: pcnnseg's fused Numba loops against a NumPy reference and
public PCNN packages, model for model, in one round-robin.

Cases (DESIGN.md, issue "PCNN core"):

- ``single``: one 256 x 256 phantom slice, 50 iterations;
- ``batch``: 64 patches of 64 x 64 cut from phantom slices, 50 iterations.

Throughput is pixel-iterations per second (H * W * N * images / median seconds).
All implementations, pcnnseg's and the peers', are timed in one round-robin: each
round runs each of them once, so drift on a shared machine hits them alike. Within a
round they run grouped by Numba thread count, and the first of a group runs once
untimed before its timed run (switching counts left the first runs waiting on
threads to wake). Networks are built and parameters set before timing; each timed
run starts from the model's initial state.

The ratios are like for like: pcnnseg's kernel of one model (PCNN, SPCNN or ICM)
over each other implementation of the same model on the same case, with pcnnseg on
1 thread and on all threads (the peers run on one core). The peers (the ``bench``
extra; one not installed is skipped with a note) and how closely they match
(:data:`PEER_NOTES`, written into the table's notes):

- ``pcnn``: PCNN, SPCNN and ICM with pcnnseg's equations, Chen's weights and
  pcnnseg's parameters, but pulsing where U >= E, in float64 with
  ``scipy.signal.convolve2d``;
- ``pulse-coupled-nn``: ClassicalPCNN, a classic PCNN with a Gaussian 3x3 kernel
  that includes the neuron itself and parameters of its own, by FFT convolution;
- ``pyclustering``: pcnn_network, a classic PCNN with uniform weights over the 8
  neighbours (pcnnseg's PCNN parameters otherwise), 64 x 64 patches only;
- the NumPy reference: pcnnseg's test oracle (``tests/reference.py``), the same
  model in float32 NumPy.

pcnnseg's timed kernel call also keeps each pixel's fire time and the time
signature; pulse-coupled-nn and pcnn keep their last pulse map (pcnn's SPCNN also
a pulse count), pyclustering every step's outputs.

Usage::

    python benchmarks/kernels.py [--repeats 50] [--no-packages] [--results DIR]
    python benchmarks/kernels.py --busy [--repeats 30]

``--repeats`` is the number of rounds, hence of timed runs of every row; the
default, 50, is the run count of ``benchmarks/results/kernels.md``. A round took
about 7 s on a 2-core Xeon, nearly all of it in the packages (about 6 minutes in all
with the warm-up).

Writes ``kernels.json`` and ``kernels.md`` into ``--results`` (default
``benchmarks/results``); ``--busy`` runs only the busy-machine section
(:func:`busy_section`) and writes ``kernels_busy.json`` and ``kernels_busy.md``
into ``benchmarks/results``.
"""
import argparse
import contextlib
import copy
import importlib.metadata
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pcnnseg_kernels  # noqa: E402
import pcnnseg  # noqa: E402
from pcnnseg import ICM, PCNN, SPCNN, normalize, phantom  # noqa: E402
from pcnnseg.models import otsu_threshold  # noqa: E402
from bench_machine import cpu_name  # noqa: E402
from tests import reference  # noqa: E402

N_ITER = 50
#: Rounds of the round-robin by default: the committed table's 50 runs per row.
REPEATS = 50
#: Runs of each environment of the busy section by default.
BUSY_REPEATS = 30
PYCLUSTERING_PATCHES = 4
RESULTS = os.path.join(ROOT, "benchmarks", "results")

#: How each peer's model differs from pcnnseg's (read from the packages' sources:
#: pcnn 0.1, pulse-coupled-nn 0.0.6, pyclustering 0.10.1.2).
PEER_NOTES = {
    "NumPy reference": (
        "tests/reference.py, pcnnseg's test oracle: the same equations, parameters and "
        "float32 arithmetic as the kernels, as whole-array NumPy operations"),
    "pulse-coupled-nn": (
        "ClassicalPCNN is the classic PCNN with a dynamic threshold (raised before the "
        "comparison: the same recursion with the index shifted by one), but its 3x3 "
        "kernel is a normalised Gaussian that also links each neuron to itself, in "
        "place of Chen's weights; its parameters are its own and fixed by its "
        "constructor (beta 2, threshold amplitude and start 50); float64, and each "
        "3x3 sum is an FFT convolution (scipy.signal.fftconvolve)"),
    "pyclustering": (
        "pcnn_network is the classic PCNN with weight 1 on each of the 8 neighbours "
        "(GRID_EIGHT) in place of Chen's weights, run with pcnnseg's PCNN decays, "
        "amplitudes and beta; its Python core starts the thresholds at random values "
        "in [0, 1) and counts the initial state as the first of simulate(n)'s n "
        f"steps, so it is asked for {N_ITER + 1}; network construction excluded; run "
        "on 64x64 patches only (256x256 did not fit in 24 GiB); throughput counts the "
        "patches actually run"),
    "pcnn": (
        "PCNN, SPCNN and ICM are pcnnseg's equations with Chen's weights, run with "
        "pcnnseg's parameters (its SPCNN, given the same Otsu threshold, sets the same "
        "ones but for pcnnseg's 2^-20 rise of v_e; in the batch case each patch sets "
        "its own); they pulse where U >= E "
        "(pcnnseg: U > E), so pixels with S = 0 pulse at the first iteration, and run "
        "in float64 with scipy.signal.convolve2d"),
}


@dataclass(frozen=True)
class Entry:
    """One implementation on one case, ready to time.

    Attributes
    ----------
    fn : callable
        Runs the implementation once from its initial state.
    source : str
        Whose implementation: ``"pcnnseg"``, ``"NumPy reference"`` or a package's
        distribution name.
    model : str or None
        The model it computes (``"PCNN"``, ``"SPCNN"``, ``"ICM"``) when it takes part
        in the like-for-like ratios; None for ablations and end-to-end rows.
    threads : int
        Numba threads it runs with (the NumPy reference and the packages: 1).
    pixels : int or None
        Pixels it runs per call when not the whole case (0: it runs no iteration).
    """

    fn: Callable[[], object]
    source: str = "pcnnseg"
    model: str | None = None
    threads: int = 1
    pixels: int | None = None


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


def round_robin(fns, repeats, settle=frozenset()):
    """Time each callable once per round, ``repeats`` rounds.

    Parameters
    ----------
    fns : dict
        Name -> callable, run in this order in every round.
    repeats : int
        Rounds.
    settle : collection of names, optional
        Callables also run once, untimed, just before their timed run in each round.

    Returns
    -------
    dict
        Name -> list of ``repeats`` durations in seconds.
    """
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if name in settle:
                fn()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def settling(threads):
    """Names that run with another thread count than the one run before them.

    Parameters
    ----------
    threads : dict
        Name -> thread count, in the order of a round; the first name follows the
        last of the previous round.

    Returns
    -------
    set
        The names whose run switches the thread count.
    """
    names = list(threads)
    return {name for before, name in zip(names[-1:] + names[:-1], names)
            if threads[before] != threads[name]}


def with_threads(n, fn):
    def run():
        before = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            fn()
        finally:
            numba.set_num_threads(before)
    return run


def pcnnseg_entries(S, B, models):
    """pcnnseg's kernels for each model, its ablations and its API on the two cases.

    Parameters
    ----------
    S : (H, W) float32 ndarray
        The single case.
    B : (N, h, w) float32 ndarray
        The batch case.
    models : dict
        Label -> pcnnseg model (``PCNN``, ``SPCNN``, ``ICM``).

    Returns
    -------
    dict
        ``(case, implementation)`` -> :class:`Entry`.
    """
    out = {}
    n_all = numba.config.NUMBA_NUM_THREADS
    for label, model in models.items():
        p, M, W = model.kernel_params()
        for threads in sorted({1, n_all}):
            out[("single", f"pcnnseg {label} kernel, {threads} thread(s)")] = Entry(
                with_threads(threads, lambda p=p, M=M, W=W, t=threads:
                             pcnnseg_kernels.pcnn_image(S, p, M, W, N_ITER, False, t)),
                model=label, threads=threads)
            out[("batch", f"pcnnseg {label} batch kernel, {threads} thread(s)")] = Entry(
                with_threads(threads, lambda p=p, M=M, W=W:
                             pcnnseg_kernels.pcnn_batch(B, p, M, W, N_ITER, False)),
                model=label, threads=threads)
    p, M, W = models["SPCNN"].kernel_params()
    # ablations: where the time goes
    generic = M * np.float32(1 + 2 ** -20)  # symmetric but not dyadic: 9-term sums
    out[("single", f"ablation: SPCNN with 9-term synaptic sums, {n_all} thread(s)")] = Entry(
        lambda: pcnnseg_kernels.pcnn_image(S, p, generic, generic, N_ITER, False, n_all),
        threads=n_all)
    out[("single", f"ablation: SPCNN as {n_all} bands with halos on 1 thread")] = Entry(
        with_threads(1, lambda: pcnnseg_kernels.pcnn_image(S, p, M, W, N_ITER, False, n_all)))
    out[("single", f"pcnnseg SPCNN kernel + pulse stack, {n_all} thread(s)")] = Entry(
        lambda: pcnnseg_kernels.pcnn_image(S, p, M, W, N_ITER, True, n_all), threads=n_all)
    out[("single", f"pcnnseg.pulse() end to end (SPCNN from image), {n_all} thread(s)")] = (
        Entry(lambda: pcnnseg.pulse(S, n_iter=N_ITER), threads=n_all))
    out[("single", "pcnnseg.pulse() overhead only: normalise + SPCNN.from_image")] = Entry(
        lambda: SPCNN.from_image(S), threads=n_all, pixels=0)
    return out


def numpy_entries(S, B, models):
    """pcnnseg's NumPy reference (tests/reference.py) of the SPCNN and the PCNN."""
    ref = "NumPy reference"
    return {
        ("single", "NumPy reference SPCNN"): Entry(
            lambda: reference.run(S, models["SPCNN"], N_ITER), ref, "SPCNN"),
        ("single", "NumPy reference PCNN"): Entry(
            lambda: reference.run(S, models["PCNN"], N_ITER), ref, "PCNN"),
        ("batch", "NumPy reference SPCNN (loop over patches)"): Entry(
            lambda: [reference.run(b, models["SPCNN"], N_ITER) for b in B], ref, "SPCNN"),
    }


def _copies_run(networks, images, iterate):
    """A callable that runs ``iterate(network, image)`` on a copy of each network.

    The packages' networks rebind their state arrays at each iteration and never
    write into them, so a shallow copy of a network fresh from its constructor
    starts every run from the initial state.
    """
    def run():
        for network, image in zip(networks, images):
            iterate(copy.copy(network), image)
    return run


def _cases(S, B):
    """``(case, images, name suffix)`` of the two cases, images in float64."""
    return (("single", S[None].astype(np.float64), ""),
            ("batch", B.astype(np.float64), " (loop over patches)"))


def pulse_coupled_nn_entries(S, B, models):
    """pulse-coupled-nn's ClassicalPCNN on the two cases (its own parameters).

    Raises
    ------
    ImportError
        When the package is not installed.
    """
    from pulse_coupled_nn import ClassicalPCNN

    def iterate(network, image):
        for _ in range(N_ITER):
            network.iterate(image)

    out = {}
    for case, images, suffix in _cases(S, B):
        networks = [ClassicalPCNN(image.shape, "gaussian", 3) for image in images]
        out[(case, f"pulse-coupled-nn ClassicalPCNN{suffix}")] = Entry(
            _copies_run(networks, images, iterate), "pulse-coupled-nn", "PCNN")
    return out


def pyclustering_entries(S, B, models):
    """pyclustering's pcnn_network with pcnnseg's PCNN parameters, on 64x64 patches.

    Raises
    ------
    ImportError
        When the package is not installed.
    """
    from pyclustering.nnet import conn_represent, conn_type
    from pyclustering.nnet.pcnn import pcnn_network, pcnn_parameters

    model = models["PCNN"]
    params = pcnn_parameters()
    params.AF, params.AL, params.AT = (math.exp(-a) for a in
                                       (model.alpha_f, model.alpha_l, model.alpha_e))
    params.VF, params.VL, params.VT, params.B = model.v_f, model.v_l, model.v_e, model.beta

    def network(image, ccore):
        h, w = image.shape
        return pcnn_network(h * w, params, conn_type.GRID_EIGHT, conn_represent.LIST,
                            height=h, width=w, ccore=ccore)

    # Only 64x64 patches: for 256x256 the package's network construction ran out
    # of this machine's 24 GiB (Python core) or took minutes (C++ core: 128x128
    # took 11 s to build and 54 s to simulate).
    stim = [b.ravel().tolist() for b in B[:PYCLUSTERING_PATCHES]]
    nets_py = [network(b, False) for b in B[:PYCLUSTERING_PATCHES]]
    net_cc = network(B[0], True)
    name = "pyclustering pcnn_network"
    return {
        ("batch", f"{name}, Python core ({PYCLUSTERING_PATCHES} patches)"): Entry(
            lambda: [net.simulate(N_ITER + 1, st) for net, st in zip(nets_py, stim)],
            "pyclustering", "PCNN", pixels=B[0].size * PYCLUSTERING_PATCHES),
        ("batch", f"{name}, C++ core (1 patch)"): Entry(
            lambda: net_cc.simulate(N_ITER, stim[0]), "pyclustering", "PCNN",
            pixels=B[0].size),
    }


def pcnn_package_entries(S, B, models):
    """The ``pcnn`` package's PCNN, SPCNN and ICM on the two cases, with pcnnseg's
    parameters (its SPCNN sets them from the image and the Otsu threshold given).

    Raises
    ------
    ImportError
        When the package is not installed.
    """
    import pcnn as package

    pcnn, icm = models["PCNN"], models["ICM"]

    def spcnn(image):
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameters
            return package.SPCNN(255.0 * image, 255.0 * otsu_threshold(image))

    build = {
        "PCNN": lambda image: package.PCNN(
            image, af=pcnn.alpha_f, al=pcnn.alpha_l, ae=pcnn.alpha_e, vf=pcnn.v_f,
            vl=pcnn.v_l, ve=pcnn.v_e, beta=pcnn.beta),
        "SPCNN": spcnn,
        "ICM": lambda image: package.ICM(image, f=icm.f, g=icm.g, h=icm.h),
    }
    out = {}
    for label, make in build.items():
        for case, images, suffix in _cases(S, B):
            networks = [make(image) for image in images]
            out[(case, f"pcnn package {label}{suffix}")] = Entry(
                _copies_run(networks, images, lambda net, _: net.iterate(N_ITER)),
                "pcnn", label)
    return out


#: The peers, in the table's order: distribution name -> its entries.
PEERS = {"pulse-coupled-nn": pulse_coupled_nn_entries,
         "pyclustering": pyclustering_entries,
         "pcnn": pcnn_package_entries}


def package_entries(S, B, models):
    """The installed peers' entries, and a note on each peer.

    Returns
    -------
    entries : dict
        ``(case, implementation)`` -> :class:`Entry`.
    notes : dict
        ``"distribution version"`` -> its :data:`PEER_NOTES`, or distribution -> why
        it was skipped.
    """
    out, notes = {}, {}
    for dist, entries_of in PEERS.items():
        try:
            out.update(entries_of(S, B, models))
        except ImportError as err:
            notes[dist] = f"not installed ({err}), skipped; pip install -e \".[bench]\""
            continue
        notes[f"{dist} {importlib.metadata.version(dist)}"] = PEER_NOTES[dist]
    return out, notes


def summarise(times, pixel_iters):
    """Median, quartiles, runs and throughput (None for a row without iterations)."""
    t = np.asarray(times)
    med = float(np.median(t))
    return {"median_s": med, "p25_s": float(np.percentile(t, 25)),
            "p75_s": float(np.percentile(t, 75)), "runs": len(t),
            "pixel_iterations_per_s": pixel_iters / med if pixel_iters else None}


def result_rows(entries, times, pixels):
    """One row per entry, the single case first, each in the entries' order.

    Parameters
    ----------
    entries : dict
        ``(case, implementation)`` -> :class:`Entry`.
    times : dict
        ``(case, implementation)`` -> durations in seconds.
    pixels : dict
        Case -> pixels of its whole input.

    Returns
    -------
    list of dict
    """
    rows = []
    for case in ("single", "batch"):
        for (row_case, name), entry in entries.items():
            if row_case == case:
                n_pixels = pixels[case] if entry.pixels is None else entry.pixels
                rows.append({"case": case, "implementation": name, "source": entry.source,
                             "model": entry.model, "threads": entry.threads,
                             **summarise(times[(case, name)], n_pixels * N_ITER)})
    return rows


def like_for_like_ratios(rows):
    """Throughput of pcnnseg's kernel over each other implementation of its model.

    Parameters
    ----------
    rows : list of dict
        Result rows with ``case``, ``implementation``, ``source``, ``model``,
        ``threads`` and ``pixel_iterations_per_s``.

    Returns
    -------
    list of dict
        One per pcnnseg row and other row of the same case and model (rows without a
        model take no part): ``case``, ``model``, ``pcnnseg`` (its implementation),
        ``threads`` (pcnnseg's), ``other`` (the other implementation) and ``ratio``.
    """
    ours = [r for r in rows if r["source"] == "pcnnseg" and r["model"]]
    ratios = []
    for other in rows:
        if other["source"] == "pcnnseg" or not other["model"]:
            continue
        for mine in ours:
            if (mine["case"], mine["model"]) == (other["case"], other["model"]):
                ratios.append({"case": other["case"], "model": other["model"],
                               "pcnnseg": mine["implementation"], "threads": mine["threads"],
                               "other": other["implementation"],
                               "ratio": (mine["pixel_iterations_per_s"]
                                         / other["pixel_iterations_per_s"])})
    return ratios


def time_entries(entries, repeats):
    """Warm every entry up, then time all in one round-robin grouped by thread count.

    Parameters
    ----------
    entries : dict
        Key -> :class:`Entry`.
    repeats : int
        Rounds.

    Returns
    -------
    times : dict
        Key -> durations in seconds.
    warmup_s : float
        Seconds of pcnnseg's first runs (compilation or cache loading).
    """
    t0 = time.perf_counter()
    for entry in entries.values():
        if entry.source == "pcnnseg":
            entry.fn()
    warmup_s = time.perf_counter() - t0
    for entry in entries.values():
        if entry.source != "pcnnseg":
            entry.fn()
    order = sorted(entries, key=lambda key: entries[key].threads)
    threads = {key: entries[key].threads for key in order}
    times = round_robin({key: entries[key].fn for key in order}, repeats,
                        settle=settling(threads))
    return times, warmup_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"rounds of the round-robin, runs of every row (default "
                             f"{REPEATS}; with --busy, runs per environment, default "
                             f"{BUSY_REPEATS})")
    parser.add_argument("--no-packages", action="store_true", help="skip public packages")
    parser.add_argument("--results", default=RESULTS,
                        help="folder for kernels.json and kernels.md "
                             "(default benchmarks/results)")
    parser.add_argument("--busy", action="store_true",
                        help="only pulse() beside busy-loop processes, against its quiet "
                             "single-thread time (kernels_busy.json, kernels_busy.md)")
    parser.add_argument("--busy-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.busy_probe or args.busy:
        repeats = BUSY_REPEATS if args.repeats is None else args.repeats
        return busy_probe(repeats) if args.busy_probe else busy_section(repeats)
    repeats = REPEATS if args.repeats is None else args.repeats

    S, B = make_inputs()
    models = {"SPCNN": SPCNN.from_image(S), "PCNN": PCNN(), "ICM": ICM()}
    entries = {**pcnnseg_entries(S, B, models), **numpy_entries(S, B, models)}
    notes = {"NumPy reference": PEER_NOTES["NumPy reference"]}
    if args.no_packages:
        notes["packages"] = "skipped (--no-packages)"
    else:
        peers, peer_notes = package_entries(S, B, models)
        entries.update(peers)
        notes.update(peer_notes)
    times, warmup_s = time_entries(entries, repeats)

    rows = result_rows(entries, times, {"single": S.size, "batch": B.size})
    ratios = like_for_like_ratios(rows)

    info = {
        "cpu": cpu_name(), "cores": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "threading_layer": numba.threading_layer(), "python": platform.python_version(),
        "numpy": np.__version__, "numba": numba.__version__,
        "compile_or_cache_load_s": warmup_s, "n_iter": N_ITER, "repeats": repeats,
        "single_shape": list(S.shape), "batch_shape": list(B.shape),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "notes": notes,
    }
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "kernels.json"), "w") as fh:
        json.dump({"machine": info, "results": rows, "ratios": ratios}, fh, indent=2)
    md = _markdown(info, rows, ratios)
    with open(os.path.join(args.results, "kernels.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


def _markdown(info, rows, ratios):
    command = "python benchmarks/kernels.py" + (
        "" if info["repeats"] == REPEATS else f" --repeats {info['repeats']}")
    lines = [
        "# PCNN kernel throughput",
        "",
        f"{info['cpu']}, {info['cores']} cores, numba {info['numba']} "
        f"({info['threading_layer']}), numpy {info['numpy']}, {info['date']}. "
        f"{info['n_iter']} iterations; single = {tuple(info['single_shape'])}, "
        f"batch = {tuple(info['batch_shape'])}. Medians of {info['repeats']} runs "
        "(p25-p75 in brackets), every row timed in one round-robin; "
        f"`{command}`.",
        "",
        "| case | implementation | median ms | (p25-p75) | runs | pixel-iterations/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['implementation']} | {1e3 * r['median_s']:.2f} | "
                     f"{1e3 * r['p25_s']:.2f}-{1e3 * r['p75_s']:.2f} | {r['runs']} | "
                     + (f"{r['pixel_iterations_per_s']:.3g} |" if r["pixel_iterations_per_s"]
                        else "- |"))
    lines += ["", _ratio_table(ratios)]
    lines += ["", "Notes:", ""] + [f"- {k}: {v}" for k, v in info["notes"].items()]
    return "\n".join(lines) + "\n"


def _ratio_table(ratios):
    """The like-for-like ratios as Markdown: one line per case and other
    implementation, one column per pcnnseg thread count."""
    threads = sorted({r["threads"] for r in ratios})
    cells = {}
    for r in ratios:
        cells.setdefault((r["case"], r["model"], r["other"]), {})[r["threads"]] = r["ratio"]
    lines = ["Like for like: throughput of pcnnseg's kernel over each other implementation "
             "of the same model on the same case (the NumPy reference and the packages "
             "run on one core).", "",
             "| case | model | other implementation | "
             + " | ".join(f"pcnnseg, {t} thread(s)" for t in threads) + " |",
             "|---|---|---|" + "---:|" * len(threads)]
    for (case, model, other), by_threads in cells.items():
        lines.append(f"| {case} | {model} | {other} | " + " | ".join(
            f"{by_threads[t]:.1f}x" if t in by_threads else "-" for t in threads) + " |")
    return "\n".join(lines)


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
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "busy_loops": len(hogs),
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
