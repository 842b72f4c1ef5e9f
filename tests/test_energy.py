"""Energy: operation counts, estimates, and counters read from fake sources."""
import sys
import types

import numpy as np
import pytest

from pcnnseg import ICM, PCNN, SPCNN, energy, phantom, pulse
from pcnnseg.simulate import RunRecord, record_runs


# ------------------------------------------------------------------ recording runs

def test_record_runs_sees_every_call_inside_the_block_only():
    image = phantom.make_slice((40, 50), seed=1)[0]
    pulse(image, n_iter=3)  # before: not recorded
    with record_runs() as outer:
        r1 = pulse(image, n_iter=4)
        with record_runs() as inner:
            r2 = pulse(np.stack([image, image]), n_iter=6)
    pulse(image, n_iter=3)  # after: not recorded
    assert [(r.n_neurons, r.n_iter) for r in outer] == [(2000, 4), (4000, 6)]
    assert [(r.n_neurons, r.n_iter) for r in inner] == [(4000, 6)]
    assert outer[0].n_pulses == r1.counts.sum() and inner[0].n_pulses == r2.counts.sum()
    assert isinstance(outer[1].model, SPCNN)


def test_record_runs_stops_recording_after_an_exception():
    from pcnnseg import simulate

    with pytest.raises(RuntimeError):
        with record_runs():
            raise RuntimeError("boom")
    assert simulate._recorders == []


# ------------------------------------------------------------------ operation counts

def _pairs_in_image(spikes, weights):
    """Plain count of (pulse, neighbour inside the image through a non-zero tap) pairs."""
    _, H, W = spikes.shape
    padded = np.pad(spikes, ((0, 0), (1, 1), (1, 1)))
    total = 0
    for a in range(3):
        for b in range(3):
            if weights[a][b] != 0:
                # the neuron at (i, j) hears the pulse at (i + a - 1, j + b - 1)
                total += int(padded[:, a:a + H, b:b + W].sum())
    return total


# fp32 operations of one neuron update, counted by hand from the update equations
# (not read from energy.NEURON_UPDATE_OPS, so that a change there is seen):
# general   F = dF F + vF m + S   2 mul 2 add | L = dL L + vL w       2 mul 1 add
#           U = dU U + F(1 + bL)  3 mul 2 add | U > E                       1 add
#           E = dE E + vE Y       2 mul 1 add | total                9 mul 7 add
# modulated L = vL w              1 mul       | U = dU U + F(1 + bL) 3 mul 2 add
#           U > E                       1 add | E = dE E + vE Y      2 mul 1 add
#                                             | total                6 mul 4 add
UPDATE_OPS_BY_HAND = {"general": {"fp32_mul": 9, "fp32_add": 7},
                      "modulated": {"fp32_mul": 6, "fp32_add": 4}}


@pytest.mark.parametrize("model,kind,fan", [
    (SPCNN(alpha_f=0.5, beta=0.3, v_e=5.0, alpha_e=0.4), "modulated", 8),
    (PCNN(), "general", 8),  # feeding and linking share one kernel: one sum serves both
    (PCNN(feeding_weights=((0, 1, 0), (1, 0, 1), (0, 1, 0))), "general", 12),  # two kernels
    (ICM(), "general", 8),  # linking only through feeding's kernel
])
def test_pcnn_operations_count_updates_and_pulses(model, kind, fan):
    image = phantom.make_slice((30, 35), seed=2)[0]
    with record_runs() as runs:
        res = pulse(image, model, n_iter=12, return_spikes=True)
    ops = energy.pcnn_operations(runs)
    per = UPDATE_OPS_BY_HAND[kind]
    assert ops["neuron_updates"] == 30 * 35 * 12
    assert ops["neuron_ops_fp32_mul"] == 30 * 35 * 12 * per["fp32_mul"]
    assert ops["neuron_ops_fp32_add"] == 30 * 35 * 12 * per["fp32_add"]
    assert ops["pulses"] == res.spikes.sum() > 0
    assert ops["synaptic_events"] == fan * res.spikes.sum()
    assert ops["dense_synaptic_ops"] == fan * 30 * 35 * 12


