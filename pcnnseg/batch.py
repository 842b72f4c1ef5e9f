"""Batch runs over datasets: folder (or glob) in, folder out, one record per case.

:func:`segment_many` and :func:`detect_many` run one job on every case of a
dataset (:mod:`pcnnseg.datasets`) and write, in ``out_dir``:

- per case, all or nothing (:class:`pcnnseg.outputs.OutputSet`): the result
  (``<name>.nii.gz``, a mask or BraTS label map on the input's grid, or
  ``<name>.json``, the tumor boxes per slice), an overlay
  ``overlays/<name>.png`` and the case's record ``records/<name>.json``,
  moved into place last, so that its presence means the case is finished;
- for the batch (:mod:`pcnnseg.batch_report`): ``cases.csv`` (one row per
  case), and when reference labels exist ``metrics.csv`` (per case and
  region) and ``summary.csv`` (mean, median, worst); ``report.md`` with one
  overlay per case.

Resumable: a case whose record and outputs exist is skipped (status
``"skipped"``, its metrics read back) unless ``overwrite=True``; one made with
other settings is reported as failed rather than silently kept or replaced.
An interrupted batch leaves the finished cases and no partial file. One bad
case (a corrupt file, a missing sequence, sequences on different grids, out of
memory) never stops the batch: it is recorded with its error.

Where the cases run:

- ``workers=1``: in the calling process, one after the other;
- ``workers=N`` (default: the usable cores): N worker processes on this
  machine (``spawn``);
- ``scheduler="ADDRESS"``: the workers of a running ``dask.distributed``
  cluster; ``scheduler="local:N"`` starts a LocalCluster of N single-threaded
  worker processes for the batch. The workers read the inputs and write the
  outputs themselves, so every worker, and the client, must see the dataset
  and ``out_dir`` under the same paths (a shared file system); the client
  only collects the records and writes the batch's reports.

In parallel, the cases with the largest input files are dealt out first, so
that the batch ends on short cases and its workers finish close together; the
records keep the input's order.

Each case runs on one thread (``numba.set_num_threads(1)``, and one PyTorch
thread for the U-Net): the batch scales by running cases side by side, and a
worker never competes with its neighbours for cores. The worker processes of
the local pool and of a ``local:N`` cluster also start with
``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to 1,
so that the BLAS and OpenMP thread pools of NumPy, SciPy and scikit-learn
(OpenBLAS, MKL, OpenMP) have one thread each there; those of the calling
process (which runs the cases itself for ``workers=1`` or a single case) are
left as they are.
"""
import collections
import contextlib
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from pcnnseg import datasets, outputs
from pcnnseg.io import write_bytes_atomic, write_label_map, write_mask, write_png
from pcnnseg.validation import check_bool, check_int, check_share

__all__ = ["CaseRecord", "segment_many", "detect_many", "usable_cores", "unet_segment",
           "detect_boxes", "detections_report", "DETECT_METHODS", "interrupt_signal",
           "local_cluster", "STATUSES"]

#: The status of a case in its record.
STATUSES = ("done", "skipped", "failed")

#: The metrics of each segmented region, in the order of ``metrics.csv``.
SEGMENT_METRICS = ("dice", "hausdorff95", "sensitivity", "specificity")

_METHODS = ("pcnn", "unet")
_REGIONS = ("whole_tumor", "tumor_core", "enhancing")

#: Seconds stopped worker processes get to clean up before they are killed.
STOP_GRACE_S = 10.0

# The environment that gives a process's BLAS and OpenMP pools one thread: each
# library reads it when it loads, so it is set before a worker process starts
# (the values dask.distributed's nannies give their workers by default).
_ONE_THREAD_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                           "MKL_NUM_THREADS": "1"}

# True in a worker process of this module's local pool (set by its initializer).
_in_pool_worker = False


