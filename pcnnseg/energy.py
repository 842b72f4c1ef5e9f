"""Energy of a computation: hardware counters where they exist, labelled estimates elsewhere.

Every figure is an :class:`Energy` that names where it came from:

- **measured** by a hardware counter: Linux powercap RAPL (the package zones
  under ``/sys/class/powercap``, :class:`RaplCounter`) or NVIDIA NVML's total
  energy of a GPU (:class:`NvmlCounter`, needs ``nvidia-ml-py``). A counter
  that cannot be read, or that did not advance, gives an unavailable figure
  (``joules is None``) with the reason, never zero joules;
- optionally **codecarbon** (``pip install pcnnseg[energy]``), whose figure is
  its own mix of counters and models;
- **estimated** from a stated model where no counter exists:
  (a) operation counts x energy per operation (:func:`energy_from_operations`,
  table :data:`HOROWITZ_45NM_PJ`); (b) CPU seconds x watts per busy core
  (:func:`energy_from_cpu_time`).

Operation counts (:func:`pcnn_operations`, :func:`pcnn_arithmetic`,
:func:`cnn_arithmetic`): synaptic operations and neuron updates for the PCNN,
multiply-accumulates for a CNN (counted by ``cnn_baseline.count_macs``).

References
----------
M. Horowitz, "Computing's energy problem (and what we can do about it)", IEEE
ISSCC 2014, pp. 10-14, doi:10.1109/ISSCC.2014.6757323.
"""
import glob
import math
import os
import re
import time
from dataclasses import dataclass, field

import numpy as np

from pcnnseg_kernels import layout
from pcnnseg_kernels.fused import update_flags
from pcnnseg.simulate import RunRecord
from pcnnseg.validation import check_number

__all__ = ["HOROWITZ_45NM_PJ", "DEFAULT_WATTS_PER_CORE", "NEURON_UPDATE_OPS", "Energy",
           "pcnn_operations", "pcnn_arithmetic", "cnn_arithmetic", "energy_from_operations",
           "energy_from_cpu_time", "RaplCounter", "NvmlCounter", "EnergyMeter"]

#: Energy per arithmetic operation in picojoules, 45 nm CMOS at 0.9 V (Horowitz,
#: ISSCC 2014, table of his Figure 1.1.9). Memory accesses, which the same table
#: puts far higher (8 KB SRAM read of 64 bits: 10 pJ; DRAM: 1.3-2.6 nJ), are not
#: part of the estimate, so it is a lower bound on the arithmetic's energy.
HOROWITZ_45NM_PJ = {
    "int8_add": 0.03,
    "int8_mul": 0.2,
    "int32_add": 0.1,
    "int32_mul": 3.1,
    "fp16_add": 0.4,
    "fp16_mul": 1.1,
    "fp32_add": 0.9,
    "fp32_mul": 3.7,
}

#: Watts drawn per busy core in the CPU-time estimate: an assumed round figure
#: (a 150 W server CPU of 16 cores draws about 9 W per core at full load), not a
#: measurement; pass the figure of your CPU.
DEFAULT_WATTS_PER_CORE = 10.0

#: fp32 operations of one neuron update (per pixel and iteration) as the fused
#: kernel (:mod:`pcnnseg_kernels.fused`) evaluates it. ``"general"`` (PCNN, ICM):
#: ``F = (dF F + vF m) + S`` (2 mul, 2 add), ``L = dL L + vL w`` (2 mul, 1 add),
#: ``U = dU U + F (1 + beta L)`` (3 mul, 2 add), ``U > E`` (a comparison, counted
#: as an add), ``E = dE E + vE Y`` (2 mul, 1 add). ``"modulated"`` (SPCNN, SCM:
#: ``F = S``, no linking memory): ``L = vL w`` (1 mul), ``U`` (3 mul, 2 add), the
#: comparison and ``E`` (2 mul, 1 add). Synaptic sums are counted apart.
NEURON_UPDATE_OPS = {"general": {"fp32_mul": 9, "fp32_add": 7},
                     "modulated": {"fp32_mul": 6, "fp32_add": 4}}