def test_synaptic_events_match_a_plain_count_of_pulse_neighbour_pairs():
    model = SPCNN(alpha_f=0.5, beta=0.3, v_e=5.0, alpha_e=0.4)
    image = np.zeros((27, 27))
    image[1:-1, 1:-1] = phantom.make_slice((25, 25), seed=3)[0] + 1.0
    _, _, W = model.kernel_params()
    # Border pixels of stimulus 0 never pulse: every pulse has all its neighbours.
    with record_runs() as runs:
        res = pulse(image, model, n_iter=10, return_spikes=True)
    assert not res.spikes[:, [0, -1], :].any() and not res.spikes[:, :, [0, -1]].any()
    events = energy.pcnn_operations(runs)["synaptic_events"]
    assert events == _pairs_in_image(res.spikes, W) > 0
    # With pulses on the border the event count is an upper bound.
    with record_runs() as runs:
        res = pulse(image + 1.0, model, n_iter=10, return_spikes=True,
                    value_range=(0.0, image.max() + 1.0))
    assert energy.pcnn_operations(runs)["synaptic_events"] > _pairs_in_image(res.spikes, W)


@pytest.mark.parametrize("model,kind,fan", [
    (SPCNN(alpha_f=0.5, beta=0.3, v_e=5.0, alpha_e=0.4), "modulated", 26),
    # feeding's cross keeps its 4 in-plane taps and gains the 18 through-plane ones
    # (inverse-square weights are never 0); linking has all 26
    (PCNN(feeding_weights=((0, 1, 0), (1, 0, 1), (0, 1, 0))), "general", 4 + 18 + 26),
])
def test_volume_runs_count_their_26_neighbour_fan_out(model, kind, fan):
    from pcnnseg.simulate import pulse_volume
    volume = phantom.make_volume((16, 20, 18), seed=1)[0]
    with record_runs() as runs:
        res = pulse_volume(volume, model, n_iter=9)
    ops = energy.pcnn_operations(runs)
    n = volume.size * 9
    assert ops["neuron_updates"] == n
    assert ops["neuron_ops_fp32_mul"] == n * UPDATE_OPS_BY_HAND[kind]["fp32_mul"]
    assert ops["pulses"] == res.counts.sum() > 0
    assert ops["synaptic_events"] == fan * res.counts.sum()


def test_uncoupled_model_has_no_synaptic_operations():
    model = SPCNN(alpha_f=0.5, beta=0.0, v_e=5.0, alpha_e=0.4)
    with record_runs() as runs:
        pulse(phantom.make_slice((20, 20), seed=0)[0], model, n_iter=5)
    ops = energy.pcnn_operations(runs)
    assert ops["synaptic_events"] == 0 and ops["dense_synaptic_ops"] == 0
    assert ops["pulses"] > 0


def test_pcnn_arithmetic_event_driven_and_dense():
    ops = {"neuron_ops_fp32_mul": 60, "neuron_ops_fp32_add": 40, "synaptic_events": 16,
           "dense_synaptic_ops": 80, "neuron_updates": 10, "pulses": 2}
    assert energy.pcnn_arithmetic(ops) == {"fp32_mul": 60, "fp32_add": 56}
    assert energy.pcnn_arithmetic(ops, event_driven=False) == {"fp32_mul": 140,
                                                               "fp32_add": 120}
    with pytest.raises(TypeError, match="runs: expected RunRecord entries"):
        energy.pcnn_operations([("not", "a", "record")])


def test_cnn_arithmetic():
    assert energy.cnn_arithmetic(5) == {"fp32_mul": 5, "fp32_add": 5}
    assert energy.cnn_arithmetic(np.int64(5), precision="int8") == {"int8_mul": 5,
                                                                    "int32_add": 5}
    for bad in (-1, 2.5, True, "5"):
        with pytest.raises(ValueError, match="macs"):
            energy.cnn_arithmetic(bad)
    with pytest.raises(ValueError, match="precision"):
        energy.cnn_arithmetic(5, precision="int4")