@dataclass(frozen=True)
class CaseRecord:
    """What happened to one case of a batch.

    Attributes
    ----------
    name : str
        The case's name (its outputs are named after it).
    status : {"done", "skipped", "failed"}
        Done in this run; finished by an earlier run and left as it was; or
        failed, with ``error`` saying why.
    output : str or None
        The result file (a mask or label map, or the boxes' JSON); None when
        the case failed.
    seconds : float
        Wall time of the case in this run (reading, work, writing, scoring).
    error : str or None
        ``"<ExceptionType>: <message>"`` of a failed case.
    metrics : dict or None
        With reference labels: ``{region: {metric: value}}``; regions
        ``whole_tumor`` (``tumor_core``, ``enhancing`` for label maps against
        labelled regions) with Dice, HD95 (mm), sensitivity and specificity, or
        ``boxes`` for detection (``hit_rate``: IoU >= 0.5 with the reference's
        box, ``mean_iou``, over ``tumor_slices`` slices with tumor).
    source : str or None
        The case's input path.
    worker : str or None
        ``host:pid`` of the process that ran it.
    peak_memory_mib : float or None
        Peak resident memory of that process so far, MiB (None where the
        platform does not say).
    """

    name: str
    status: str
    output: str | None = None
    seconds: float = 0.0
    error: str | None = None
    metrics: dict | None = None
    source: str | None = None
    worker: str | None = None
    peak_memory_mib: float | None = None


@dataclass(frozen=True)
class _Task:
    job: str
    case: datasets.CaseSource
    out_dir: str
    overwrite: bool
    settings: dict