@dataclass(frozen=True)
class Energy:
    """One energy figure and where it came from.

    Attributes
    ----------
    joules : float or None
        None when the source was unavailable.
    source : str
        ``"rapl"``, ``"nvml"``, ``"codecarbon"``, ``"estimate:operations"`` or
        ``"estimate:cpu-time"``.
    detail : str
        The counter read, the model and its constants, or why it is unavailable.
    """

    joules: object
    source: str
    detail: str

    @property
    def measured(self):
        """True for a reading of a hardware counter (RAPL or NVML)."""
        return self.joules is not None and self.source in ("rapl", "nvml")

    def to_dict(self):
        return {"joules": self.joules, "source": self.source, "detail": self.detail}


# ------------------------------------------------------------------ operation counts

def _update_kind_and_fan_out(params, M, W):
    """The neuron update the fused kernel runs, and the synapses each pulse drives.

    The fan-out counts the non-zero feeding taps (when feeding is coupled) and the
    non-zero linking taps (when linking is), once when both use the same kernel:
    one weighted sum of the neighbours' pulses then serves both channels, as in
    :func:`pcnnseg_kernels.fused.update_flags`, the kernel's own test. Volume runs
    (3x3x3 weights, :func:`pcnnseg_kernels.volume.pcnn_volume`) make the same two tests.
    """
    if M.ndim == 3:
        modulated = bool(params[layout.DECAY_F] == 0 and params[layout.V_F] == 0
                         and params[layout.DECAY_L] == 0)
        same_kernel = bool(np.array_equal(M, W))
    else:
        modulated, same_kernel = (bool(f) for f in update_flags(params, M, W)[:2])
    feeding = params[layout.V_F] != 0
    linking = params[layout.V_L] != 0 and params[layout.BETA] != 0
    fan = int(np.count_nonzero(M)) if feeding else 0
    if linking and not (feeding and same_kernel):
        fan += int(np.count_nonzero(W))
    return ("modulated" if modulated else "general"), fan


def pcnn_operations(runs):
    """Neuron updates and synaptic operations of recorded PCNN runs.

    Parameters
    ----------
    runs : iterable of pcnnseg.simulate.RunRecord
        From :func:`pcnnseg.simulate.record_runs`.

    Returns
    -------
    dict
        ``neuron_updates``: neurons x iterations; ``neuron_ops_fp32_mul`` and
        ``neuron_ops_fp32_add``: their arithmetic (:data:`NEURON_UPDATE_OPS`);
        ``pulses``; ``synaptic_events``:
        pulses x fan-out, each pulse feeding its neighbours through every non-zero
        tap of the coupled kernels, once when feeding and linking share their
        kernel (event-driven count; at the image border a pulse has fewer
        neighbours, so this is an upper bound);
        ``dense_synaptic_ops``: neuron updates x fan-out, a dense model in which
        every synapse is evaluated at every iteration (this package's CPU kernel
        is dense, though its symmetric-weight sums use fewer multiplies).

    Raises
    ------
    TypeError
        If an entry is not a RunRecord.
    """
    totals = dict.fromkeys(("neuron_updates", "neuron_ops_fp32_mul", "neuron_ops_fp32_add",
                            "pulses", "synaptic_events", "dense_synaptic_ops"), 0)
    for run in runs:
        if not isinstance(run, RunRecord):
            raise TypeError(f"runs: expected RunRecord entries, got {type(run).__name__}")
        params, M, W = run.model.kernel_params()
        if run.weights is not None:
            M, W = run.weights
        kind, fan = _update_kind_and_fan_out(params, M, W)
        updates = run.n_neurons * run.n_iter
        per_update = NEURON_UPDATE_OPS[kind]
        totals["neuron_updates"] += updates
        totals["neuron_ops_fp32_mul"] += updates * per_update["fp32_mul"]
        totals["neuron_ops_fp32_add"] += updates * per_update["fp32_add"]
        totals["pulses"] += run.n_pulses
        totals["synaptic_events"] += run.n_pulses * fan
        totals["dense_synaptic_ops"] += updates * fan
    return totals


