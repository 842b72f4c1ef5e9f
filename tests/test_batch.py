"""Batch runs over datasets (issue 15): pcnnseg.batch, pcnnseg.datasets and the
command's folder-in, folder-out mode.

The dataset: three small phantom cases as BraTS case folders (two in the 2018
names, one in the 2023 names; 2 mm slices, an origin off zero) and one case
whose FLAIR file is corrupt. The reference run is serial (``workers=1``); the
local process pool of 2 workers and a real dask.distributed LocalCluster of 2
worker processes must give the same records, outputs and CSV files.
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import SimpleITK as sitk

from pcnnseg import batch, datasets, phantom
from pcnnseg.cli import EXIT_CASES_FAILED, main
from pcnnseg.io import BRATS_LAYOUTS, read_image

SHAPE = (16, 48, 48)
SPACING = (1.0, 1.0, 2.0)          # SimpleITK order: x, y, z
ORIGIN = (-12.0, 7.5, 30.0)
CASES = {"Brats18_A_1": ("2018", 0), "Brats18_B_1": ("2018", 1),
         "BraTS-SSA-00003-000": ("2023", 2)}
BAD = "Brats18_Bad_1"
# Seconds a subprocess may take (the first run of a fresh checkout compiles).
_TIMEOUT = 600


def _write(array, path):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(path), True)


def _write_case(folder, name, convention, seed):
    layout = BRATS_LAYOUTS[convention]
    case = folder / name
    case.mkdir()
    images, labels = phantom.make_case(SHAPE, seed=seed)
    if convention == "2023":
        labels = np.where(labels == 4, 3, labels).astype(np.uint8)
    for key, array in {**images, "seg": labels}.items():
        _write(array, case / f"{name}{layout['separator']}{layout[key]}.nii.gz")
    return case


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    for name, (convention, seed) in CASES.items():
        _write_case(root, name, convention, seed)
    bad = _write_case(root, BAD, "2018", 3)
    (bad / f"{BAD}_flair.nii.gz").write_bytes(b"\x1f\x8b not really a NIfTI file")
    return root


@pytest.fixture(scope="module")
def serial(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "out"
    return batch.segment_many(dataset, out, workers=1, regions=True), out


def _files(folder):
    """Relative names of every file under ``folder``, hidden ones included."""
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


def _comparable(records):
    return [(r.name, r.status, r.output and os.path.basename(r.output), r.error, r.metrics)
            for r in records]


# Columns of cases.csv that differ between runs of the same cases: the wall time,
# the process that ran the case (host:pid) and that process's peak memory so far.
_RUN_COLUMNS = ("seconds", "worker", "peak_memory_mib")


def _case_rows(folder, resumed):
    """The rows of ``folder``'s cases.csv less ``_RUN_COLUMNS`` (and the status
    when ``resumed``), each output relative to ``folder`` (the runs compared read
    the same dataset, so their sources are the same paths)."""
    with open(folder / "cases.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for column in _RUN_COLUMNS + (("status",) if resumed else ()):
            del row[column]
        row["output"] = row["output"] and os.path.relpath(row["output"], folder)
    return rows


def _same_outputs(a, b, *, resumed=False):
    """Two output folders hold the same files, the same voxels and the same tables;
    ``resumed``: ``b``'s run skipped the cases an earlier run had finished."""
    assert _files(a) == _files(b)
    for name in _files(a):
        if name.endswith(".nii.gz"):
            x, y = read_image(a / name), read_image(b / name)
            assert np.array_equal(x.array, y.array), name
            assert (x.spacing, x.origin, x.direction) == (y.spacing, y.origin, y.direction)
        elif name == "cases.csv":
            assert _case_rows(a, resumed) == _case_rows(b, resumed)
        elif name.endswith((".csv", ".png")):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_serial_run_records_and_outputs(serial, dataset):
    records, out = serial
    assert [r.name for r in records] == sorted([*CASES, BAD])
    by_name = {r.name: r for r in records}
    for name in CASES:
        r = by_name[name]
        assert r.status == "done" and r.error is None
        assert r.output == str(out / f"{name}.nii.gz")
        assert set(r.metrics) == {"whole_tumor", "tumor_core", "enhancing"}
        assert set(r.metrics["whole_tumor"]) == set(batch.SEGMENT_METRICS)
        assert r.metrics["whole_tumor"]["dice"] > 0.8
        labels = read_image(r.output)
        flair = read_image(next((dataset / name).glob("*f*.nii.gz")))
        assert labels.array.shape == SHAPE and set(np.unique(labels.array)) <= {0, 1, 2, 4}
        assert (labels.spacing, labels.origin, labels.direction) == (
            flair.spacing, flair.origin, flair.direction)
    bad = by_name[BAD]
    assert bad.status == "failed" and bad.output is None and bad.metrics is None
    assert f"{BAD}_flair.nii.gz" in bad.error and bad.error.startswith("ValueError: ")
    assert sorted(_files(out)) == sorted(
        ["cases.csv", "metrics.csv", "summary.csv", "report.md"]
        + [f"{n}.nii.gz" for n in CASES] + [f"overlays/{n}.png" for n in CASES]
        + [f"records/{n}.json" for n in CASES])