def usable_cores():
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def interrupt_signal(err):
    """The signal behind ``err``, an interrupt or an error one caused, or None.

    Numba's dispatcher reports an exception raised inside its call as a
    SystemError chained to it, so the chain is searched.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, outputs.Interrupted):
            return err.signum
        if isinstance(err, KeyboardInterrupt):
            return signal.SIGINT
        err = err.__cause__ or err.__context__
    return None


# ------------------------------------------------------------------ one case

def _paths(task):
    result = f"{task.case.name}.nii.gz" if task.job == "segment" else f"{task.case.name}.json"
    return {"output": os.path.join(task.out_dir, result),
            "overlay": os.path.join(task.out_dir, "overlays", f"{task.case.name}.png"),
            "record": os.path.join(task.out_dir, "records", f"{task.case.name}.json")}


def spacing_of(geometry):
    """Voxel size in array axis order (SimpleITK gives it in x, y, z order)."""
    return tuple(float(s) for s in reversed(geometry.spacing))


def unet_segment(images, *, regions=False, label_convention="2018"):
    """The compressed U-Net's whole-tumor mask, or BraTS label map, of a case.

    Parameters
    ----------
    images : dict of str to ndarray
        The four sequences (``"flair"``, ``"t1"``, ``"t1ce"``, ``"t2"``).
    regions : bool
        Return a label map (1 core, 2 edema, enhancing 4 or 3) instead of a mask.
    label_convention : {"2018", "2023"}

    Returns
    -------
    ndarray of bool or uint8
        The shape of the sequences.

    Raises
    ------
    ImportError
        Without PyTorch (the message says how to install it).
    """
    import cnn_baseline
    from pcnnseg.metrics import BRATS_LABEL_CONVENTIONS

    if not regions:
        return cnn_baseline.predict(images)
    wt, tc, et = cnn_baseline.predict(images, regions=_REGIONS)
    labels = np.where(wt, 2, 0).astype(np.uint8)
    labels[wt & tc] = 1
    labels[wt & et] = BRATS_LABEL_CONVENTIONS[label_convention][3]
    return labels


def load_segmenter(setting):
    """The segmenter a task's settings name: None, "default", or a saved file's path."""
    from pcnnseg.segmenter import Segmenter

    return setting if setting in (None, "default") else Segmenter.load(setting)


def _segment(task, case):
    """Segment one case; return ``(stagers, metrics)``."""
    from pcnnseg.metrics import brats_regions, evaluate
    from pcnnseg.overlay import overlay_slices
    from pcnnseg.tumor import segment_tumor

    s = task.settings
    if s["method"] == "unet":
        result = unet_segment(case.images, regions=s["regions"],
                              label_convention=s["label_convention"])
    else:
        segmenter = load_segmenter(s["segmenter"])
        spacing = spacing_of(case.geometry) if len(case.geometry.spacing) == 3 else None
        chosen = {} if s.get("satellites") is None else {"satellites": s["satellites"]}
        result = segment_tumor(case.images, spacing=spacing,
                               regions=s["regions"], label_convention=s["label_convention"],
                               selection=s["selection"], segmenter=segmenter, **chosen)
    found = (brats_regions(result, convention=s["label_convention"]) if s["regions"]
             else {"whole_tumor": result})
    reference = None if case.truth is None else brats_regions(case.truth)
    metrics = None
    if reference is not None:
        names = _REGIONS if s["regions"] and case.has_regions else _REGIONS[:1]
        metrics = {}
        for name in names:
            scores = evaluate(found[name], reference[name], spacing=spacing_of(case.geometry))
            metrics[name] = {m: float(scores[m]) for m in SEGMENT_METRICS}
    picture = overlay_slices(case.geometry.array, found["whole_tumor"],
                             None if reference is None else reference["whole_tumor"])
    writer = write_label_map if s["regions"] else write_mask
    paths = _paths(task)
    stagers = [(paths["output"], lambda p: writer(p, result, case.geometry)),
               (paths["overlay"], lambda p: write_png(p, picture))]
    return stagers, metrics


#: Box methods of ``pcnnseg detect``: read off the 3-D whole-tumor map
#: (:func:`pcnnseg.detect_volume`, volumes only), or selective-search proposals
#: ranked against the learned reference or by the published self-distance
#: (:func:`pcnnseg.detect`).
DETECT_METHODS = ("map", "reference", "published")


def default_detect_method(ndim):
    """The box method used when none is asked for: ``"map"`` for a volume
    (``ndim`` 3), ``"reference"`` for a slice."""
    return "map" if ndim == 3 else "reference"


def detect_boxes(images, volume, truth=None, *, spacing=None, method=None, segmenter=None):
    """Tumor box of every slice with brain; return ``(method, rows)``.

    Parameters
    ----------
    images : dict of str to ndarray
        The case's sequences (the map method segments with them).
    volume : (H, W) or (Z, H, W) ndarray
        The image whose slices are scanned (FLAIR).
    truth : bool ndarray of ``volume``'s shape, optional
    spacing : (float, float, float), optional
        Voxel size (Z, Y, X) in mm, for the map method's areas.
    method : {"map", "reference", "published"}, optional
        Default: ``"map"`` for a volume, ``"reference"`` for a slice.
    segmenter : pcnnseg.Segmenter or "default", optional
        For the map method (see :func:`pcnnseg.segment_tumor`).

    Returns
    -------
    method : str
    rows : list of (int, dict, tuple or None, tuple or None)
        Per slice with brain: its index, its entry of a detections file (the
        :meth:`pcnnseg.detection.Detection.to_dict` fields, ``tumor``, and
        with ``truth`` the reference's box ``truth_box``, the largest
        component's, and the IoU with it when both boxes exist), the box and
        the reference box.
    """
    from pcnnseg.boxes import box_iou, largest_component_box
    from pcnnseg.detection import detect
    from pcnnseg.volume_detection import detect_volume

    if volume.ndim not in (2, 3):
        raise ValueError(f"expected a 2-D slice or a 3-D volume, got shape {volume.shape}")
    method = method or default_detect_method(volume.ndim)
    if method not in DETECT_METHODS:
        raise ValueError(f"method: expected one of {DETECT_METHODS}, got {method!r}")
    if method == "map" and volume.ndim != 3:
        raise ValueError("method 'map' reads boxes off a 3-D tumor map: give a volume, or "
                         "use the reference or published method on a slice")
    if segmenter is not None and method != "map":
        raise ValueError(f"segmenter: only the map method segments (method {method!r})")
    slices = volume[None] if volume.ndim == 2 else volume
    truths = None if truth is None else (truth[None] if truth.ndim == 2 else truth)
    found = (detect_volume(images, spacing=spacing, segmenter=segmenter).slices
             if method == "map" else None)
    rows = []
    for z in range(len(slices)):
        if not np.any(slices[z] != 0):
            continue
        d = found[z] if found else detect(slices[z],
                                          reference=None if method == "published" else "default")
        entry, truth_box = {"tumor": d.box is not None, **d.to_dict()}, None
        if truths is not None:
            truth_box = largest_component_box(truths[z])
            entry["truth_box"] = None if truth_box is None else list(truth_box)
            if truth_box is not None and d.box is not None:
                entry["iou"] = box_iou(d.box, truth_box)
        rows.append((z, entry, d.box, truth_box))
    return method, rows


def detections_report(source, shape, method, rows):
    """The detections file's content: source, shape, method, tumor slices, and per
    slice its index and entry (``rows`` of :func:`detect_boxes`)."""
    from pcnnseg.volume_detection import MIN_TUMOR_AREA

    entries = [{"slice": z, **entry} for z, entry, _, _ in rows]
    report = {"source": source, "shape": list(shape), "method": method}
    if method == "map":
        report["min_tumor_area_mm2"] = MIN_TUMOR_AREA
    report["tumor_slices"] = [e["slice"] for e in entries if e["tumor"]]
    report["slices"] = entries
    return report


def reference_ious(rows):
    """The IoU of each slice with a reference box (``rows`` of :func:`detect_boxes`
    with ``truth``), 0.0 where no box was found."""
    return [entry.get("iou", 0.0) for _, entry, _, truth_box in rows if truth_box is not None]


def _detect(task, case):
    """Detect the tumor boxes of every slice with brain; return ``(stagers, metrics)``."""
    from pcnnseg.overlay import box_picture

    volume = case.images.get("flair", case.geometry.array)
    truth = None if case.truth is None else case.truth > 0
    spacing = spacing_of(case.geometry) if volume.ndim == 3 else None
    s = task.settings
    method, rows = detect_boxes(case.images, volume, truth, spacing=spacing, method=s["method"],
                                segmenter=load_segmenter(s["segmenter"]))
    slices = volume[None] if volume.ndim == 2 else volume
    truths = None if truth is None else truth.reshape(slices.shape)
    shown = None
    for z, entry, box, truth_box in rows:
        area = 0 if truths is None else int(truths[z].sum())
        # the slice shown: most tumor, else the closest box (the map's: the largest)
        closeness = (-entry["distance"] if entry["distance"] is not None
                     else entry["score"] or 0.0) if box is not None else -np.inf
        rank = (area, closeness)
        if box is not None or truth_box is not None:
            if shown is None or rank > shown[0]:
                shown = (rank, z, box, truth_box)
    ious, metrics = reference_ious(rows), None
    if ious:
        metrics = {"boxes": {"hit_rate": float(np.mean(np.asarray(ious) >= 0.5)),
                             "mean_iou": float(np.mean(ious)), "tumor_slices": len(ious)}}
    z = slices.shape[0] // 2 if shown is None else shown[1]
    picture = box_picture(slices[z], *(shown[2:] if shown else (None, None)))
    text = (json.dumps(detections_report(task.case.path, volume.shape, method, rows),
                       indent=1) + "\n").encode()
    paths = _paths(task)
    stagers = [(paths["output"], lambda p: write_bytes_atomic(p, text)),
               (paths["overlay"], lambda p: write_png(p, picture))]
    return stagers, metrics


_JOBS = {"segment": _segment, "detect": _detect}


def _peak_memory_mib():
    try:
        import resource
    except ImportError:   # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** (20 if sys.platform == "darwin" else 10)


def _record(task, status, started, **fields):
    return CaseRecord(name=task.case.name, status=status,
                      seconds=time.perf_counter() - started, source=task.case.path,
                      worker=f"{socket.gethostname()}:{os.getpid()}",
                      peak_memory_mib=_peak_memory_mib(), **fields)


def _lost(task, error):
    """The record of a case whose result never came back to the client."""
    return CaseRecord(name=task.case.name, status="failed", error=error, source=task.case.path)


def _one_line(err):
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _finished(task, started):
    """The record of an earlier run of this case when it stands, else None."""
    paths = _paths(task)
    try:
        with open(paths["record"], encoding="utf-8") as fh:
            saved = json.load(fh)
    except (OSError, ValueError):
        return None
    if saved.get("settings") != task.settings:
        raise ValueError(f"{paths['output']} was made with other settings ({saved.get('settings')}"
                         f", now {task.settings}); pass overwrite (--overwrite) to redo it, "
                         f"or write to another folder")
    if not all(os.path.isfile(paths[k]) for k in ("output", "overlay")):
        return None
    return _record(task, "skipped", started, output=paths["output"],
                   metrics=saved.get("metrics"))


@contextlib.contextmanager
def _one_thread():
    """Numba (this thread) and PyTorch (when imported) on one thread, restored after."""
    import numba   # here: a batch's parent process never loads it

    numba_before = numba.get_num_threads()
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch else None
    numba.set_num_threads(1)
    if torch:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(numba_before)
        if torch:
            torch.set_num_threads(torch_before)


def _case_record(task):
    """Run one case, in whatever process; never raises for a bad case."""
    started = time.perf_counter()
    try:
        if not task.overwrite:
            previous = _finished(task, started)
            if previous is not None:
                return previous
        if task.settings.get("method") == "unet":
            import cnn_baseline  # noqa: F401  (torch first, so that it is pinned too)
        with _one_thread():
            case = datasets.load_case(task.case)
            stagers, metrics = _JOBS[task.job](task, case)
        paths = _paths(task)
        saved = {"name": task.case.name, "settings": task.settings, "source": task.case.path,
                 "output": paths["output"], "overlay": paths["overlay"],
                 "seconds": time.perf_counter() - started, "metrics": metrics}
        text = (json.dumps(saved, indent=1) + "\n").encode()
        with outputs.OutputSet() as files:
            for target, write in stagers:
                files.stage(target, write)
            files.stage(paths["record"], lambda p: write_bytes_atomic(p, text))  # last
            files.commit()
        return _record(task, "done", started, output=paths["output"], metrics=metrics)
    except Exception as err:
        if interrupt_signal(err) is not None:
            raise
        return _record(task, "failed", started, error=_one_line(err))


def _run_case(task):
    """The function a worker runs. In this module's pool, SIGTERM (the parent
    stopping the batch) makes the case clean up and the process leave; SIGINT
    (Ctrl-C reaches the whole process group) is left to the parent."""
    if not _in_pool_worker:
        return _case_record(task)
    try:
        with outputs.interrupts_raise():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return _case_record(task)
    except BaseException as err:
        signum = interrupt_signal(err)   # also when Numba wrapped it in a SystemError
        if signum is None:
            raise
        os._exit(128 + signum)


# ------------------------------------------------------------------ runners

def _init_pool_worker():
    global _in_pool_worker
    _in_pool_worker = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C: the parent stops the pool


def _stop_pool(pool):
    """Stop a pool's workers: SIGTERM (each cleans up its case and leaves), then
    SIGKILL for those still there after :data:`STOP_GRACE_S` (a signal that
    lands inside a callback from compiled code is lost)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
    pool.shutdown(wait=True, cancel_futures=True)


