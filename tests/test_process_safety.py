"""The kernels in forked children, in threads, and without a writable cache folder.

Each scenario that forks or changes the cache runs in its own Python process
under a timeout, so a child that dies or hangs fails the test rather than the
suite.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest

import pcnnseg_kernels
import pcnnseg
from pcnnseg_kernels import fused, runtime
from pcnnseg import phantom

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Generous: a cold cache compiles the serial twins in the child.
_TIMEOUT = 900

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _python(code, env=None, cwd=None):
    """Run ``code`` in a fresh interpreter; return the completed process."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=_TIMEOUT, env=env, cwd=cwd)


@needs_fork
def test_fork_after_use_runs_the_kernels_in_the_child():
    done = _python("""
        import os, pickle
        import numpy as np
        import pcnnseg
        from pcnnseg import phantom

        image, _ = phantom.make_slice((64, 64), seed=2)
        batch = np.stack([image, image[::-1]])
        volume, _ = phantom.make_volume((16, 32, 32), seed=3)
        def results():
            a = pcnnseg.pulse(image, n_iter=15)
            b = pcnnseg.pulse(batch, pcnnseg.ICM(), n_iter=15)
            c = pcnnseg.pulse_volume(volume, pcnnseg.PCNN(), n_iter=8)
            return [r.fire_time.tolist() + r.counts.tolist() for r in (a, b, c)]

        parent = results()                  # the parent's threads are running now
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            with os.fdopen(write, "wb") as fh:
                pickle.dump(results(), fh)
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as fh:
            data = fh.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert pickle.loads(data) == parent
        assert results() == parent          # and the parent still runs in parallel
        print("ok")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@needs_fork
def test_fork_pool_after_use():
    done = _python("""
        import multiprocessing as mp
        import numpy as np
        import pcnnseg
        from pcnnseg import phantom

        def counts(seed):
            image, _ = phantom.make_slice((48, 48), seed=seed)
            return pcnnseg.pulse(image, n_iter=12).counts.tolist()

        if __name__ == "__main__":
            expected = [counts(s) for s in range(4)]
            with mp.get_context("fork").Pool(2) as pool:
                got = pool.map_async(counts, range(4)).get(timeout=600)
            assert got == expected
            print("ok")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_serial_twin_matches_the_parallel_kernel():
    twin = runtime._serial_twin(fused.pcnn_image)
    assert twin.py_func.__qualname__ == "pcnn_image_serial"
    assert "parallel" not in twin.targetoptions
    assert runtime._serial_twin(fused.pcnn_image) is twin
    image, _ = phantom.make_slice((40, 56), seed=4)
    S = pcnnseg.normalize(image)
    params, M, W = pcnnseg.PCNN().kernel_params()
    for bands in (1, 3):
        want = fused.pcnn_image(S, params, M, W, 12, True, bands)
        got = twin(S, params, M, W, 12, True, bands)
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)


def test_wrapped_kernels_keep_their_dispatcher_and_docs():
    assert pcnnseg_kernels.pcnn_image.parallel is fused.pcnn_image
    assert pcnnseg_kernels.pcnn_image.__doc__ == fused.pcnn_image.__doc__
    assert not runtime._serial_only      # the test process itself was not forked


def test_kernels_run_uncompiled_under_numba_disable_jit():
    # Numba's debugging mode: the kernels are plain Python functions, nothing is
    # wrapped for forking, and the pulses equal the compiled kernels'.
    image, _ = phantom.make_slice((24, 32), seed=3)
    want = pcnnseg.pulse(image, pcnnseg.PCNN(), n_iter=8)
    done = _python("""
        import json
        import pcnnseg, pcnnseg_kernels
        from pcnnseg import phantom
        assert not hasattr(pcnnseg_kernels.pcnn_image, "py_func")
        assert not hasattr(pcnnseg_kernels.pcnn_image, "parallel")
        image, _ = phantom.make_slice((24, 32), seed=3)
        r = pcnnseg.pulse(image, pcnnseg.PCNN(), n_iter=8)
        print(json.dumps([r.fire_time.tolist(), r.counts.tolist()]))
    """, env=dict(os.environ, NUMBA_DISABLE_JIT="1"), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    fire_time, counts = json.loads(done.stdout)
    np.testing.assert_array_equal(fire_time, want.fire_time)
    np.testing.assert_array_equal(counts, want.counts)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
def test_calls_from_threads_agree_with_serial_calls():
    images = [phantom.make_slice((64, 64), seed=s)[0] for s in range(6)]
    volume, _ = phantom.make_volume((16, 24, 24), seed=1)

    def run(i):
        if i % 3 == 2:
            r = pcnnseg.pulse_volume(volume, pcnnseg.PCNN(), n_iter=10)
        else:
            r = pcnnseg.pulse(images[i % len(images)], n_iter=20)
        return r.fire_time, r.counts

    expected = [run(i) for i in range(24)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, range(24)))
    for (ft, c), (ft2, c2) in zip(expected, got):
        np.testing.assert_array_equal(ft, ft2)
        np.testing.assert_array_equal(c, c2)


# --- Numba cache ------------------------------------------------------------