def test_reports_hold_every_case_region_and_the_failure(serial):
    records, out = serial
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert metrics[0] == "case,region,dice,hausdorff95,sensitivity,specificity"
    assert len(metrics) == 1 + 3 * len(CASES)
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0] == "region,metric,cases,mean,median,worst,worst_case"
    wt_dice = [line.split(",") for line in summary if line.startswith("whole_tumor,dice,")]
    values = [r.metrics["whole_tumor"]["dice"] for r in records if r.metrics]
    assert float(wt_dice[0][3]) == pytest.approx(np.mean(values))
    assert float(wt_dice[0][5]) == min(values)
    report = (out / "report.md").read_text()
    assert "3 done, 0 skipped" in report and "1 failed" in report
    assert f"- {BAD}: ValueError" in report
    assert all(f"(overlays/{name}.png)" in report for name in CASES)
    assert f"{BAD},failed" in (out / "cases.csv").read_text()


@pytest.mark.parametrize("where", [{"workers": 2}, {"scheduler": "local:2"}],
                         ids=["pool", "dask"])
def test_parallel_runs_match_the_serial_run(serial, dataset, tmp_path, where):
    if "scheduler" in where:
        pytest.importorskip("distributed")
    records, out = serial
    seen, environment = [], dict(os.environ)
    parallel = batch.segment_many(dataset, tmp_path / "out", regions=True,
                                  progress=lambda r, d, n: seen.append((d, n)), **where)
    # the pool and the cluster's nannies set their workers' variables here while
    # starting them; they are put back
    assert dict(os.environ) == environment
    assert _comparable(parallel) == _comparable(records)
    assert seen == [(i, len(records)) for i in range(1, len(records) + 1)]
    # the workers ran the cases, in processes of their own
    assert all(int(r.worker.split(":")[1]) != os.getpid() for r in parallel)
    _same_outputs(out, tmp_path / "out")


def _thread_pools(task=None):
    """A worker's function for the tests below: its thread variables and the
    ``(library, threads)`` of every BLAS and OpenMP pool it has loaded."""
    import sklearn  # noqa: F401  loads an OpenMP runtime beside NumPy's and SciPy's BLAS
    import threadpoolctl

    return ({name: os.environ.get(name) for name in batch._ONE_THREAD_ENVIRONMENT},
            sorted((p["internal_api"], p["num_threads"])
                   for p in threadpoolctl.threadpool_info()))


def _one_thread_each(pools):
    """Whether ``_thread_pools`` saw BLAS and OpenMP pools, all of one thread."""
    variables, libraries = pools
    return (set(variables.values()) == {"1"} and {"openmp"} < {api for api, _ in libraries}
            and {threads for _, threads in libraries} == {1})


def test_pool_workers_run_blas_and_openmp_on_one_thread(tmp_path):
    pytest.importorskip("sklearn")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    environment, pools = dict(os.environ), threadpoolctl.threadpool_info()
    tasks = [batch._Task("segment", datasets.CaseSource(name, str(tmp_path), "image"),
                         str(tmp_path), False, {}) for name in ("a", "b")]
    seen = [None] * len(tasks)
    batch._run_local(tasks, 2, seen.__setitem__, run_case=_thread_pools)
    assert all(_one_thread_each(pools) for pools in seen), seen
    # this process's environment and pools are left as they were
    assert dict(os.environ) == environment and threadpoolctl.threadpool_info() == pools


def test_local_cluster_workers_run_one_thread_and_do_not_trim_memory_eagerly():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("sklearn")
    pytest.importorskip("threadpoolctl")
    environment = dict(os.environ)
    cluster = batch.local_cluster(1)
    try:
        with distributed.Client(cluster) as client:
            trim = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
            pools = client.run(_thread_pools)
    finally:
        cluster.close()
        os.environ.clear()
        os.environ.update(environment)
    assert list(trim.values()) == [None]
    assert all(_one_thread_each(p) for p in pools.values()), pools


