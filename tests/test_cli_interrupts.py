"""SIGINT and SIGTERM during the pcnnseg command: exit status 128 + signal, one line
on stderr, no temporary file, and the outputs of a run all old or all new.

The runs pause at a named point through the hidden hook of
``pcnnseg.outputs._test_pause`` (``PCNNSEG_TEST_PAUSE=point:marker``), so each
signal lands at a known moment.
"""
import os
import signal
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest

from pcnnseg import outputs
from pcnnseg.cli import main

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"),
                                reason="POSIX signals")

# A hang (a run that never reaches its pause, or ignores the signal) fails the
# test instead of stalling the suite; generous, as the first run compiles.
_TIMEOUT = 600


def _snapshot(folder):
    """{relative name: bytes} of every file under ``folder`` (hidden ones too)."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                found[os.path.relpath(path, folder)] = fh.read()
    return found


def _run_interrupted(args, point, signum, marker):
    """Run ``pcnnseg ARGS`` paused at ``point``, send ``signum`` there; return
    ``(status, stderr)``."""
    env = dict(os.environ, PCNNSEG_TEST_PAUSE=f"{point}:{marker}")
    proc = subprocess.Popen([sys.executable, "-m", "pcnnseg", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + _TIMEOUT
        while not os.path.exists(marker):
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the run ended before reaching {point!r}: {proc.returncode} "
                            f"{out} {err}")
            if time.monotonic() > deadline:
                pytest.fail(f"the run never reached {point!r}")
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def _check_one_line(err, signum):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "interrupted" in lines[0] and signal.Signals(signum).name in lines[0]
    assert "Traceback" not in err and "SystemError" not in err


def _interrupt_over_old_set(argv, folder, sets, point, signum, new, marker):
    """Run ``argv`` over ``folder`` holding the old set, interrupt it at ``point``:
    exit 128 + signum, one line, and the folder holds exactly the old set or (when
    ``new``) the new one, no temporary file either."""
    old, fresh = sets
    folder.mkdir()
    for name, data in old.items():
        (folder / name).write_bytes(data)
    status, err = _run_interrupted(argv, point, signum, marker)
    assert status == 128 + signum
    _check_one_line(err, signum)
    assert _snapshot(folder) == (fresh if new else old)
    assert ("after writing" in err) == new


@pytest.fixture(scope="module")
def segment_sets(tmp_path_factory):
    """Mask and overlay of two runs (phantom seeds 0 and 1): the old and new sets."""
    sets = []
    for seed in (0, 1):
        folder = tmp_path_factory.mktemp(f"segment{seed}")
        assert main(["segment", "-q", "--seed", str(seed),
                     "-o", str(folder / "m.nii.gz")]) == 0
        sets.append(_snapshot(folder))
    assert sets[0] != sets[1] and sorted(sets[0]) == ["m.nii.gz", "m_overlay.png"]
    return sets


@pytest.mark.parametrize("point, signum, new", [
    ("work", signal.SIGINT, False),
    ("staged-1", signal.SIGINT, False),
    ("staged-2", signal.SIGTERM, False),
    ("commit", signal.SIGINT, True),
    ("commit", signal.SIGTERM, True),
])
def test_segment_interrupted_keeps_one_set(tmp_path, segment_sets, point, signum, new):
    folder = tmp_path / "out"
    _interrupt_over_old_set(["segment", "-q", "--seed", "1", "-o", str(folder / "m.nii.gz")],
                            folder, segment_sets, point, signum, new, tmp_path / "marker")


@pytest.fixture(scope="module")
def detect_sets(tmp_path_factory):
    """detections.json and pictures of two detect runs (phantom seeds 0 and 1)."""
    sets = []
    for seed in (0, 1):
        folder = tmp_path_factory.mktemp(f"detect{seed}") / "det"
        assert main(["detect", "-q", "--seed", str(seed), "-o", str(folder)]) == 0
        sets.append(_snapshot(folder))
    assert sets[0] != sets[1] and "detections.json" in sets[0]
    return sets


@pytest.mark.parametrize("point, signum, new", [
    ("staged-1", signal.SIGTERM, False),
    ("staged-3", signal.SIGINT, False),
    ("commit", signal.SIGINT, True),
])
def test_detect_interrupted_keeps_one_set(tmp_path, detect_sets, point, signum, new):
    folder = tmp_path / "det"
    _interrupt_over_old_set(["detect", "-q", "--seed", "1", "-o", str(folder)],
                            folder, detect_sets, point, signum, new, tmp_path / "marker")


def test_detect_interrupted_leaves_no_new_folder(tmp_path):
    folder = tmp_path / "a" / "det"
    status, err = _run_interrupted(["detect", "-q", "-o", str(folder)], "staged-2",
                                   signal.SIGINT, tmp_path / "marker")
    assert status == 130
    _check_one_line(err, signal.SIGINT)
    assert sorted(os.listdir(tmp_path)) == ["marker"]


def test_signature_interrupted_writes_no_picture(tmp_path):
    png = tmp_path / "ft.png"
    status, err = _run_interrupted(["signature", "-q", "--n-iter", "5", "--fire-time",
                                    str(png)], "work", signal.SIGTERM, tmp_path / "marker")
    assert status == 143
    _check_one_line(err, signal.SIGTERM)
    assert sorted(os.listdir(tmp_path)) == ["marker"]


def test_detect_replaces_stale_pictures_of_an_earlier_run(tmp_path, detect_sets):
    folder = tmp_path / "det"
    folder.mkdir()
    (folder / "detections.json").write_text("{}")
    (folder / "slice_999.png").write_bytes(b"stale")
    (folder / "notes.txt").write_text("mine")
    assert main(["detect", "-q", "--seed", "1", "-o", str(folder)]) == 0
    after = _snapshot(folder)
    assert after.pop("notes.txt") == b"mine" and after == detect_sets[1]


@pytest.mark.parametrize("callback", ["numba.core.serialize._numba_unpickle",
                                      "ExecutionEngine._raw_object_cache_notify"])
def test_signal_inside_compiled_code_is_delivered_after_it(callback):
    """A handler that runs in a callback from compiled code (a kernel unpickling
    a constant, llvmlite caching a compiled kernel) must not raise there (the
    exception would be lost, or crash a parallel kernel): the signal comes back
    once the main thread runs ordinary code."""
    from llvmlite.binding.executionengine import ExecutionEngine
    from numba.core.serialize import _numba_unpickle

    code = {"numba.core.serialize._numba_unpickle": _numba_unpickle.__code__,
            "ExecutionEngine._raw_object_cache_notify":
                ExecutionEngine._raw_object_cache_notify.__code__}[callback]
    assert code in outputs._callback_codes()
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals go to the main thread")
    frame = types.SimpleNamespace(f_code=code, f_back=None)
    returned = False
    with pytest.raises(outputs.Interrupted):
        with outputs.interrupts_raise():
            outputs._handler(signal.SIGINT, frame)
            returned = True
            time.sleep(_TIMEOUT)
    assert returned


def test_interrupt_during_kernels_in_a_loop(tmp_path):
    """SIGINT while parallel kernels run back to back: a clean Interrupted, never a
    crash or a SystemError (each kernel call reaches Python through Numba's
    unpickling callback, where a raising handler used to break it)."""
    script = tmp_path / "loop.py"
    script.write_text(
        "import sys\n"
        "import pcnnseg\n"
        "from pcnnseg import outputs, phantom\n"
        "volume, _ = phantom.make_volume((24, 96, 96), seed=0)\n"
        "pcnnseg.pulse_volume(volume, pcnnseg.PCNN(), n_iter=2)\n"
        "with outputs.interrupts_raise():\n"
        "    try:\n"
        "        print('ready', flush=True)\n"
        "        while True:\n"
        "            pcnnseg.pulse_volume(volume, pcnnseg.PCNN(), n_iter=5)\n"
        "    except outputs.Interrupted:\n"
        "        print('interrupted', flush=True)\n"
        "        sys.exit(130)\n")
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        assert "interrupted" in out and "Error" not in err


# --- outputs checked before the work ----------------------------------------

def test_segment_overlay_that_is_a_folder_fails_before_any_work(tmp_path, capsys):
    (tmp_path / "m.nii.gz").write_bytes(b"old mask")
    (tmp_path / "pictures").mkdir()
    assert main(["segment", "-q", "-o", str(tmp_path / "m.nii.gz"),
                 "--overlay", str(tmp_path / "pictures")]) == 2
    err = capsys.readouterr().err
    assert "--overlay" in err and "folder" in err
    assert (tmp_path / "m.nii.gz").read_bytes() == b"old mask"
    assert sorted(os.listdir(tmp_path)) == ["m.nii.gz", "pictures"]


def test_detect_output_below_a_file_fails_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["detect", "-q", "-o", str(tmp_path / "file" / "det")]) == 2
    assert "-o: expected a folder" in capsys.readouterr().err


def test_output_name_too_long_is_refused_first(tmp_path, capsys):
    long_name = "m" * 300 + ".nii.gz"
    assert main(["segment", "-q", "-o", str(tmp_path / long_name)]) == 2
    assert "-o: file name longer than" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_a_failed_write_keeps_the_old_set(tmp_path, monkeypatch):
    """The overlay's writer fails after the mask was staged: both old files stay."""
    import pcnnseg.cli as cli
    (tmp_path / "m.nii.gz").write_bytes(b"old mask")
    (tmp_path / "m_overlay.png").write_bytes(b"old overlay")

    def broken(path, array):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(cli, "write_png", broken)
    assert main(["segment", "-q", "-o", str(tmp_path / "m.nii.gz")]) == 2
    assert _snapshot(tmp_path) == {"m.nii.gz": b"old mask", "m_overlay.png": b"old overlay"}