def pcnn_arithmetic(operations, *, event_driven=True):
    """fp32 arithmetic of PCNN runs, by operation type.

    Parameters
    ----------
    operations : dict
        From :func:`pcnn_operations`.
    event_driven : bool, optional
        True (default): each synaptic event is one fp32 add (the weight added to
        the target's sum), as on event-driven hardware. False: every synapse is
        evaluated every iteration, one fp32 multiply and one add each (a dense
        model; this package's CPU kernel is dense).

    Returns
    -------
    dict
        ``{"fp32_mul": n, "fp32_add": n}``.
    """
    mul = operations["neuron_ops_fp32_mul"]
    add = operations["neuron_ops_fp32_add"]
    if event_driven:
        add += operations["synaptic_events"]
    else:
        mul += operations["dense_synaptic_ops"]
        add += operations["dense_synaptic_ops"]
    return {"fp32_mul": int(mul), "fp32_add": int(add)}


def cnn_arithmetic(macs, *, precision="fp32"):
    """Arithmetic of ``macs`` multiply-accumulates, by operation type.

    Parameters
    ----------
    macs : int
        Multiply-accumulates (``cnn_baseline.count_macs``).
    precision : {"fp32", "int8"}, optional
        fp32: one fp32 multiply and add per MAC. int8: one 8-bit multiply and a
        32-bit accumulate, as quantized convolutions do.

    Returns
    -------
    dict
    """
    if isinstance(macs, bool) or not isinstance(macs, (int, np.integer)) or macs < 0:
        raise ValueError(f"macs: expected a non-negative integer, got {macs!r}")
    if precision == "fp32":
        return {"fp32_mul": int(macs), "fp32_add": int(macs)}
    if precision == "int8":
        return {"int8_mul": int(macs), "int32_add": int(macs)}
    raise ValueError(f"precision: expected 'fp32' or 'int8', got {precision!r}")


# ------------------------------------------------------------------ estimates

def energy_from_operations(operations, *, table=None):
    """Estimate: operation counts x energy per operation.

    Parameters
    ----------
    operations : dict
        Operation type -> count, types among the keys of ``table``.
    table : dict, optional
        Picojoules per operation. Default :data:`HOROWITZ_45NM_PJ`.

    Returns
    -------
    Energy
        Source ``"estimate:operations"``; arithmetic only, no memory traffic.

    Raises
    ------
    ValueError
        For an operation type missing from the table or a negative count.

    Examples
    --------
    >>> round(energy_from_operations({"fp32_mul": 10**12}).joules, 9)
    3.7
    """
    table = HOROWITZ_45NM_PJ if table is None else table
    pj = 0.0
    for op, count in operations.items():
        if op not in table:
            raise ValueError(f"operations: no energy for {op!r} in the table "
                             f"(known: {sorted(table)})")
        if count < 0:
            raise ValueError(f"operations: negative count for {op!r}: {count}")
        pj += count * table[op]
    name = ("Horowitz ISSCC 2014, 45 nm" if table is HOROWITZ_45NM_PJ else "given table")
    ops = ", ".join(f"{k} {v:.3g} pJ" for k, v in sorted(table.items()) if k in operations)
    return Energy(joules=pj * 1e-12, source="estimate:operations",
                  detail=f"operation counts x energy per operation ({name}: {ops}); "
                         f"arithmetic only, memory accesses not counted")


