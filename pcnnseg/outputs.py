"""The files of one command-line run: checked before the work, written beside their
targets, moved into place together; and interrupts that leave nothing behind.

A run's outputs (a mask and its overlay, or a folder of pictures and their
``detections.json``) belong together: a new mask beside an old overlay
describes no run. :class:`OutputSet` writes every output to a temporary file in
its target's folder, then renames them all in one short step during which
SIGINT and SIGTERM are held back, so an interrupt leaves either the old set or
the new one. A failure or an interrupt before that step deletes the temporary
files.

:func:`interrupts_raise` turns SIGINT and SIGTERM into :class:`Interrupted`, so
that the cleanup of ``finally`` blocks runs for SIGTERM as well (Python's own
default for it ends the process on the spot).
"""
import contextlib
import os
import re
import secrets
import signal
import sys
import threading
import time

from pcnnseg.io import sync_folder


def _callback_codes():
    """Code objects of the Python functions that compiled code calls back into:
    Numba's unpickling of constants, and llvmlite's object cache (called while a
    kernel compiles and is cached). Those of another Numba / llvmlite are unknown.

    Only modules loaded already are looked at: no compiled code runs before
    Numba is loaded, and a process that never runs a kernel (a batch's parent)
    never pays for loading it.
    """
    codes = []
    serialize = sys.modules.get("numba.core.serialize")
    if hasattr(serialize, "_numba_unpickle"):
        codes.append(serialize._numba_unpickle.__code__)
    engine = getattr(sys.modules.get("llvmlite.binding.executionengine"), "ExecutionEngine",
                     None)
    for name in ("_raw_object_cache_notify", "_raw_object_cache_getbuffer"):
        if hasattr(engine, name):
            codes.append(getattr(engine, name).__code__)
    return frozenset(codes)

__all__ = ["Interrupted", "interrupts_raise", "held_signals", "check_output_file",
           "check_output_folder", "OutputSet"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                 if hasattr(signal, name))
_TEMP_PREFIX = ".pcnnseg-"
_EXTENSION = re.compile(r"(\.nii\.gz|\.[A-Za-z0-9]+)$")

# The first signal received while the handlers are installed, how deep the
# current held_signals() nesting is, and whether Interrupted was raised already.
_received = None
_holding = 0
_raised = False


class Interrupted(BaseException):
    """A run stopped by a signal (SIGINT or SIGTERM).

    A :class:`BaseException`, like :class:`KeyboardInterrupt`, so that
    ``except Exception`` clauses let it through.

    Attributes
    ----------
    signum : int
        The signal's number; the command exits with ``128 + signum``.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _inside_compiled_code(frame, depth=8):
    """Whether ``frame`` runs in a callback from compiled code (:func:`_callback_codes`).

    A kernel call reaches Python a few times (Numba unpickles constants through
    ``numba.core.serialize._numba_unpickle``), and so does compiling one
    (llvmlite's object cache, a ctypes callback); a signal handler may run
    there. An exception raised at that point is lost (printed as "Exception
    ignored"), or comes out as a ``SystemError``, or crashes the process inside
    a parallel kernel.
    """
    codes = _callback_codes()
    for _ in range(depth):
        if frame is None:
            return False
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def _deliver_later(signum):
    """Send ``signum`` to the main thread again shortly, from a helper thread."""
    timer = threading.Timer(0.02, signal.pthread_kill,
                            (threading.main_thread().ident, signum))
    timer.daemon = True
    timer.start()


def _handler(signum, frame):
    global _received, _raised
    if _received is None:
        _received = signum
    # Raised once: a second Ctrl-C must not cut short the cleanup of the first.
    if _holding or _raised:
        return
    if _inside_compiled_code(frame) and hasattr(signal, "pthread_kill"):
        _deliver_later(signum)
        return
    _raised = True
    raise Interrupted(signum)


@contextlib.contextmanager
def interrupts_raise():
    """Context in which SIGINT and SIGTERM raise :class:`Interrupted`.

    The previous handlers come back on exit. Outside the main thread, where
    Python cannot install handlers, this does nothing.
    """
    global _received, _raised
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received, _raised = None, False
    previous = {s: signal.signal(s, _handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _received, _raised = None, False


@contextlib.contextmanager
def held_signals():
    """Context that SIGINT and SIGTERM cannot interrupt; one received inside
    raises :class:`Interrupted` (under :func:`interrupts_raise`) on leaving it.

    The signals are blocked for this thread, and the Python handler also defers
    them, because the kernel may deliver a process-directed signal to another
    thread (a Numba worker) whose mask is open, and Python would then run the
    handler in this thread all the same.
    """
    global _holding, _raised
    mask = hasattr(signal, "pthread_sigmask") and _SIGNALS
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS) if mask else None
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
        if mask:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if not _holding and _received is not None and not _raised:
            _raised = True
            raise Interrupted(_received)


def _signal_waiting():
    if _received is not None:
        return True
    return hasattr(signal, "sigpending") and bool(signal.sigpending() & set(_SIGNALS))


def _test_pause(point):
    """Hidden test hook: stop at ``point`` until a signal comes.

    With ``PCNNSEG_TEST_PAUSE=point:path`` in the environment, the run creates
    ``path`` on reaching ``point`` and waits (at most a minute) for SIGINT or
    SIGTERM, so that a test can interrupt it at a known moment. Points:
    ``work`` (outputs checked, nothing computed), ``staged-N`` (N outputs
    written to temporary files) and ``commit`` (inside the renames, after the
    first).
    """
    spec = os.environ.get("PCNNSEG_TEST_PAUSE")
    if not spec:
        return
    name, _, marker = spec.partition(":")
    if name != point:
        return
    with open(marker, "w"):
        pass
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline and not _signal_waiting():
        time.sleep(0.01)


def _name_max(folder):
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _probe_writable(folder, what):
    """Create and remove a file in ``folder``; raise PermissionError naming ``what``."""
    probe = os.path.join(folder, f"{_TEMP_PREFIX}{secrets.token_hex(4)}.tmp")
    with held_signals():   # never leave the probe behind
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as err:
            raise PermissionError(f"{what}: cannot write in folder {folder!r} "
                                  f"({err.strerror})") from None
        os.remove(probe)


def check_output_file(path, what):
    """Check before any work that ``path`` can be written as a file.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        The option or argument that named it, for messages (``"-o"``).

    Raises
    ------
    IsADirectoryError
        If ``path`` is a folder.
    FileNotFoundError
        If its folder does not exist.
    PermissionError
        If its folder cannot be written.
    ValueError
        If its name is longer than the file system allows.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what}: expected a file name, got the folder {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what}: folder does not exist: {folder!r}")
    limit = _name_max(folder)
    if len(os.fsencode(os.path.basename(path))) > limit:
        raise ValueError(f"{what}: file name longer than the {limit} bytes the folder "
                         f"allows: {os.path.basename(path)!r}")
    _probe_writable(folder, what)


def check_output_folder(path, what):
    """Check before any work that ``path`` is a writable folder or can become one.

    Raises
    ------
    NotADirectoryError
        If ``path`` or a folder above it is a file.
    PermissionError
        If the folder, or the nearest existing one above it, cannot be written.
    """
    path = os.path.abspath(os.fspath(path))
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f"{what}: expected a folder, but {existing!r} is a file")
    _probe_writable(existing, what)