def test_resume_skips_finished_cases_and_overwrite_redoes_them(serial, tmp_path):
    records, out = serial
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    os.remove(copy / "records" / "Brats18_B_1.json")   # as if its run had not finished
    before = {n: (copy / f"{n}.nii.gz").stat().st_mtime_ns for n in CASES}
    dataset = os.path.dirname(records[0].source)
    again = batch.segment_many(dataset, copy, workers=1, regions=True)
    status = {r.name: r.status for r in again}
    assert status == {"Brats18_A_1": "skipped", "Brats18_B_1": "done",
                      "BraTS-SSA-00003-000": "skipped", BAD: "failed"}
    assert [r.metrics for r in again] == [r.metrics for r in records]
    assert (copy / "Brats18_A_1.nii.gz").stat().st_mtime_ns == before["Brats18_A_1"]
    _same_outputs(out, copy, resumed=True)
    redone = batch.segment_many(dataset, copy, workers=1, regions=True, overwrite=True)
    assert [r.status for r in redone] == [r.status if r.status == "failed" else "done"
                                          for r in records]
    assert (copy / "Brats18_A_1.nii.gz").stat().st_mtime_ns != before["Brats18_A_1"]
    _same_outputs(out, copy)


def test_other_settings_are_not_taken_for_finished(serial, tmp_path):
    records, out = serial
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    masks = batch.segment_many(os.path.dirname(records[0].source), copy, workers=1)
    assert {r.status for r in masks} == {"failed"}
    assert "other settings" in masks[0].error and "overwrite" in masks[0].error
    for name in _files(out):   # the cases' files are as they were
        if name.startswith(("records/", "overlays/")) or name.endswith(".nii.gz"):
            assert (out / name).read_bytes() == (copy / name).read_bytes(), name


def test_detect_into_a_segment_folder_leaves_its_files_alone(serial, tmp_path):
    records, out = serial
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    boxes = batch.detect_many(os.path.dirname(records[0].source), copy, workers=1)
    finished = [r for r in boxes if r.name != BAD]
    assert finished and all(r.status == "failed" and "other settings" in r.error
                            for r in finished)
    for name in _files(out):
        if name.startswith(("records/", "overlays/")):
            assert (out / name).read_bytes() == (copy / name).read_bytes(), name


def test_temporary_files_of_killed_workers_are_swept_when_the_batch_ends(serial, tmp_path):
    records, out = serial
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    left = [copy / ".pcnnseg-0badf00d.nii.gz", copy / "overlays" / ".pcnnseg-0badf00d.png"]
    for path in left:
        path.write_bytes(b"half a file")
    batch.segment_many(os.path.dirname(records[0].source), copy, workers=1, regions=True)
    assert not any(path.exists() for path in left)


def test_one_case_folder_is_one_case(dataset):
    cases = datasets.find_cases(dataset / "Brats18_A_1")
    assert [(c.name, c.path) for c in cases] == [("Brats18_A_1", str(dataset / "Brats18_A_1"))]


def _die_on_crash(task):
    """A worker's function for the test below: the case 'crash' kills its process."""
    if task.case.name == "crash":
        os._exit(1)
    return batch.CaseRecord(name=task.case.name, status="done", worker=str(os.getpid()))


def test_a_case_that_kills_its_worker_fails_alone(tmp_path):
    tasks = [batch._Task("segment", datasets.CaseSource(name, str(tmp_path), "image"),
                         str(tmp_path), False, {}) for name in ("a", "crash", "b", "c")]
    records = [None] * len(tasks)
    batch._run_local(tasks, 2, records.__setitem__, run_case=_die_on_crash)
    assert [(r.name, r.status) for r in records] == [
        ("a", "done"), ("crash", "failed"), ("b", "done"), ("c", "done")]
    assert "worker process" in records[1].error


def _started_at(task):
    """A worker's function for the test below: when the case began."""
    return batch.CaseRecord(name=task.case.name, status="done", seconds=time.monotonic())


def test_largest_inputs_are_dealt_out_first_and_records_keep_the_input_order(tmp_path):
    sizes = {"small": 10, "large": 3000, "missing": None, "middle": 200, "folder": 1500}
    sources = []
    for name, size in sizes.items():
        path = tmp_path / name
        if name == "folder":
            path.mkdir()
            (path / "a.nii.gz").write_bytes(b"x" * 1000)
            (path / "b.nii.gz").write_bytes(b"x" * 500)
        elif size is not None:
            path.write_bytes(b"x" * size)
        sources.append(datasets.CaseSource(name, str(path), "image"))
    assert [batch._input_bytes(s) for s in sources] == [10, 3000, 0, 200, 1500]
    tasks = [batch._Task("segment", s, str(tmp_path), False, {}) for s in sources]
    assert [t.case.name for _, t in batch._largest_first(tasks)] == [
        "large", "folder", "middle", "small", "missing"]

    records = [None] * len(tasks)
    batch._run_local(tasks, 1, records.__setitem__, run_case=_started_at)
    assert [r.name for r in records] == list(sizes)
    assert sorted(records, key=lambda r: r.seconds) == [records[i] for i in (1, 4, 3, 0, 2)]