def energy_from_cpu_time(cpu_seconds, *, watts_per_core=DEFAULT_WATTS_PER_CORE):
    """Estimate: CPU seconds x watts per busy core.

    Parameters
    ----------
    cpu_seconds : float
        Processor time of the work (user + system, all threads), for instance
        from :class:`EnergyMeter`.
    watts_per_core : float, optional
        Assumed power of one busy core. Default :data:`DEFAULT_WATTS_PER_CORE`.

    Returns
    -------
    Energy
        Source ``"estimate:cpu-time"``.

    Examples
    --------
    >>> energy_from_cpu_time(2.0, watts_per_core=5.0).joules
    10.0
    """
    cpu_seconds = check_number(cpu_seconds, "cpu_seconds")
    watts_per_core = check_number(watts_per_core, "watts_per_core")
    if not (math.isfinite(cpu_seconds) and cpu_seconds >= 0):
        raise ValueError(f"cpu_seconds: expected a finite value >= 0, got {cpu_seconds}")
    if not (math.isfinite(watts_per_core) and watts_per_core > 0):
        raise ValueError(f"watts_per_core: expected a finite value > 0, got {watts_per_core}")
    return Energy(joules=float(cpu_seconds * watts_per_core), source="estimate:cpu-time",
                  detail=f"CPU seconds x {watts_per_core:g} W per busy core (assumed, "
                         f"not measured)")


# ------------------------------------------------------------------ counters

def _read_int(path):
    with open(path) as fh:
        return int(fh.read().strip())


class RaplCounter:
    """Energy of the CPU packages from Linux powercap RAPL.

    Reads ``energy_uj`` of the top-level zones (``/sys/class/powercap/*-rapl:N``,
    one per package; their sub-zones are parts of the package and would count
    twice), handling the wrap at ``max_energy_range_uj``. Since Linux 5.10 these
    files are readable by root only, in which case the counter is unavailable.

    Parameters
    ----------
    root : str, optional
        Folder of the powercap zones. Default ``/sys/class/powercap``.
    """

    source = "rapl"

    def __init__(self, root="/sys/class/powercap"):
        self.zones = sorted(z for z in glob.glob(os.path.join(root, "*rapl:*"))
                            if re.fullmatch(r"[a-z-]*rapl:\d+", os.path.basename(z)))
        self._start = None
        self.reason = None

    def _read(self):
        return [_read_int(os.path.join(z, "energy_uj")) for z in self.zones]

    def start(self):
        """Take the first reading; an unreadable counter is remembered, not raised."""
        self._start, self.reason = None, None
        if not self.zones:
            self.reason = "no RAPL zones under /sys/class/powercap"
            return
        try:
            self._start = self._read()
        except (OSError, ValueError) as err:
            self.reason = f"RAPL unreadable: {err}"

    def stop(self):
        """Energy since :meth:`start`, as an :class:`Energy`."""
        if self._start is None:
            return Energy(None, self.source, self.reason or "not started")
        try:
            end = self._read()
            total = 0
            for zone, a, b in zip(self.zones, self._start, end):
                delta = b - a
                if delta < 0:  # the counter wrapped
                    delta += _read_int(os.path.join(zone, "max_energy_range_uj"))
                total += delta
        except (OSError, ValueError) as err:
            return Energy(None, self.source, f"RAPL unreadable: {err}")
        names = ", ".join(os.path.basename(z) for z in self.zones)
        if total <= 0:
            return Energy(None, self.source, f"RAPL counters ({names}) did not advance")
        return Energy(total * 1e-6, self.source, f"RAPL package energy_uj ({names})")


