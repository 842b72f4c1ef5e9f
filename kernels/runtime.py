"""Process-level Numba settings of the kernels: how idle kernel threads wait, where
compiled code is cached, and how parallel kernels stay usable in a forked child.

Waiting threads
    Under Numba's GNU OpenMP threading layer (``omp``, the default when Intel TBB
    is not installed) the threads of a parallel kernel spin while they wait for
    work. A fused PCNN loop opens a parallel region every few iterations, so
    while other processes kept every core busy a spinning thread held a core the
    one doing the work needed: a 256 x 256 x 50 :func:`pcnnseg.pulse` took 88 ms
    on 2 threads of a busy 2-core machine, against 2.1 ms on one thread of a
    quiet one (issue 15). :func:`configure_threads` sets ``OMP_WAIT_POLICY`` to
    ``PASSIVE`` (threads sleep when idle) before Numba starts OpenMP: the same run
    then takes about 3 ms beside the busy processes. The setting is made only
    when the environment has none, so ``OMP_WAIT_POLICY=ACTIVE`` restores
    spinning; it applies to GNU OpenMP runtimes the process loads afterwards
    (Numba's, and those of libraries imported later) and to child processes. It
    cannot change a runtime already started: a process that ran a parallel
    Numba function before importing ``pcnnseg_kernels`` keeps spinning threads.
    ``benchmarks/kernels.py --busy`` measures it.

Cache
    The kernels are compiled with ``cache=True``. Numba looks for a writable
    folder (``NUMBA_CACHE_DIR``, the package's ``__pycache__``, the user's cache
    folder) and refuses to even define a function when it finds none, which made
    the package unimportable for a read-only install run by an account without a
    writable home. :func:`configure_cache` runs before any kernel is defined:
    when Numba would find no folder it points ``numba.config.CACHE_DIR`` at a
    private folder under the temporary directory, and when there is none either,
    :func:`kernel_definitions` defines the kernels without a cache (they are
    compiled in every process instead).

Fork
    Numba's GNU OpenMP threading layer (``omp``, the default when Intel TBB is not
    installed) kills a forked child that launches a parallel kernel after its
    parent did. :func:`fork_safe` wraps each parallel kernel so that such a child
    runs a serial twin of it instead: the same Python function compiled without
    ``parallel=True`` (``prange`` becomes ``range``; the results are the same),
    cached under its own name. The parent's calls, those of threads included,
    go to the parallel kernel as before. A child forked before any parallel
    kernel ran, and children under the fork-safe ``tbb`` and ``workqueue``
    layers, keep the parallel kernels. Serial kernels suit forked workers anyway:
    a process pool already uses the cores.
"""
import contextlib
import functools
import os
import stat
import tempfile
import threading
import types

import numba
from numba.core import caching, dispatcher

#: Whether the kernels have a cache folder (set by :func:`configure_cache`).
caching_enabled = True

# True in a child forked after its parent launched GNU OpenMP threads.
_serial_only = False
_twins = {}
_twins_lock = threading.Lock()


def configure_threads():
    """Make idle OpenMP threads sleep rather than spin, unless the user chose.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` in the environment when it is unset; see the
    module docstring for why.

    Returns
    -------
    str
        The wait policy in force for OpenMP runtimes started from now on.
    """
    return os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _probe():
    """A function of this folder: the kernels' cache folder is also its own."""


def _can_cache():
    """Whether Numba finds a writable cache folder for a function of this folder."""
    try:
        caching.FunctionCache(_probe)
    except (RuntimeError, OSError):
        return False
    return True