def test_cli_folder_in_folder_out(serial, dataset, tmp_path, capsys):
    _, out = serial
    status = main(["segment", str(dataset), "-o", str(tmp_path / "out"), "--regions",
                   "--workers", "1", "-q"])
    assert status == EXIT_CASES_FAILED == 3
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"{BAD}: failed: ValueError: " + captured.err.split("ValueError: ", 1)[1].strip()]
    assert "4 cases: 3 done, 0 skipped" in captured.out and "1 failed" in captured.out
    _same_outputs(out, tmp_path / "out")
    again = ["segment", str(dataset), "-o", str(tmp_path / "out"), "--regions", "--workers", "1"]
    assert main(again + ["-q"]) == 3
    assert "0 done, 3 skipped" in capsys.readouterr().out
    assert main(again + ["-q", "--overwrite"]) == 3
    assert "3 done, 0 skipped" in capsys.readouterr().out
    _same_outputs(out, tmp_path / "out")
    # a glob of the good cases only: exit 0; a single case keeps the one-case command
    assert main(["segment", str(dataset / "Brats18_*_1"), "-o", str(tmp_path / "glob"),
                 "--workers", "1", "-q"]) == 3       # the glob matches the bad case too
    assert main(["segment", str(dataset / "Bra*[SA]*"), "-o", str(tmp_path / "good"),
                 "--workers", "1", "-q"]) == 0
    assert sorted(os.listdir(tmp_path / "good" / "records")) == [
        "BraTS-SSA-00003-000.json", "Brats18_A_1.json"]


