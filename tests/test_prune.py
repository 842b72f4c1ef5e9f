"""Pruning of the compressed U-Net, compressed weights files, and the bundled variants."""
import lzma

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cnn_baseline import bundle, inference, prune, train  # noqa: E402
from cnn_baseline.networks import CompressedUNet  # noqa: E402
from cnn_baseline import quantize  # noqa: E402
from cnn_baseline.quantize import quantize_model  # noqa: E402
from test_baseline import _fake_brats  # noqa: E402


def _tiny(seed=0):
    torch.manual_seed(seed)
    return CompressedUNet(out_channels=3, channels=(8, 8, 8, 8, 8), groups=4).eval()


def _conv_weights(model):
    return torch.cat([getattr(m, n).detach().flatten() for m, n in prune.prunable_weights(model)])


def test_prune_global_removes_the_smallest_weights_over_all_layers():
    model = _tiny()
    before = _conv_weights(model).clone()
    pruned = prune.prune_global(model, 0.6)
    after = _conv_weights(pruned)
    assert torch.equal(_conv_weights(model), before)                 # the original is kept
    zeros, remaining = prune.sparsity(pruned)
    assert zeros == pytest.approx(0.6, abs=1.0 / before.numel())
    assert remaining == int((after != 0).sum())
    removed = before[after == 0].abs()
    assert removed.max() <= before[after != 0].abs().min()           # global magnitude order
    # the layers lose different shares (global, not per layer)
    shares = {round(float((getattr(m, n) == 0).float().mean()), 2)
              for m, n in prune.prunable_weights(pruned)}
    assert len(shares) > 2
    # GroupNorm weights are untouched
    gn = [p for name, p in pruned.named_parameters() if "norm" in name and "weight" in name]
    assert gn and all(bool((p != 0).all()) for p in gn)


@pytest.mark.parametrize("amount", [-0.1, 1.0, "0.5", True, None])
def test_prune_global_refuses_bad_amounts(amount):
    with pytest.raises(ValueError, match=r"amount: expected a share in \[0, 1\)"):
        prune.prune_global(_tiny(), amount)


def test_prune_global_refuses_other_networks():
    with pytest.raises(TypeError, match="model: expected a CompressedUNet"):
        prune.prune_global(torch.nn.Conv2d(1, 1, 3), 0.5)


def test_sampler_draws_tumor_slices_at_the_share_asked():
    targets = np.zeros((100, 1, 4, 4), dtype=np.float32)
    targets[:10, 0, 1, 1] = 1                                        # 10 % tumor slices
    drawn = list(train.sampler(targets, 0.7, torch.Generator().manual_seed(0)))
    drawn += list(train.sampler(targets, 0.7, torch.Generator().manual_seed(1)))
    assert len(drawn) == 200 and 0.55 < np.mean(np.array(drawn) < 10) < 0.85
    plain = list(train.sampler(targets, None, torch.Generator().manual_seed(0)))
    assert sorted(plain) == list(range(100))                         # a shuffle


def test_fine_tuning_follows_the_networks_tumor_share(monkeypatch):
    seen = []
    real = train.sampler
    monkeypatch.setattr(train, "sampler",
                        lambda t, share, g: seen.append(share) or real(t, share, g))
    rng = np.random.default_rng(0)
    images = rng.random((4, 4, 32, 32), dtype=np.float32)
    targets = (rng.random((4, 3, 32, 32)) > 0.7).astype(np.float32)
    prune.fine_tune(prune.prune_global(_tiny(), 0.5), images, targets, augment=0.0,
                    tumor_share=0.7)
    assert seen == [0.7]


def test_fine_tuning_keeps_pruned_weights_at_zero_and_masks_fold_in():
    model = prune.prune_global(_tiny(), 0.5)
    zero = _conv_weights(model) == 0
    rng = np.random.default_rng(0)
    images = rng.random((4, 4, 32, 32), dtype=np.float32)
    targets = (rng.random((4, 3, 32, 32)) > 0.7).astype(np.float32)
    kept_before = _conv_weights(model)[~zero].clone()
    losses = prune.fine_tune(model, images, targets, epochs=2, augment=0.0)
    assert len(losses) == 2 and all(np.isfinite(losses))
    after = _conv_weights(model)
    assert bool((after[zero] == 0).all())
    assert not torch.equal(after[~zero], kept_before)                # it did train
    prune.make_permanent(model)
    names = list(model.state_dict())
    assert not any(n.endswith("weight_orig") or n.endswith("weight_mask") for n in names)
    assert torch.equal(_conv_weights(model) == 0, zero)
    # int8 per-channel symmetric weights keep the zeros exactly
    model.eval()
    q = quantize_model(model, [torch.from_numpy(images)])
    convs = [m for m in q.modules() if hasattr(m, "weight") and callable(m.weight)
             and m.weight().is_quantized]
    assert convs
    q_zero = torch.cat([m.weight().int_repr().flatten() == 0 for m in convs]).float().mean()
    assert float(q_zero) >= 0.5 * 0.9    # the float first level stays float, hence below 0.5