def _private_folder(parent):
    """A folder under ``parent`` only this user can write, or None.

    The folder holds machine code that the process loads and runs, so one that
    another user created or can write is refused.
    """
    uid = getattr(os, "getuid", lambda: None)()
    if uid is None:
        return None
    path = os.path.join(parent, f"pcnnseg-numba-{uid}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != uid
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        return None
    return path


def configure_cache():
    """Make sure the kernels can be defined, with a cache folder when one exists.

    Returns
    -------
    str or None
        ``"numba"`` when Numba's own search finds a folder, the fallback folder
        under the temporary directory when it is used, or None when the kernels
        run uncached.
    """
    global caching_enabled
    caching_enabled = True
    if _can_cache():
        return "numba"
    try:
        folder = _private_folder(tempfile.gettempdir())
    except OSError:   # no usable temporary directory at all
        folder = None
    if folder is not None:
        numba.config.CACHE_DIR = folder
        if _can_cache():
            return folder
        numba.config.CACHE_DIR = ""
    caching_enabled = False
    return None


@contextlib.contextmanager
def kernel_definitions():
    """Context in which the kernel modules are imported.

    When :func:`configure_cache` found no cache folder, ``@njit(cache=True)``
    leaves the functions it defines here uncached instead of raising.
    """
    if caching_enabled:
        yield
        return
    original = dispatcher.Dispatcher.enable_caching
    dispatcher.Dispatcher.enable_caching = lambda self: None
    try:
        yield
    finally:
        dispatcher.Dispatcher.enable_caching = original


def cache_is_cold(kernels):
    """Whether any of ``kernels`` has nothing compiled in its cache yet.

    Parameters
    ----------
    kernels : iterable of Numba dispatchers or :func:`fork_safe` wrappers

    Returns
    -------
    bool or None
        True when a kernel's cache index is missing or stale (its first call
        compiles), False when every one has an entry, None when unknown (Numba's
        cache internals differ from the expected ones).
    """
    if not caching_enabled:
        return True
    try:
        for kernel in kernels:
            kernel = getattr(kernel, "parallel", kernel)
            if kernel.signatures:   # already compiled in this process
                continue
            if not kernel._cache._cache_file._load_index():
                return True
    except Exception:   # private Numba attributes: never let them break a run
        return None
    return False


def _after_fork_in_child():
    global _serial_only, _twins_lock
    _twins_lock = threading.Lock()   # another thread may have held it at the fork
    try:
        layer = numba.threading_layer()
    except ValueError:   # no parallel kernel ran before the fork
        return
    if layer == "omp":
        _serial_only = True


def _serial_twin(kernel):
    """``kernel``'s Python function compiled without ``parallel=True``.

    The twin gets its own qualified name: Numba names cache files after it, and
    its index key does not include the ``parallel`` option, so under the same
    name the twin would load the parallel machine code from the cache.
    """
    with _twins_lock:
        twin = _twins.get(kernel)
        if twin is not None:
            return twin
        py = kernel.py_func
        function = types.FunctionType(py.__code__, py.__globals__, py.__name__ + "_serial",
                                      py.__defaults__, py.__closure__)
        function.__qualname__ = py.__qualname__ + "_serial"
        function.__module__ = py.__module__
        options = {k: v for k, v in kernel.targetoptions.items()
                   if k not in ("parallel", "nopython")}
        try:
            twin = numba.njit(cache=caching_enabled, **options)(function)
        except RuntimeError:   # the cache folder went away since import
            twin = numba.njit(**options)(function)
        _twins[kernel] = twin
        return twin


def fork_safe(kernel):
    """Wrap a ``parallel=True`` kernel so that a forked child can call it.

    Parameters
    ----------
    kernel : numba dispatcher

    Returns
    -------
    callable
        Calls ``kernel``, or in a child forked after the parent ran a parallel
        kernel under GNU OpenMP, its serial twin. The dispatcher itself is the
        ``parallel`` attribute. Under ``NUMBA_DISABLE_JIT=1`` (Numba's debugging
        mode) ``kernel`` is a plain function and is returned as it is.
    """
    if not hasattr(kernel, "py_func"):   # NUMBA_DISABLE_JIT: nothing compiled, nothing to fork
        return kernel

    @functools.wraps(kernel.py_func)
    def call(*args):
        if _serial_only:
            return _serial_twin(kernel)(*args)
        return kernel(*args)

    call.parallel = kernel
    return call


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