class OutputSet:
    """Outputs of one run, all replaced together or not at all.

    Use as a context manager: :meth:`stage` each output, then :meth:`commit`.
    Leaving the context without committing (an error, an interrupt) deletes the
    temporary files and the folders the set created, and the targets keep their
    old contents.

    Examples
    --------
    >>> import tempfile
    >>> from pcnnseg.io import write_bytes_atomic
    >>> folder = tempfile.mkdtemp()
    >>> with OutputSet() as outputs:
    ...     outputs.stage(os.path.join(folder, "a.txt"), lambda p: write_bytes_atomic(p, b"a"))
    ...     outputs.stage(os.path.join(folder, "b.txt"), lambda p: write_bytes_atomic(p, b"b"))
    ...     outputs.commit()
    >>> sorted(os.listdir(folder))
    ['a.txt', 'b.txt']
    """

    def __init__(self):
        self._staged = []     # (temporary file, target)
        self._stale = []      # files the new set replaces by removal
        self._created = []    # folders made for the set, deepest last

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.discard()
        return False

    def make_folder(self, path):
        """Create folder ``path`` (and those above it) for outputs of this set."""
        missing = []
        path = os.path.abspath(os.fspath(path))
        while not os.path.exists(path):
            missing.append(path)
            path = os.path.dirname(path)
        for folder in reversed(missing):
            with held_signals():   # made and recorded, or neither
                os.mkdir(folder)
                self._created.append(folder)

    def _reserve(self, target):
        folder, name = os.path.split(os.path.abspath(target))
        match = _EXTENSION.search(name)
        suffix = match.group(1) if match else ""
        while True:
            temp = os.path.join(folder, f"{_TEMP_PREFIX}{secrets.token_hex(4)}{suffix}")
            with held_signals():   # created and recorded, or neither
                try:
                    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                except FileExistsError:
                    continue
                self._staged.append((temp, os.fspath(target)))
            return temp

    def stage(self, target, write):
        """Write one output to a temporary file beside ``target``.

        Parameters
        ----------
        target : str or os.PathLike
        write : callable
            ``write(path)`` writes the output to ``path``, a name in the target's
            folder with the target's extension (which picks the format).
        """
        write(self._reserve(target))
        _test_pause(f"staged-{len(self._staged)}")

    def remove_on_commit(self, paths):
        """Files that the committed set replaces by their absence (stale outputs
        of an earlier run that this one does not produce)."""
        self._stale.extend(os.fspath(p) for p in paths)

    def commit(self):
        """Move every staged output onto its target, with signals held back.

        A signal received meanwhile raises :class:`Interrupted` once every
        output is in place; its ``after_commit`` attribute is then True.
        """
        try:
            with held_signals():
                for i, (temp, target) in enumerate(self._staged):
                    os.replace(temp, target)
                    if i == 0:
                        _test_pause("commit")
                for folder in {os.path.dirname(os.path.abspath(t)) for _, t in self._staged}:
                    sync_folder(folder)
                for path in self._stale:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path)
                self._staged, self._stale, self._created = [], [], []
        except Interrupted as err:
            err.after_commit = not self._staged
            raise

    def discard(self):
        """Delete the staged files and the folders made for them (when empty)."""
        with held_signals():
            for temp, _ in self._staged:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(temp)
            for folder in reversed(self._created):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
            self._staged, self._stale, self._created = [], [], []