# ------------------------------------------------------------------ estimates

def test_energy_from_operations_uses_the_table():
    e = energy.energy_from_operations({"fp32_mul": 1e9, "fp32_add": 2e9, "int8_mul": 1e9})
    assert e.joules == pytest.approx((3.7 + 2 * 0.9 + 0.2) * 1e-3)
    assert e.source == "estimate:operations" and "Horowitz" in e.detail and not e.measured
    custom = energy.energy_from_operations({"spike": 4}, table={"spike": 0.5})
    assert custom.joules == pytest.approx(2e-12) and "given table" in custom.detail
    with pytest.raises(ValueError, match="no energy"):
        energy.energy_from_operations({"fp64_mul": 1})
    with pytest.raises(ValueError, match="negative"):
        energy.energy_from_operations({"fp32_mul": -1})


def test_int8_mac_is_cheaper_than_fp32_mac_in_the_table():
    fp32 = energy.energy_from_operations(energy.cnn_arithmetic(100)).joules
    int8 = energy.energy_from_operations(energy.cnn_arithmetic(100, precision="int8")).joules
    assert fp32 / int8 == pytest.approx((3.7 + 0.9) / (0.2 + 0.1))


def test_energy_from_cpu_time():
    e = energy.energy_from_cpu_time(3.0, watts_per_core=2.5)
    assert e.joules == 7.5 and e.source == "estimate:cpu-time" and "assumed" in e.detail
    assert energy.energy_from_cpu_time(1.0).joules == energy.DEFAULT_WATTS_PER_CORE
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="cpu_seconds"):
            energy.energy_from_cpu_time(bad)
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="watts_per_core"):
            energy.energy_from_cpu_time(1.0, watts_per_core=bad)
    with pytest.raises(TypeError, match="cpu_seconds: expected a number"):
        energy.energy_from_cpu_time("1")


# ------------------------------------------------------------------ counters

def _zone(root, name, uj, max_uj=1000_000):
    d = root / name
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def test_rapl_reads_package_zones_only_and_handles_wrap(tmp_path):
    p0 = _zone(tmp_path, "intel-rapl:0", 100)
    sub = _zone(tmp_path, "intel-rapl:0:0", 50)  # a part of package 0: not added
    p1 = _zone(tmp_path, "intel-rapl:1", 999_000)
    counter = energy.RaplCounter(root=str(tmp_path))
    assert [z.split("/")[-1] for z in counter.zones] == ["intel-rapl:0", "intel-rapl:1"]
    counter.start()
    (p0 / "energy_uj").write_text("2_100".replace("_", ""))
    (sub / "energy_uj").write_text("900000")
    (p1 / "energy_uj").write_text("500")  # wrapped: 1000 + 500 uJ since start
    e = counter.stop()
    assert e.measured and e.source == "rapl"
    assert e.joules == pytest.approx((2000 + 1500) * 1e-6)
    assert "intel-rapl:0" in e.detail


def test_rapl_unavailable_cases_are_not_zero_joules(tmp_path):
    missing = energy.RaplCounter(root=str(tmp_path / "none"))
    missing.start()
    e = missing.stop()
    assert e.joules is None and "no RAPL zones" in e.detail and not e.measured

    still = tmp_path / "still"
    _zone(still, "intel-rapl:0", 100)
    counter = energy.RaplCounter(root=str(still))
    counter.start()
    e = counter.stop()
    assert e.joules is None and "did not advance" in e.detail

    locked = tmp_path / "locked"
    (locked / "intel-rapl:0" / "energy_uj").mkdir(parents=True)  # read fails
    counter = energy.RaplCounter(root=str(locked))
    counter.start()
    e = counter.stop()
    assert e.joules is None and "unreadable" in e.detail


def _fake_pynvml(readings):
    module = types.ModuleType("pynvml")
    values = iter(readings)
    module.open = 0
    module.nvmlInit = lambda: setattr(module, "open", module.open + 1)
    module.nvmlShutdown = lambda: setattr(module, "open", module.open - 1)
    module.nvmlDeviceGetCount = lambda: 1
    module.nvmlDeviceGetHandleByIndex = lambda i: f"gpu{i}"
    module.nvmlDeviceGetTotalEnergyConsumption = lambda handle: next(values)
    return module