def _unwritable_copy(tmp_path):
    """The packages copied where Numba finds no cache folder of its own: the
    kernels' ``__pycache__`` is a file, so is the user's cache folder, and
    NUMBA_CACHE_DIR is unset. (Permissions would not do: tests may run as root.)"""
    site = tmp_path / "site"
    # the folder kernels/ is installed as the package pcnnseg_kernels
    for folder, package in (("kernels", "pcnnseg_kernels"), ("pcnnseg", "pcnnseg")):
        shutil.copytree(os.path.join(ROOT, folder), site / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (site / "pcnnseg_kernels" / "__pycache__").write_text("not a folder")
    (tmp_path / "cache-file").write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache-file"),
               HOME=str(tmp_path / "cache-file"), PYTHONDONTWRITEBYTECODE="1")
    return site, env


_IMPORT_AND_PULSE = """
    import tempfile
    {setup}
    import numpy as np
    import pcnnseg_kernels, pcnnseg
    assert pcnnseg_kernels.__file__.startswith({site!r}), pcnnseg_kernels.__file__
    result = pcnnseg.pulse(np.arange(36.0).reshape(6, 6), pcnnseg.PCNN(), n_iter=4)
    print(pcnnseg_kernels.runtime.caching_enabled, result.counts.tolist())
"""


def test_no_cache_folder_falls_back_to_a_private_temp_folder(tmp_path):
    site, env = _unwritable_copy(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env["TMPDIR"] = str(temp)
    done = _python(_IMPORT_AND_PULSE.format(setup="", site=str(site)), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    enabled, counts = done.stdout.split(" ", 1)
    assert enabled == "True"
    folder = temp / f"pcnnseg-numba-{os.getuid()}"
    assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    assert any(name.endswith(".nbi") for _, _, names in os.walk(folder) for name in names)
    expected = pcnnseg.pulse(np.arange(36.0).reshape(6, 6), pcnnseg.PCNN(), n_iter=4)
    assert counts.strip() == str(expected.counts.tolist())


def test_no_writable_folder_at_all_runs_uncached(tmp_path):
    site, env = _unwritable_copy(tmp_path)
    # a step kernel rather than pulse: uncached, every process compiles it anew
    done = _python(f"""
        import tempfile
        tempfile.tempdir = {str(tmp_path / 'cache-file')!r}
        import numpy as np
        import pcnnseg_kernels, pcnnseg
        assert pcnnseg_kernels.__file__.startswith({str(site)!r}), pcnnseg_kernels.__file__
        E = pcnnseg_kernels.threshold(np.ones((3, 3), np.float32), np.ones((3, 3), bool),
                              np.float32(0.5), np.float32(2.0))
        print(pcnnseg_kernels.runtime.caching_enabled, E.tolist())
    """, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "False"
    assert "[2.5, 2.5, 2.5]" in done.stdout


def test_a_temp_folder_of_someone_else_is_refused(tmp_path):
    folder = tmp_path / f"pcnnseg-numba-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)      # writable by others: machine code from it could be anyone's
    assert runtime._private_folder(str(tmp_path)) is None
    folder.chmod(0o700)
    assert runtime._private_folder(str(tmp_path)) == str(folder)


def test_a_temp_folder_that_cannot_be_made_is_no_folder(tmp_path, monkeypatch):
    # mkdir refused (a read-only or foreign temporary directory; root would not
    # see a permission error, hence the stand-in): no folder, not an error.
    def refuse(path, mode=0o777):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(runtime.os, "mkdir", refuse)
    assert runtime._private_folder(str(tmp_path)) is None
    assert not any(tmp_path.iterdir())


@needs_fork
def test_children_under_a_fork_safe_layer_keep_the_parallel_kernels():
    # Only GNU OpenMP kills a forked child's parallel kernel; under workqueue
    # (always available) the child keeps the parallel kernels.
    done = _python("""
        import os
        import numba
        import pcnnseg
        from pcnnseg import phantom
        from pcnnseg_kernels import runtime

        image, _ = phantom.make_slice((32, 32), seed=1)
        pcnnseg.pulse(image, n_iter=5)
        print(numba.threading_layer())
        pid = os.fork()
        if pid == 0:
            os._exit(3 if runtime._serial_only else 0)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """, env=dict(os.environ, NUMBA_THREADING_LAYER="workqueue"), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["workqueue", "0"]


def test_a_temp_folder_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    # The folder is the test user's; the process pretends to be another, of a
    # higher uid, so that ownership by a lower uid is refused too.
    uid = os.getuid() + 5000
    monkeypatch.setattr(runtime.os, "getuid", lambda: uid)
    folder = tmp_path / f"pcnnseg-numba-{uid}"
    folder.mkdir(mode=0o700)
    assert runtime._private_folder(str(tmp_path)) is None


def test_cache_is_cold_without_a_cache(monkeypatch):
    # Uncached kernels compile in every process: always cold.
    import pcnnseg_kernels
    monkeypatch.setattr(runtime, "caching_enabled", False)
    assert runtime.cache_is_cold([pcnnseg_kernels.pcnn_image]) is True