def test_compressed_bundle_round_trips_and_is_smaller_when_pruned(tmp_path):
    model = prune.make_permanent(prune.prune_global(_tiny(), 0.7))
    content = {"state_dict": model.state_dict(), "config": model.config}
    plain, packed = tmp_path / "w.pt", tmp_path / "w.pt.xz"
    n_plain = bundle.write_bundle(content, plain)
    n_packed = bundle.write_bundle(content, packed)
    assert n_packed == packed.stat().st_size and n_plain == plain.stat().st_size
    assert n_packed < 0.6 * n_plain
    back = bundle.read_bundle(packed)
    assert all(torch.equal(back["state_dict"][k], v) for k, v in content["state_dict"].items())
    assert not list(tmp_path.glob("*.tmp*")) and len(list(tmp_path.iterdir())) == 2
    corrupt = tmp_path / "bad.pt.xz"
    corrupt.write_bytes(b"not lzma")
    with pytest.raises(ValueError, match="is not an LZMA-compressed weights file"):
        bundle.read_bundle(corrupt)
    assert lzma.decompress(packed.read_bytes()) == plain.read_bytes()


def test_quantize_with_state_is_quantize_model():
    model = _tiny(1)
    batches = [torch.rand(2, 4, 32, 32), torch.rand(2, 4, 32, 32)]
    state = quantize.calibrate(model, batches)
    assert state and all("activation_post_process" in k for k in state)
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(quantize.quantize_with_state(model, state)(x),
                           quantize_model(model, batches)(x))
    with pytest.raises(ValueError, match="observer entries of this network"):
        quantize.quantize_with_state(model, {k: v for k, v in list(state.items())[1:]})
    with pytest.raises(ValueError, match="calibration: expected at least one batch"):
        quantize.calibrate(model, [])
    assert quantize.weights_digest(model) == quantize.weights_digest(_tiny(1))
    assert quantize.weights_digest(model) != quantize.weights_digest(_tiny(2))


def test_load_pretrained_variant_errors():
    with pytest.raises(ValueError, match="variant: expected one of"):
        inference.load_pretrained(variant="int4")
    with pytest.raises(ValueError, match="quantized: True asks for an int8 network"):
        inference.load_pretrained(True, variant="fp32")
    with pytest.raises(FileNotFoundError, match="no weights file"):
        inference.load_pretrained(variant="pruned_int8", path="/nonexistent/w.pt.xz")


def test_prune_cli_writes_pruned_fp32_and_int8_that_load_and_predict(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _fake_brats(data_dir, ["A", "B", "C"])
    weights = tmp_path / "w.pt"
    assert train.main([str(data_dir), "--out", str(tmp_path / "run"), "--epochs", "1",
                       "--no-progress", "--augment", "0", "--regions", "whole_tumor",
                       "tumor_core", "enhancing", "--export", str(weights)]) == 0
    out = tmp_path / "pruned"
    assert prune.main([str(data_dir), "--weights", str(weights), "--amounts", "0.6",
                       "--epochs", "1", "--out-dir", str(out), "--slices", "4",
                       "--no-progress"]) == 0
    fp32 = inference.load_pretrained(path=out / "pruned_60_fp32.pt")
    assert prune.sparsity(fp32)[0] == pytest.approx(0.6, abs=1e-4)
    assert fp32.info["pruning"]["amount"] == 0.6
    int8 = inference.load_pretrained(variant="pruned_int8", path=out / "pruned_60_int8.pt.xz")
    assert int8.info["variant"] == "pruned_int8" and int8.info["pruning"]["fine_tune_epochs"] == 1
    x = torch.rand(1, 4, 128, 128)
    with torch.no_grad():
        assert int8(x).shape == fp32(x).shape == (1, 3, 128, 128)
    assert (out / "pruned_60_int8.pt.xz").stat().st_size < 0.6 * (out / "pruned_60_fp32.pt").stat().st_size
    # the int8 calibration file: no weights, the fp32 file beside it, the same network
    calib = tmp_path / "w_int8.pt.xz"
    assert quantize.main([str(data_dir), "--weights", str(weights), "--out", str(calib),
                          "--slices", "4"]) == 0
    assert calib.stat().st_size < 0.2 * weights.stat().st_size
    rebuilt = inference.load_pretrained(variant="int8", path=calib)
    dense = inference.load_pretrained(path=weights)
    images, _, _ = train.load_slices([data_dir / n for n in dense.info["split"]["train_cases"]],
                                     tuple(dense.info["regions"]), progress=False)
    direct = quantize_model(dense, quantize.calibration_batches(images, n_slices=4))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), direct(x))
    # calibrated on other weights than those now beside it: refused
    bundle.write_bundle({**bundle.read_bundle(weights), "state_dict": fp32.state_dict()},
                        weights)
    with pytest.raises(ValueError, match="was calibrated on other fp32 weights"):
        inference.load_pretrained(variant="int8", path=calib)
    # bad options and missing cases: exit 2
    assert prune.main([str(data_dir), "--weights", str(weights), "--amounts", "1.2"]) == 2
    assert prune.main([str(data_dir), "--weights", str(weights), "--bundle", "0.3"]) == 2
    assert prune.main([str(tmp_path / "pruned"), "--weights", str(weights),
                       "--no-progress"]) == 2