def test_nvml_counter_with_a_fake_library(monkeypatch):
    fake = _fake_pynvml([1000, 3500])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    counter = energy.NvmlCounter()
    counter.start()
    e = counter.stop()
    assert e.measured and e.joules == pytest.approx(2.5) and e.source == "nvml"
    assert fake.open == 0  # NVML shut down after the last reading

    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([1000, 1000]))
    counter.start()
    assert counter.stop().joules is None

    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    counter.start()
    e = counter.stop()
    assert e.joules is None and "not installed" in e.detail


def test_codecarbon_glue_with_a_fake_library(monkeypatch):
    class Tracker:
        def __init__(self, **kwargs):
            assert kwargs["save_to_file"] is False
            self.final_emissions_data = None

        def start(self):
            pass

        def stop(self):
            self.final_emissions_data = types.SimpleNamespace(energy_consumed=2e-6)

    module = types.ModuleType("codecarbon")
    module.OfflineEmissionsTracker = Tracker
    module.__version__ = "9.9"
    monkeypatch.setitem(sys.modules, "codecarbon", module)
    with energy.EnergyMeter(rapl=False, codecarbon=True) as meter:
        pass
    (e,) = meter.energies
    assert e.source == "codecarbon" and e.joules == pytest.approx(7.2) and not e.measured
    assert "9.9" in e.detail


@pytest.mark.parametrize("fails_in", ["__init__", "start", "stop"])
def test_codecarbon_failure_is_unavailable_not_raised(monkeypatch, fails_in):
    class Tracker:
        def __init__(self, **kwargs):
            self.final_emissions_data = None
            if fails_in == "__init__":
                raise RuntimeError("no CPU model")

        def start(self):
            if fails_in == "start":
                raise RuntimeError("no CPU model")

        def stop(self):
            if fails_in == "stop":
                raise RuntimeError("no CPU model")

    module = types.ModuleType("codecarbon")
    module.OfflineEmissionsTracker = Tracker
    monkeypatch.setitem(sys.modules, "codecarbon", module)
    with energy.EnergyMeter(rapl=False, codecarbon=True) as meter:
        pass
    (e,) = meter.energies
    assert e.joules is None and "no CPU model" in e.detail


def test_energy_meter_times_the_block():
    with energy.EnergyMeter(rapl=True, nvml=True) as meter:
        x = 0.0
        for i in range(200_000):
            x += i
    assert meter.wall_seconds > 0 and meter.cpu_seconds > 0
    assert [e.source for e in meter.energies] == ["rapl", "nvml"]
    for e in meter.energies:  # a reading, or the reason there is none
        assert (e.joules > 0) if e.measured else (e.joules is None and e.detail)


def test_energy_meter_reads_an_advancing_rapl_tree(tmp_path, monkeypatch):
    """EnergyMeter's RAPL reading on a fake powercap tree that advances by
    250,000 uJ during the block: 0.25 J, measured."""
    zone = _zone(tmp_path, "intel-rapl:0", 1_000)
    real = energy.RaplCounter
    monkeypatch.setattr(energy, "RaplCounter", lambda: real(root=str(tmp_path)))
    with energy.EnergyMeter() as meter:
        (zone / "energy_uj").write_text("251000\n")
    (e,) = meter.energies
    assert e.measured and e.source == "rapl" and e.joules == pytest.approx(0.25)
    assert meter.measured() == [e] and meter.wall_seconds >= 0


def test_run_record_is_what_pcnn_operations_reads():
    run = RunRecord(model=SPCNN(alpha_f=1.0, beta=0.2, v_e=3.0, alpha_e=0.5), n_neurons=10,
                    n_iter=3, n_pulses=4)
    ops = energy.pcnn_operations([run, run])
    assert ops["neuron_updates"] == 60 and ops["synaptic_events"] == 64

