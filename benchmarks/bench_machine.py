"""What the benchmarks say about the machine they ran on."""
import platform


def cpu_name():
    """The CPU's model name from ``/proc/cpuinfo``, else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# Two loops of about a second each, as (set-up, timed part): one the
# interpreter's (arithmetic in cache), one NumPy's over arrays far larger than
# the caches (memory traffic).
SCALING_PROBES = {
    "compute (interpreter loop)": ("", "x = 0\nfor i in range(8_000_000):\n    x += i * i % 7"),
    "memory (NumPy over 128 MB arrays)": (
        "import numpy as np\na = np.ones(32_000_000, np.float32)\nb = np.ones_like(a)",
        "for _ in range(60):\n    np.multiply(a, np.float32(0.5), out=b)\n"
        "    np.add(b, np.float32(0.5), out=a)"),
}


def _timed_runs(probe, copies):
    """Seconds of a probe's timed part in each of ``copies`` fresh interpreters
    started together (their start and the probe's set-up are not timed)."""
    import subprocess
    import sys

    setup, timed = probe
    code = (f"import time\n{setup}\nt = time.perf_counter()\n{timed}\n"
            "print(time.perf_counter() - t)")
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  text=True) for _ in range(copies)]
    return [float(p.communicate()[0]) for p in processes]


def two_at_once_speedup(alone_s, together_s):
    """Throughput of two copies side by side over one alone: ``2 x median(alone) /
    median(together)`` (2.0 when running together costs each copy nothing)."""
    import statistics

    return 2.0 * statistics.median(alone_s) / statistics.median(together_s)


def parallel_scaling(rounds=3):
    """What two processes side by side get on this machine, for each
    :data:`SCALING_PROBES` loop: ``{probe: speed-up}`` of two copies over one
    (medians of ``rounds`` runs alone and ``rounds`` pairs, taken in turn)."""
    result = {}
    for name, probe in SCALING_PROBES.items():
        alone, together = [], []
        for _ in range(rounds):
            alone += _timed_runs(probe, 1)
            together += _timed_runs(probe, 2)
        result[name] = two_at_once_speedup(alone, together)
    return result