def test_cli_refuses_options_of_the_other_mode(dataset, tmp_path, capsys):
    assert main(["segment", str(dataset), "-o", str(tmp_path), "--t2", "x.nii.gz"]) == 2
    assert "--t2" in capsys.readouterr().err
    case = dataset / "Brats18_A_1"
    assert main(["segment", str(case), "-o", str(tmp_path / "m.nii.gz"), "--workers", "2"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(["segment", str(dataset / "*"), "-q"]) == 2
    assert "-o" in capsys.readouterr().err
    assert main(["segment", str(dataset), "-o", str(tmp_path), "--method", "unet",
                 "--segmenter", "default"]) == 2
    assert "--segmenter" in capsys.readouterr().err
    assert main(["segment", str(dataset), "-o", str(tmp_path), "--method", "unet",
                 "--satellites", "0.5"]) == 2
    assert "--satellites" in capsys.readouterr().err


def _pool_run_interrupted(argv, marker, send):
    """Run ``pcnnseg ARGV`` in its own session paused once a worker staged an
    output; ``send(proc)`` interrupts it; return ``(status, stderr)``."""
    env = dict(os.environ, PCNNSEG_TEST_PAUSE=f"staged-1:{marker}")
    proc = subprocess.Popen([sys.executable, "-m", "pcnnseg", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + _TIMEOUT
        while not os.path.exists(marker):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no worker reached its pause"
            time.sleep(0.02)
        send(proc)
        _, err = proc.communicate(timeout=_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err


@pytest.mark.parametrize("how, signum", [
    ("ctrl-c", signal.SIGINT),       # the whole process group, as a terminal sends it
    ("kill", signal.SIGTERM),        # the command's process only
])
def test_interrupted_batch_leaves_no_partial_output_and_resumes(serial, dataset, tmp_path,
                                                                how, signum):
    _, reference = serial
    out = tmp_path / "out"
    argv = ["segment", str(dataset), "-o", str(out), "--regions", "--workers", "2", "-q"]

    def send(proc):
        if how == "ctrl-c":
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)

    status, err = _pool_run_interrupted(argv, tmp_path / "marker", send)
    assert status == 128 + signum, err
    assert "interrupted" in err and "resumes" in err and "Traceback" not in err
    left = _files(out)
    assert not any(os.path.basename(n).startswith(".pcnnseg-") for n in left), left
    finished = {n[len("records/"):-len(".json")] for n in left if n.startswith("records/")}
    assert left == sorted([f"{n}.nii.gz" for n in finished] + [f"overlays/{n}.png" for n in
                                                                finished]
                          + [f"records/{n}.json" for n in finished])
    assert subprocess.run([sys.executable, "-m", "pcnnseg", *argv], capture_output=True,
                          timeout=_TIMEOUT).returncode == EXIT_CASES_FAILED
    _same_outputs(reference, out, resumed=True)


def test_detect_many_writes_boxes_per_case(dataset, tmp_path, capsys):
    cases = [dataset / "Brats18_A_1", dataset / BAD]
    records = batch.detect_many(cases, tmp_path / "det", workers=1)
    assert [r.status for r in records] == ["done", "failed"]
    boxes = records[0].metrics["boxes"]
    assert set(boxes) == {"hit_rate", "mean_iou", "tumor_slices"}
    capsys.readouterr()
    # the command on the one case writes the same file and scores the same slices
    assert main(["detect", str(dataset / "Brats18_A_1"), "-o", str(tmp_path / "one"), "-q"]) == 0
    hits = round(boxes["hit_rate"] * boxes["tumor_slices"])
    assert (f"IoU >= 0.5 with the reference box on {hits} of {boxes['tumor_slices']} slices"
            in capsys.readouterr().out)
    one = json.loads((tmp_path / "one" / "detections.json").read_text())
    many = json.loads((tmp_path / "det" / "Brats18_A_1.json").read_text())
    assert many == one


def test_find_cases_in_folders_and_globs(tmp_path, dataset):
    images = tmp_path / "images"
    images.mkdir()
    volume, mask = phantom.make_volume(SHAPE, seed=4)
    for name in ("b", "a"):
        _write(volume, images / f"{name}.nii.gz")
    _write(mask.astype(np.uint8), images / "a_seg.nii.gz")
    (images / "notes.txt").write_text("not a case")
    found = datasets.find_cases(images)
    assert [(c.name, c.kind, c.labels and os.path.basename(c.labels)) for c in found] == [
        ("a", "image", "a_seg.nii.gz"), ("b", "image", None)]
    assert datasets.find_cases(str(images / "*.nii.gz")) == found
    assert datasets.is_dataset(images) and datasets.is_dataset(str(images / "*"))
    assert not datasets.is_dataset(images / "a.nii.gz")
    assert not datasets.is_dataset(dataset / "Brats18_A_1")
    # an output folder inside the dataset is never read as a case (a glob takes
    # other folders as DICOM series)
    (images / "out").mkdir()
    assert datasets.find_cases(str(images / "*"), exclude=images / "out") == found
    assert "out" in [c.name for c in datasets.find_cases(str(images / "*"))]
    _write(volume, images / "a.mha")
    with pytest.raises(ValueError, match="two cases are named 'a'"):
        datasets.find_cases(images)
    os.remove(images / "a.mha")
    with pytest.raises(FileNotFoundError, match="nothing matches"):
        datasets.find_cases(str(tmp_path / "none*"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no case in folder"):
        datasets.find_cases(tmp_path / "empty")
    records = batch.segment_many(found, tmp_path / "seg", workers=1)
    assert [(r.name, r.status, bool(r.metrics)) for r in records] == [
        ("a", "done", True), ("b", "done", False)]


def test_bad_arguments_are_refused(dataset, tmp_path):
    with pytest.raises(ValueError, match="workers: give either"):
        batch.segment_many(dataset, tmp_path, workers=2, scheduler="local:2")
    with pytest.raises(ValueError, match="local:N"):
        batch.segment_many(dataset, tmp_path, scheduler="local:zero")
    with pytest.raises(ValueError, match="method"):
        batch.segment_many(dataset, tmp_path, method="cnn")
    with pytest.raises(ValueError, match="workers"):
        batch.segment_many(dataset, tmp_path, workers=0)
    with pytest.raises(ValueError, match=r"^satellites: expected a value in \[0, 1\]"):
        batch.segment_many(dataset, tmp_path, satellites=1.5)
    with pytest.raises(TypeError, match="^satellites: expected a number"):
        batch.segment_many(dataset, tmp_path, satellites="all")
    with pytest.raises(ValueError, match="satellites"):
        batch.segment_many(dataset, tmp_path, method="unet", satellites=0.5)
    assert not os.listdir(tmp_path)


def test_kernels_make_idle_openmp_threads_sleep_unless_told(monkeypatch):
    from pcnnseg_kernels import runtime

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert runtime.configure_threads() == "PASSIVE" == os.environ["OMP_WAIT_POLICY"]
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert runtime.configure_threads() == "ACTIVE"