class NvmlCounter:
    """Energy of the NVIDIA GPUs from NVML's total energy counter (Volta and later).

    Needs ``nvidia-ml-py`` (``pip install pcnnseg[energy]``) and a driver; without
    them the counter is unavailable.
    """

    source = "nvml"

    def __init__(self):
        self._nvml = None
        self._handles = []
        self._start = None
        self.reason = None

    def start(self):
        """Take the first reading; an unavailable counter is remembered, not raised."""
        self._start, self.reason = None, None
        try:
            import pynvml

            pynvml.nvmlInit()
            n = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
            if not self._handles:
                self.reason = "NVML: no GPU"
                pynvml.nvmlShutdown()
                return
            self._nvml = pynvml
            self._start = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
                           for h in self._handles]
        except ImportError:
            self.reason = "NVML: nvidia-ml-py not installed (pip install pcnnseg[energy])"
        except Exception as err:  # pynvml raises NVMLError subclasses of Exception
            self.reason = f"NVML unavailable: {err}"

    def stop(self):
        """Energy since :meth:`start` (all GPUs), as an :class:`Energy`."""
        if self._start is None:
            return Energy(None, self.source, self.reason or "not started")
        try:
            end = [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
        except Exception as err:
            return Energy(None, self.source, f"NVML unreadable: {err}")
        finally:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # the reading is what matters
                pass
        millijoules = sum(b - a for a, b in zip(self._start, end))
        if millijoules <= 0:
            return Energy(None, self.source, "NVML energy counter did not advance")
        return Energy(millijoules * 1e-3, self.source,
                      f"NVML nvmlDeviceGetTotalEnergyConsumption, {len(self._handles)} GPU(s)")


class _CodecarbonCounter:
    """codecarbon's OfflineEmissionsTracker around the block (its own energy model)."""

    source = "codecarbon"

    def __init__(self, country_iso_code="FRA"):
        self.country = country_iso_code
        self._tracker = None
        self.reason = None

    def start(self):
        self._tracker, self.reason = None, None
        try:
            import codecarbon
        except ImportError:
            self.reason = "codecarbon not installed (pip install pcnnseg[energy])"
            return
        self._version = getattr(codecarbon, "__version__", "?")
        try:
            self._tracker = codecarbon.OfflineEmissionsTracker(
                country_iso_code=self.country, save_to_file=False, log_level="error")
            self._tracker.start()
        except Exception as err:  # whatever the library raises: the figure is unavailable
            self._tracker, self.reason = None, f"codecarbon failed to start: {err}"

    def stop(self):
        if self._tracker is None:
            return Energy(None, self.source, self.reason or "not started")
        try:
            self._tracker.stop()
        except Exception as err:
            return Energy(None, self.source, f"codecarbon failed to stop: {err}")
        data = getattr(self._tracker, "final_emissions_data", None)
        kwh = getattr(data, "energy_consumed", None)
        if not kwh or kwh <= 0:
            return Energy(None, self.source, "codecarbon reported no energy")
        return Energy(float(kwh) * 3.6e6, self.source,
                      f"codecarbon {self._version} offline tracker (its own mix of RAPL, "
                      f"NVML and CPU-power models)")


@dataclass
class EnergyMeter:
    """Measure the wall time, CPU time and counter energy of a ``with`` block.

    Parameters
    ----------
    rapl : bool
        Read RAPL. Default True.
    nvml : bool
        Read NVML. Default False (importing it costs time on machines without a GPU).
    codecarbon : bool
        Also run codecarbon's offline tracker. Default False.

    Attributes
    ----------
    wall_seconds, cpu_seconds : float
        After the block: elapsed time, and processor time of this process (all
        threads).
    energies : list of Energy
        After the block: one per counter asked for, available or not.

    Examples
    --------
    >>> with EnergyMeter() as meter:
    ...     _ = sum(range(1000))
    >>> meter.cpu_seconds >= 0, [e.source for e in meter.energies]
    (True, ['rapl'])
    """

    rapl: bool = True
    nvml: bool = False
    codecarbon: bool = False
    wall_seconds: float = field(default=float("nan"), init=False)
    cpu_seconds: float = field(default=float("nan"), init=False)
    energies: list = field(default_factory=list, init=False)

    def __enter__(self):
        self._counters = ([RaplCounter()] if self.rapl else []) + (
            [NvmlCounter()] if self.nvml else []) + (
            [_CodecarbonCounter()] if self.codecarbon else [])
        for counter in self._counters:
            counter.start()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall_seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu
        self.energies = [counter.stop() for counter in self._counters]
        return False

    def measured(self):
        """The available counter readings (RAPL / NVML), possibly empty."""
        return [e for e in self.energies if e.measured]