def test_output_set_discards_on_error(tmp_path):
    from pcnnseg.io import write_bytes_atomic
    target = tmp_path / "new" / "a.json"
    with pytest.raises(RuntimeError):
        with outputs.OutputSet() as files:
            files.make_folder(target.parent)
            files.stage(target, lambda p: write_bytes_atomic(p, b"{}"))
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []
    with outputs.OutputSet() as files:
        files.make_folder(target.parent)
        files.stage(target, lambda p: write_bytes_atomic(p, b"{}"))
        files.commit()
    assert _snapshot(tmp_path) == {os.path.join("new", "a.json"): b"{}"}



def test_output_set_commit_syncs_each_target_folder(tmp_path, monkeypatch):
    """After the renames, every folder that received an output is fsynced once,
    so the new set survives a crash."""
    from pcnnseg.io import write_bytes_atomic
    synced = []
    monkeypatch.setattr(outputs, "sync_folder", synced.append)
    (tmp_path / "b").mkdir()
    with outputs.OutputSet() as files:
        for name in ("a1.json", "a2.json", os.path.join("b", "c.json")):
            files.stage(tmp_path / name, lambda p: write_bytes_atomic(p, b"{}"))
        files.commit()
    assert sorted(synced) == sorted([str(tmp_path), str(tmp_path / "b")])