def _sweep_temporaries(out_dir):
    """Delete the temporary files that stopped workers left in the batch's folders."""
    for folder in (out_dir, os.path.join(out_dir, "overlays"), os.path.join(out_dir, "records")):
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.name.startswith(outputs._TEMP_PREFIX) and entry.is_file():
                    with contextlib.suppress(OSError):
                        os.remove(entry.path)


def _pool_pass(queue, n_workers, emit, run_case):
    """Run ``run_case`` on the ``(index, task)`` items of ``queue`` in a fresh pool
    of ``n_workers`` processes; return the items lost when a worker process died,
    else []."""
    pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_pool_worker)
    running, lost = {}, []
    try:
        while (queue or running) and not lost:
            while queue and len(running) <= n_workers:  # one queued behind the busy ones
                item = queue.popleft()
                with _one_thread_environment():   # submit starts a worker when none is idle
                    future = pool.submit(run_case, item[1])
                running[future] = item
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index, task = running.pop(future)
                try:
                    emit(index, future.result())
                except BrokenProcessPool:
                    lost.append((index, task))
                except Exception as err:   # the task could not be sent or returned
                    emit(index, _lost(task, _one_line(err)))
    except BaseException:
        _stop_pool(pool)
        raise
    lost += list(running.values())
    pool.shutdown(wait=True, cancel_futures=True)
    return lost


def _run_local(tasks, n_workers, emit, run_case=_run_case):
    """Run tasks in worker processes; a case whose worker died is rerun alone,
    and recorded as failed when its own worker dies too.

    ``run_case(task)`` returns the task's record in a worker (a picklable
    function: the tests pass one whose worker dies)."""
    queue = collections.deque(_largest_first(tasks))
    while queue:
        for index, task in _pool_pass(queue, n_workers, emit, run_case):
            if _pool_pass(collections.deque([(index, task)]), 1, emit, run_case):
                emit(index, _lost(task, "the worker process running this case died "
                                        "(out of memory?)"))


def _dask():
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as err:
        raise ImportError("scheduler: batch runs on a Dask cluster need dask.distributed, "
                          "which is not installed: pip install \"pcnnseg[dask]\"") from err
    return Client, LocalCluster, as_completed


def _local_workers(scheduler):
    """N of ``"local:N"``, or None for an address."""
    if not scheduler.startswith("local:"):
        return None
    text = scheduler[len("local:"):]
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"scheduler: expected 'local:N' with N a positive integer, or a "
                         f"scheduler address, got {scheduler!r}")
    return int(text)


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored meanwhile (in the main thread), so that the processes started
    meanwhile ignore it too: a new Python keeps an ignored SIGINT ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _environment_kept():
    """Put back this process's environment variables on leaving.

    A LocalCluster's nannies run in this process and set their workers'
    variables (``OMP_NUM_THREADS=1``, ``PYTHONHASHSEED``, ...) in its
    environment, where they would change the processes it starts later.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        for name, value in saved.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


@contextlib.contextmanager
def _one_thread_environment():
    """:data:`_ONE_THREAD_ENVIRONMENT` meanwhile, for the processes started
    meanwhile; this process's environment is put back on leaving (and its
    libraries, loaded already, never read it again)."""
    with _environment_kept():
        os.environ.update(_ONE_THREAD_ENVIRONMENT)
        yield


def local_cluster(n_workers):
    """A dask.distributed LocalCluster of ``n_workers`` single-threaded processes.

    Its workers do not get Dask's default ``MALLOC_TRIM_THRESHOLD_=65536``: with it
    glibc returns freed memory eagerly and maps every large array afresh, which
    made a segmentation 20-25 % slower here (0.99 s against 0.79 s for one BraTS
    case with regions). They start with one thread in their BLAS and OpenMP pools,
    as the local pool's workers do, whatever the Dask configuration says. The
    workers ignore Ctrl-C, which is the client's to handle.
    """
    import logging

    import dask

    _, LocalCluster, _ = _dask()
    environ = "distributed.nanny.pre-spawn-environ."
    with dask.config.set({environ + "MALLOC_TRIM_THRESHOLD_": None,
                          **{environ + name: value
                             for name, value in _ONE_THREAD_ENVIRONMENT.items()}}):
        with _sigint_ignored():   # inherited
            return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                dashboard_address=None, silence_logs=logging.ERROR)


def _run_dask(tasks, scheduler, emit):
    """Run tasks on a Dask cluster: an existing one, or a LocalCluster for ``local:N``."""
    if _local_workers(scheduler) is None:
        _run_on_cluster(tasks, scheduler, emit)
        return
    with _environment_kept():
        cluster = local_cluster(_local_workers(scheduler))
        try:
            _run_on_cluster(tasks, cluster, emit)
        finally:
            cluster.close()


def _run_on_cluster(tasks, address, emit):
    """Run tasks on the Dask cluster at ``address`` (or a cluster object)."""
    Client, _, as_completed = _dask()
    client = Client(address)
    futures = {}
    try:
        batch = uuid.uuid4().hex[:8]
        order = _largest_first(tasks)
        for rank, (index, task) in enumerate(order):   # the scheduler runs high priorities first
            future = client.submit(_run_case, task, pure=False, priority=len(order) - rank,
                                   key=f"pcnnseg-{task.job}-{task.case.name}-{batch}")
            futures[future] = index
        for future in as_completed(futures):
            index = futures[future]
            try:
                record = future.result()
            except Exception as err:   # a worker died too often (KilledWorker), ...
                record = _lost(tasks[index], _one_line(err))
            emit(index, record)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        client.close()


def _input_bytes(source):
    """Bytes of a case's input files (a folder's files, or the one file): a cheap
    guess of its cost, 0 where they cannot be read.

    Parameters
    ----------
    source : pcnnseg.datasets.CaseSource

    Returns
    -------
    int
    """
    try:
        if not os.path.isdir(source.path):
            return os.path.getsize(source.path)
        with os.scandir(source.path) as entries:
            return sum(e.stat().st_size for e in entries if e.is_file())
    except OSError:
        return 0


def _largest_first(tasks):
    """``(index, task)`` pairs, the largest inputs first (ties in the given order).

    Cases in a batch take from about 1x to 2x the time of the smallest, and
    roughly as their inputs' size (BraTS cases: rank correlation 0.79 over the
    22 development cases). Dealing the long ones out first leaves short ones
    to even out the workers' ends (the longest-processing-time-first rule).
    """
    pairs = list(enumerate(tasks))
    sizes = [_input_bytes(task.case) for task in tasks]
    return sorted(pairs, key=lambda pair: -sizes[pair[0]])


def _run(tasks, *, workers, scheduler, progress):
    """Run every task, the largest inputs first when in parallel; return the
    records in the tasks' order."""
    records = [None] * len(tasks)
    done = 0

    def emit(index, record):
        nonlocal done
        records[index] = record
        done += 1
        if progress is not None:
            progress(record, done, len(tasks))

    if scheduler is not None:
        _run_dask(tasks, scheduler, emit)
    elif workers == 1 or len(tasks) == 1:
        for index, task in enumerate(tasks):
            emit(index, _case_record(task))
    else:
        _run_local(tasks, min(workers, len(tasks)), emit)
    return records