# --- messages ---------------------------------------------------------------

def test_huge_n_iter_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["signature", "--n-iter", "9223372036854775808"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--n-iter" in err and "expected an integer from 1 to" in err
    assert "Traceback" not in err


def test_constant_slice_names_the_slice_option(tmp_path, capsys):
    import SimpleITK as sitk
    volume = np.zeros((3, 8, 8), dtype=np.float32)
    volume[0] = np.arange(64).reshape(8, 8)
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "v.nii.gz"))
    assert main(["signature", str(tmp_path / "v.nii.gz"), "--slice", "2"]) == 2
    err = capsys.readouterr().err
    assert "--slice" in err and "constant" in err and "value_range" not in err


@pytest.mark.parametrize("cold, quiet, said", [(True, False, True), (True, True, False),
                                                (False, False, False)])
def test_first_run_says_it_compiles(monkeypatch, capsys, cold, quiet, said):
    import pcnnseg_kernels
    monkeypatch.setattr(pcnnseg_kernels.runtime, "cache_is_cold", lambda kernels: cold)
    assert main(["signature", "--n-iter", "2", "--json"] + (["-q"] if quiet else [])) == 0
    err = capsys.readouterr().err
    assert ("compiling kernels (first run only" in err) == said
    assert len(err.strip().splitlines()) == int(said)


def test_cold_cache_is_detected(tmp_path, monkeypatch):
    """A kernel defined in a fresh module has an empty cache until it compiles."""
    import importlib

    from numba import njit

    import pcnnseg_kernels
    (tmp_path / "fresh_kernel.py").write_text(
        "from numba import njit\n\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("fresh_kernel")
    assert pcnnseg_kernels.runtime.cache_is_cold([module.twice]) is True
    assert module.twice(3) == 6
    assert pcnnseg_kernels.runtime.cache_is_cold([module.twice]) is False
    # a new process would see the index the call saved
    assert pcnnseg_kernels.runtime.cache_is_cold([njit(cache=True)(module.twice.py_func)]) is False
    monkeypatch.delitem(sys.modules, "fresh_kernel")


def test_outputs_examples_run():
    import doctest
    assert doctest.testmod(outputs).failed == 0


def test_constant_2d_image_gives_no_slice_advice(tmp_path, capsys):
    from pcnnseg.io import write_png
    write_png(tmp_path / "flat.png", np.full((8, 8), 7, dtype=np.uint8))
    assert main(["signature", str(tmp_path / "flat.png")]) == 2
    err = capsys.readouterr().err
    assert "constant" in err and "--slice" not in err and "value_range" not in err