# ------------------------------------------------------------------ public

def _case_sources(cases, out_dir):
    if isinstance(cases, (str, os.PathLike)):
        return datasets.find_cases(cases, exclude=out_dir)
    try:
        sources = [c if isinstance(c, datasets.CaseSource) else datasets.case_source(c)
                   for c in cases]
    except TypeError:
        raise TypeError(f"cases: expected a folder, a glob pattern or a list of cases, got "
                        f"{type(cases).__name__}") from None
    if not sources:
        raise ValueError("cases: expected at least one case, got none")
    datasets.check_unique_names(sources)
    return sources


def _check_run_options(workers, scheduler, overwrite, progress):
    check_bool(overwrite, "overwrite")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable or None, got {type(progress).__name__}")
    if scheduler is not None:
        if workers is not None:
            raise ValueError("workers: give either workers (processes on this machine) or "
                             "scheduler (a Dask cluster), not both")
        if not isinstance(scheduler, str) or not scheduler:
            raise TypeError(f"scheduler: expected an address or 'local:N', got {scheduler!r}")
        _local_workers(scheduler)
        _dask()
        return None
    return usable_cores() if workers is None else check_int(workers, "workers", 1)


def _batch(job, cases, out_dir, settings, *, workers, scheduler, overwrite, progress):
    from pcnnseg import batch_report

    workers = _check_run_options(workers, scheduler, overwrite, progress)
    out_dir = os.path.abspath(os.fspath(out_dir))
    sources = _case_sources(cases, out_dir)
    for folder in (out_dir, os.path.join(out_dir, "overlays"), os.path.join(out_dir, "records")):
        os.makedirs(folder, exist_ok=True)
    tasks = [_Task(job, source, out_dir, overwrite, settings) for source in sources]
    try:
        records = _run(tasks, workers=workers, scheduler=scheduler, progress=progress)
    finally:
        # local workers are gone now, and one may have been killed in the middle of
        # a write (stopped, or out of memory); those of a cluster at an address may
        # still be writing: leave them be
        if scheduler is None or _local_workers(scheduler) is not None:
            _sweep_temporaries(out_dir)
    batch_report.write_reports(out_dir, records, job=job, settings=settings)
    return records


def segment_many(cases, out_dir, *, workers=None, scheduler=None, overwrite=False,
                 method="pcnn", regions=False, label_convention="2018",
                 selection="thickest", satellites=None, segmenter=None, progress=None):
    """Segment the tumor of every case of a dataset; one record per case.

    Parameters
    ----------
    cases : str, os.PathLike or sequence
        A dataset folder or glob pattern (:func:`pcnnseg.datasets.find_cases`),
        or a list of case paths (BraTS case folders, image files) or
        :class:`pcnnseg.datasets.CaseSource`.
    out_dir : str or os.PathLike
        Output folder, created when missing. Per case ``<name>.nii.gz`` (a
        whole-tumor mask, or with ``regions`` a BraTS label map, on the input's
        grid), ``overlays/<name>.png`` and ``records/<name>.json``; for the batch
        ``cases.csv``, ``report.md`` and, with labels, ``metrics.csv`` and
        ``summary.csv``.
    workers : int, optional
        Worker processes on this machine; default the usable cores; 1 runs the
        cases in this process.
    scheduler : str, optional
        A ``dask.distributed`` scheduler address (``"tcp://host:8786"``), or
        ``"local:N"`` for a LocalCluster of N worker processes; needs
        ``pip install "pcnnseg[dask]"``.
    overwrite : bool
        Redo cases finished by an earlier run (default: skip them).
    method : {"pcnn", "unet"}
        :func:`pcnnseg.segment_tumor`, or the compressed U-Net baseline
        (:mod:`cnn_baseline`, four sequences, needs PyTorch).
    regions : bool
        Write BraTS label maps (needs T1ce) instead of whole-tumor masks.
    label_convention : {"2018", "2023"}
        Labels of the maps: enhancing tumor 4 or 3.
    selection : {"thickest", "largest", "asymmetry"}
        The PCNN's component choice (:func:`pcnnseg.segment_tumor`).
    satellites : float, optional
        The PCNN's share at which other components are kept too
        (:func:`pcnnseg.segment_tumor`); default its default.
    segmenter : None, "default" or str
        The PCNN's fitted readout: the bundled one, or a file saved by
        :meth:`pcnnseg.Segmenter.save`.
    progress : callable, optional
        ``progress(record, done, total)``, called in this process as each case
        ends.

    Returns
    -------
    list of CaseRecord
        In the order of the cases.

    Raises
    ------
    TypeError, ValueError, FileNotFoundError
        For bad arguments or a dataset without cases (a bad *case* is a failed
        record instead).
    ImportError
        For ``scheduler`` without dask.distributed.

    Examples
    --------
    >>> records = segment_many("../shared/data/brats2018", "out", regions=True)  # doctest: +SKIP
    >>> [r.name for r in records if r.status == "failed"]  # doctest: +SKIP
    []
    """
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {_METHODS}, got {method!r}")
    if label_convention not in ("2018", "2023"):
        raise ValueError(f"label_convention: expected '2018' or '2023', got {label_convention!r}")
    if selection not in ("thickest", "largest", "asymmetry"):
        raise ValueError(f"selection: expected 'thickest', 'largest' or 'asymmetry', got "
                         f"{selection!r}")
    if segmenter is not None and not isinstance(segmenter, (str, os.PathLike)):
        raise TypeError(f"segmenter: expected None, 'default' or a file saved by "
                        f"Segmenter.save, got {type(segmenter).__name__}")
    if satellites is not None:
        satellites = check_share(satellites, "satellites")
    if method == "unet" and (segmenter is not None or selection != "thickest"
                             or satellites is not None):
        raise ValueError("method: 'unet' takes no segmenter, selection or satellites (PCNN "
                         "options)")
    remote = isinstance(scheduler, str) and not scheduler.startswith("local:")
    if method == "unet" and not remote:   # say it once here, not once per case
        import importlib.util
        if importlib.util.find_spec("torch") is None:
            import cnn_baseline  # noqa: F401  raises, saying how to install PyTorch
    settings = {"job": "segment", "method": method, "regions": check_bool(regions, "regions"),
                "label_convention": label_convention, "selection": selection,
                "satellites": satellites, "segmenter": None if segmenter is None else (
                    "default" if segmenter == "default" else os.path.abspath(segmenter))}
    return _batch("segment", cases, out_dir, settings, workers=workers, scheduler=scheduler,
                  overwrite=overwrite, progress=progress)


def detect_many(cases, out_dir, *, workers=None, scheduler=None, overwrite=False,
                method=None, segmenter=None, progress=None):
    """Detect the tumor boxes of every slice of every case of a dataset.

    Per case ``<name>.json`` (the boxes of each slice with brain and the
    slices judged to hold a tumor, as ``pcnnseg detect`` writes them),
    ``overlays/<name>.png`` (the slice with most tumor, or with the best box)
    and ``records/<name>.json``; with labels, the hit rate (IoU >= 0.5) and mean
    IoU per case, over every slice with a reference tumor (a tumor slice without
    a box is a miss; the benchmarks count only slices of at least 500 tumor
    pixels, so their hit rates are higher). The other parameters, the reports
    and the records are those of :func:`segment_many`.

    Parameters
    ----------
    cases, out_dir, workers, scheduler, overwrite, progress
        See :func:`segment_many`.
    method : {"map", "reference", "published"}, optional
        See :func:`detect_boxes`; default ``"map"`` for volumes, ``"reference"``
        for slices.
    segmenter : "default" or path of a saved Segmenter, optional
        The fitted readout of the map method's segmentation.

    Returns
    -------
    list of CaseRecord
    """
    if method is not None and method not in DETECT_METHODS:
        raise ValueError(f"method: expected one of {DETECT_METHODS} or None, got {method!r}")
    if segmenter is not None and method not in (None, "map"):
        raise ValueError(f"segmenter: only the map method segments (method {method!r})")
    settings = {"job": "detect", "method": method,
                "segmenter": None if segmenter is None else (
                    "default" if segmenter == "default" else os.path.abspath(segmenter))}
    return _batch("detect", cases, out_dir, settings, workers=workers, scheduler=scheduler,
                  overwrite=overwrite, progress=progress)
