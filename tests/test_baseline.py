"""cnn_baseline: blocks, networks, data, loss, training CLI, int8, bundled weights."""
import doctest
import importlib
import json
import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import SimpleITK as sitk  # noqa: E402

import cnn_baseline  # noqa: E402
from cnn_baseline import data, inference, train  # noqa: E402
from cnn_baseline.blocks import DoubleSeparable, SeparableBlock  # noqa: E402
from cnn_baseline.losses import bce_dice_loss, soft_dice_loss  # noqa: E402
from cnn_baseline.networks import CompressedUNet, UNet, count_parameters  # noqa: E402
from cnn_baseline.quantize import calibration_batches, quantize_model  # noqa: E402
from pcnnseg import phantom  # noqa: E402
from pcnnseg.metrics import dice  # noqa: E402

BRATS = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2018"
HAVE_WEIGHTS = all(p.is_file() for p in inference.VARIANTS.values())
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="bundled weights not built")


def _sep_params(i, o):
    """Hand count: 1x1 (i*o), depthwise 3x3 (9*o), pointwise (o*o), 3 GroupNorms (2*o)."""
    return i * o + 9 * o + o * o + 3 * 2 * o


def _four(seed=0, shape=(150, 170)):
    """A phantom slice as four 'sequences' (scaled copies) and its tumor mask."""
    flair, truth = phantom.make_slice(shape, seed=seed)
    return np.stack([flair, 0.8 * flair, 1.1 * flair, 0.9 * flair]), truth


# ------------------------------------------------------------------ blocks, networks


def test_separable_block_parameters_hand_counted():
    assert count_parameters(SeparableBlock(6, 16)) == _sep_params(6, 16) == 592
    assert count_parameters(DoubleSeparable(6, 16)) == _sep_params(6, 16) + _sep_params(16, 16)


def test_compressed_unet_count_is_the_sum_of_its_levels():
    net = CompressedUNet()
    c = net.config["channels"]
    levels = [(4, c[0]), (c[0], c[1]), (c[1], c[2]), (c[2], c[3]), (c[3], c[4]),
              (c[4] + c[3], c[3]), (c[3] + c[2], c[2]), (c[2] + c[1], c[1]), (c[1] + c[0], c[0])]
    expected = sum(_sep_params(i, o) + _sep_params(o, o) for i, o in levels) + c[0] + 1
    total = count_parameters(net)
    assert total == expected
    assert total == sum(count_parameters(m) for m in net.children())
    assert 2.0e6 < total < 2.2e6  # the paper's "about 2.1 million"
    unet = count_parameters(UNet())
    assert 30.5e6 < unet < 31.5e6  # "about 31 million"
    assert unet > 14 * total


def test_count_macs_matches_a_hand_count_of_the_first_level():
    net = CompressedUNet()
    H = W = 64
    # separable block i -> o: 1x1 expand (i*o), depthwise 3x3 (9*o), pointwise (o*o) per pixel
    hand = H * W * ((4 * 32 + 9 * 32 + 32 * 32) + (32 * 32 + 9 * 32 + 32 * 32))
    first = torch.nn.Sequential(net.inc)
    first.config = {"in_channels": 4}
    assert cnn_baseline.count_macs(first, size=H) == hand
    # The whole network scales with the pixel count (no fully connected layer).
    assert cnn_baseline.count_macs(net, size=128) == 4 * cnn_baseline.count_macs(net, size=64)
    assert net.training  # left as it was


def test_count_macs_transposed_convolution_and_errors():
    up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
    # every input value meets every output channel through the 2x2 kernel
    assert cnn_baseline.count_macs(up, size=16) == 8 * 16 * 16 * 4 * 4
    assert cnn_baseline.count_macs(UNet(), size=64) > cnn_baseline.count_macs(
        CompressedUNet(), size=64)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        cnn_baseline.count_macs("net")
    with pytest.raises(ValueError, match="size: expected an integer >= 1"):
        cnn_baseline.count_macs(up, size=0)


def test_bottleneck_capped_at_512():
    net = CompressedUNet(channels=(8, 16, 32, 64, 1024))
    assert net.config["channels"][-1] == 512
    assert net.down4.convs.second.pointwise.out_channels == 512


def test_residual_only_when_channels_match():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 20, 20)
    same, grow = SeparableBlock(8, 8).eval(), SeparableBlock(8, 16).eval()
    assert same.residual and not grow.residual
    with torch.no_grad():
        for block in (same, grow):
            block.pointwise.weight.zero_()  # the residual branch then contributes 0
        assert torch.equal(same(x), x)
        assert torch.count_nonzero(grow(x)) == 0


@pytest.fixture(scope="module", params=[1, 3], ids=["wt", "three_regions"])
def net(request):
    torch.manual_seed(0)
    return CompressedUNet(out_channels=request.param).eval()


@pytest.mark.parametrize("size", [(97, 131), (16, 16), (33, 18)])
def test_compressed_unet_shapes_odd_sizes(net, size):
    with torch.no_grad():
        y = net(torch.rand(2, 4, *size))
    assert y.shape == (2, net.config["out_channels"]) + size
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_classic_unet_shape_odd_size():
    net = UNet().eval()
    with torch.no_grad():
        assert net(torch.rand(1, 4, 37, 45)).shape == (1, 1, 37, 45)


def test_networks_reject_bad_input(net):
    with pytest.raises(ValueError, match="H and W"):
        net(torch.rand(1, 4, 15, 64))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        net(torch.rand(1, 3, 32, 32))
    with pytest.raises(TypeError, match="torch.Tensor"):
        net(np.zeros((1, 4, 32, 32), np.float32))
    with pytest.raises(ValueError, match="5 widths"):
        CompressedUNet(channels=(8, 16))
    with pytest.raises(TypeError, match="in_channels: expected an integer"):
        SeparableBlock(4.0, 8)
    with pytest.raises(TypeError, match="module: expected a torch.nn.Module"):
        count_parameters("net")


# --------------------------------------------------------------------- loss, training


def test_loss_values_and_checks():
    t = torch.zeros(2, 1, 8, 8)
    t[:, :, 2:6, 2:6] = 1
    good, bad = 20 * (2 * t - 1), -20 * (2 * t - 1)
    assert float(bce_dice_loss(good, t)) < 1e-3
    assert float(soft_dice_loss(bad, t)) > 0.95
    assert float(bce_dice_loss(bad, t)) > float(bce_dice_loss(torch.zeros_like(t), t))
    with pytest.raises(ValueError, match="shape"):
        bce_dice_loss(good, t[:, :, :4])
    with pytest.raises(TypeError, match="logits: expected a torch.Tensor"):
        bce_dice_loss(good.numpy(), t)


def test_a_few_optimisation_steps_lower_the_loss():
    torch.manual_seed(0)
    net = CompressedUNet(channels=(8, 16, 16, 32, 32), dropout=0.0)
    yy, xx = np.mgrid[:32, :32]
    disk = ((yy - 14) ** 2 + (xx - 18) ** 2 < 36).astype(np.float32)
    x = torch.rand(2, 4, 32, 32) * 0.2
    x[:, 0] += torch.from_numpy(disk)
    target = torch.from_numpy(np.stack([disk, disk]))[:, None]
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = bce_dice_loss(net.logits(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ----------------------------------------------------------------------------- data


def test_split_is_by_patient_and_reproducible():
    names = [f"case{k}" for k in range(10)]
    tr, va = data.split_cases(names, seed=3)
    assert len(va) == 2 and len(tr) == 8 and not set(tr) & set(va)
    assert sorted(tr + va) == names
    assert data.split_cases(list(reversed(names)), seed=3) == (tr, va)
    assert data.split_cases(names, seed=4) != (tr, va) or data.split_cases(names, seed=5) != (
        tr, va)
    with pytest.raises(ValueError, match="names: expected at least 2 cases"):
        data.split_cases(["one"])
    with pytest.raises(ValueError, match=r"val_fraction: expected a number in \(0, 1\)"):
        data.split_cases(names, val_fraction=1.5)


def test_split_by_group_validates_on_every_group():
    names = [f"a{k}" for k in range(10)] + [f"b{k}" for k in range(5)]
    groups = {n: n[0] for n in names}
    tr, va = data.split_cases(names, seed=0, groups=groups)
    assert sorted(tr + va) == sorted(names) and not set(tr) & set(va)
    assert sum(n[0] == "a" for n in va) == 2 and sum(n[0] == "b" for n in va) == 1
    # one group is the ungrouped split
    assert data.split_cases(names, seed=0, groups=dict.fromkeys(names, "x")) == \
        data.split_cases(names, seed=0)
    # a group of one case stays in training
    lone = {**groups, "c0": "c"}
    tr, va = data.split_cases(names + ["c0"], seed=0, groups=lone)
    assert "c0" in tr
    with pytest.raises(ValueError, match=r"groups: no group for the case\(s\) \['c0'\]"):
        data.split_cases(names + ["c0"], groups=groups)
    with pytest.raises(ValueError, match="every group holds a single case"):
        data.split_cases(["x", "y"], groups={"x": 1, "y": 2})


def test_augment_keeps_shapes_and_binary_targets():
    rng = np.random.default_rng(0)
    img = rng.random((4, 32, 40)).astype(np.float32)
    tgt = np.zeros((1, 32, 40), np.float32)
    tgt[0, 10:20, 12:25] = 1
    changed = 0
    for _ in range(8):
        a, b = data.augment(img, tgt, rng)
        assert a.shape == img.shape and b.shape == tgt.shape
        assert a.dtype == b.dtype == np.float32
        assert set(np.unique(b)) <= {0.0, 1.0}
        changed += not np.array_equal(a, img)
    assert changed > 0


def test_augment_moves_image_and_target_together():
    """A marker drawn into the image where the target is 1 still lies exactly on
    the target after each random flip, shift and elastic deformation (noise off)."""
    rng = np.random.default_rng(1)
    img = rng.random((4, 32, 40)).astype(np.float32) * 0.4
    tgt = np.zeros((1, 32, 40), np.float32)
    tgt[0, 10:20, 12:25] = 1
    img[0] = tgt[0]
    moved = 0
    for _ in range(16):
        a, b = data.augment(img, tgt, rng, noise=0.0)
        np.testing.assert_array_equal(a[0] > 0.5, b[0] > 0.5)
        moved += not np.array_equal(b, tgt)
    assert moved > 0


def test_crop_and_paste_back_roundtrip():
    brain = np.zeros((3, 150, 170), bool)
    brain[:, 20:140, 30:160] = True
    y0, x0, side = box = data.brain_box(brain)
    assert side == data.FIELD
    assert y0 <= 20 and x0 <= 30 and y0 + side >= 140 and x0 + side >= 160
    mask = np.zeros((150, 170), np.float32)
    mask[50:90, 60:110] = 1
    small = data.crop_resize(mask, box, mask=True)
    assert small.shape == (data.SIZE, data.SIZE)
    back = data.paste_back(small, box, mask.shape) > 0.5
    assert dice(back, mask > 0) > 0.95


def test_normalize_case_range_and_errors():
    stack, truth = _four()
    out, brain = data.normalize_case(stack)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert not out[:, ~brain].any()
    with pytest.raises(ValueError, match="sequences"):
        data.normalize_case(stack[:3])
    with pytest.raises(ValueError, match="missing"):
        data.normalize_case({"flair": stack[0]})


# ---------------------------------------------------------------------- quantization


def test_quantized_model_stays_close_to_fp32():
    torch.manual_seed(0)
    net = CompressedUNet(channels=(8, 16, 16, 32, 32), dropout=0.0)
    stack, truth = _four(seed=1, shape=(64, 64))
    x_np = data.normalize_case(stack)[0][None]
    x = torch.from_numpy(x_np)
    target = torch.from_numpy(truth.astype(np.float32))[None, None]
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(15):  # give it something to compute: fit the phantom's tumor
        loss = bce_dice_loss(net.logits(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    calib = [torch.from_numpy(data.normalize_case(_four(seed=s, shape=(64, 64))[0])[0][None])
             for s in (2, 3, 4)]
    qnet = quantize_model(net, calib)
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in qnet.modules())
    with torch.no_grad():
        p32, p8 = net(x), qnet(x)
    assert p8.shape == p32.shape and p8.dtype == torch.float32
    assert float((p32 - p8).abs().mean()) < 0.05
    assert dice(p8.numpy()[0, 0] > 0.5, p32.numpy()[0, 0] > 0.5) > 0.9
    with pytest.raises(ValueError, match="calibration"):
        quantize_model(net, [])
    with pytest.raises(TypeError, match="model: expected a CompressedUNet"):
        quantize_model(UNet(channels=(4, 4, 4, 4, 4)), calib)
    assert [len(b) for b in calibration_batches(np.zeros((5, 4, 16, 16)), n_slices=4,
                                                batch_size=3)] == [3, 1]


# --------------------------------------------------------------- bundled weights


@needs_weights
def test_bundled_weights_load_and_predict():
    fp32 = cnn_baseline.load_pretrained()
    int8 = cnn_baseline.load_pretrained(quantized=True)
    pruned = cnn_baseline.load_pretrained(variant="pruned_int8")
    assert (fp32.info["variant"], int8.info["variant"], pruned.info["variant"]) == (
        "fp32", "int8", "pruned_int8")
    assert pruned.info["pruning"]["zeros"] >= 0.5
    assert pruned.info["split"] == int8.info["split"] == fp32.info["split"]
    info = fp32.info
    assert count_parameters(fp32) == count_parameters(
        CompressedUNet(out_channels=len(info["regions"])))
    bundled = [p for p in inference.VARIANTS.values() if p.is_file()]
    assert sum(p.stat().st_size for p in bundled) < 10 ** 7     # under 10 MB together
    assert not set(info["split"]["train_cases"]) & set(info["split"]["val_cases"])
    stack, _ = _four(seed=5, shape=(131, 97))
    for model in (fp32, int8, pruned):
        mask = cnn_baseline.predict(stack, model=model)
        assert mask.shape == (131, 97) and mask.dtype == bool
    vol = np.stack([stack, stack, np.zeros_like(stack)], axis=1)  # (4, 3, 131, 97)
    out = cnn_baseline.predict(vol, model=fp32)
    assert out.shape == (3, 131, 97) and out.dtype == bool
    assert np.array_equal(out[0], out[1]) and not out[2].any()  # empty slice skipped
    as_dict = dict(zip(("flair", "t1", "t1ce", "t2"), vol))
    assert np.array_equal(cnn_baseline.predict(as_dict, model=fp32), out)


@needs_weights
def test_predict_loads_the_bundled_weights_once(monkeypatch):
    stack, _ = _four(seed=6, shape=(60, 64))
    expected = cnn_baseline.predict(stack, model=cnn_baseline.load_pretrained())
    loads = []
    real = inference.load_pretrained
    monkeypatch.setattr(inference, "load_pretrained", lambda q: loads.append(q) or real(q))
    inference._bundled_model.cache_clear()
    try:
        for _ in range(3):
            assert np.array_equal(cnn_baseline.predict(stack), expected)
    finally:
        inference._bundled_model.cache_clear()
    assert loads == [False]


@needs_weights
@pytest.mark.skipif(not BRATS.is_dir(), reason="BraTS data not available")
@pytest.mark.parametrize("collection", ["brats2018", "brats2023_ssa"])
def test_bundled_weights_segment_a_validation_case(collection):
    from pcnnseg.io import load_brats_case

    fp32 = cnn_baseline.load_pretrained()
    split = fp32.info["split"]
    name = next(n for n in split["val_cases"] if split["collections"][n] == collection)
    case = load_brats_case(BRATS.parent / collection / name)
    truth = case.labels > 0
    z = int(np.argmax(truth.sum(axis=(1, 2))))
    sub = np.stack([case.images[s][z - 6:z + 6] for s in ("flair", "t1", "t1ce", "t2")])
    mask = cnn_baseline.predict(sub, model=fp32)
    assert mask.shape == truth[z - 6:z + 6].shape
    # Normalised over 12 slices rather than the whole volume, still a good overlap.
    assert dice(mask, truth[z - 6:z + 6]) > 0.6


def test_predict_regions_gives_one_mask_per_region(net):
    stack, _ = _four(seed=2, shape=(70, 90))
    wt = cnn_baseline.predict(stack, model=net)
    assert wt.shape == (70, 90) and wt.dtype == bool
    brain = data.normalize_case(stack)[1]
    assert not (wt & ~brain).any()  # tumor only inside the brain
    available = inference.model_regions(net)
    assert available == data.REGIONS[:net.config["out_channels"]]
    both = cnn_baseline.predict(stack, model=net, regions=available[::-1])
    assert both.shape == (len(available), 70, 90)
    assert np.array_equal(both[-1], wt)  # same mask, whichever way it is asked for
    if len(available) == 1:
        with pytest.raises(ValueError, match="predicts"):
            cnn_baseline.predict(stack, model=net, regions="enhancing")
    with pytest.raises(ValueError, match="at least one"):
        cnn_baseline.predict(stack, model=net, regions=())


@needs_weights
def test_predict_rejects_bad_input():
    stack, _ = _four(shape=(40, 40))
    bad = stack.copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cnn_baseline.predict(bad)
    with pytest.raises(ValueError, match="3-D or 4-D"):
        cnn_baseline.predict(stack[0])
    with pytest.raises(ValueError, match="sequences"):
        cnn_baseline.predict(stack[:3])
    with pytest.raises(TypeError, match="real-valued"):
        cnn_baseline.predict(stack.astype(complex))
    with pytest.raises(TypeError, match="volume_or_slices"):
        cnn_baseline.predict("volume.nii.gz")
    with pytest.raises(ValueError, match="threshold"):
        cnn_baseline.predict(stack, threshold=1.5)
    with pytest.raises(TypeError, match="quantized"):
        cnn_baseline.load_pretrained(quantized="yes")


# ----------------------------------------------------------- command line, import


def _fake_brats(root, names, shape=(16, 48, 48)):
    rng = np.random.default_rng(0)
    for k, name in enumerate(names):
        folder = root / name
        folder.mkdir()
        brain, tumor = phantom.make_volume(shape, seed=k)
        brain[:6] = 0  # keep 4 slices with brain: 2 training steps per epoch, fast
        brain[10:] = 0
        tumor[:6] = tumor[10:] = False
        for seq in ("flair", "t1", "t1ce", "t2"):
            img = (brain * rng.uniform(0.5, 1.5)).astype(np.int16)
            sitk.WriteImage(sitk.GetImageFromArray(img), str(folder / f"{name}_{seq}.nii.gz"))
        seg = np.where(tumor, 2, 0).astype(np.uint8)
        sitk.WriteImage(sitk.GetImageFromArray(seg), str(folder / f"{name}_seg.nii.gz"))


def test_train_cli_end_to_end(tmp_path):
    _fake_brats(tmp_path, ["A", "B", "C"])
    out, export = tmp_path / "run", tmp_path / "w.pt"
    rc = train.main([str(tmp_path), "--out", str(out), "--epochs", "1", "--no-progress",
                     "--augment", "1", "--export", str(export)])
    assert rc == 0
    for f in ("last.pt", "best.pt", "log.csv", "split.json"):
        assert (out / f).is_file()
    assert len((out / "log.csv").read_text().splitlines()) == 2
    assert json.loads((out / "split.json").read_text())["train_slices"] == 8
    net = cnn_baseline.load_pretrained(path=export)
    assert len(net.info["split"]["val_cases"]) == 1
    # training flushes denormals to zero, and gives the process its default back
    tiny = np.array([2.0 ** -1070])
    assert (tiny * 2.0)[0] == 2.0 ** -1069
    assert train.main([str(tmp_path / "nowhere"), "--no-progress"]) == 2


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_train_cli_resumes_where_it_stopped(tmp_path, monkeypatch):
    _fake_brats(tmp_path, ["A", "B", "C"])
    # every source of randomness in play: augmentation, tumor-weighted draws,
    # dropout, and a scheduler with state
    common = [str(tmp_path), "--no-progress", "--augment", "0.5", "--tumor-share", "0.6",
              "--schedule", "plateau", "--monitor", "dice", "--epochs", "2",
              "--patience", "5"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert train.main(common + ["--out", str(straight)]) == 0

    calls = {"n": 0}
    real_loss = train.bce_dice_loss

    def interrupted(*a):
        calls["n"] += 1
        if calls["n"] == 8:  # in epoch 2 (an epoch: 4 steps and 2 validation batches)
            raise KeyboardInterrupt
        return real_loss(*a)

    monkeypatch.setattr(train, "bce_dice_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.main(common + ["--out", str(broken)])
    monkeypatch.setattr(train, "bce_dice_loss", real_loss)
    first = _weights(broken / "last.pt")
    assert _weights(broken / "last.pt") and torch.load(
        broken / "last.pt", weights_only=False)["epoch"] == 1
    assert not list(broken.glob("*.tmp"))                      # nothing half-written
    assert len((broken / "log.csv").read_text().splitlines()) == 2
    export = tmp_path / "w.pt.xz"        # compressed, as the bundled files are
    assert train.main(common + ["--out", str(broken), "--resume", "--export", str(export)]) == 0
    assert cnn_baseline.load_pretrained(path=export).info["best_epoch"] in (1, 2)

    resumed, expected = _weights(broken / "last.pt"), _weights(straight / "last.pt")
    assert any(not torch.equal(first[k], resumed[k]) for k in first)   # it did train on
    assert all(torch.equal(resumed[k], expected[k]) for k in expected)
    log = lambda p: [r.split(",")[:-1] for r in (p / "log.csv").read_text().splitlines()]  # noqa: E731
    assert log(broken) == log(straight) and len(log(broken)) == 3      # seconds column aside

    # a finished run resumes to nothing new; other settings or no checkpoint: refused
    assert train.main(common + ["--out", str(broken), "--resume"]) == 0
    assert all(torch.equal(_weights(broken / "last.pt")[k], expected[k]) for k in expected)
    assert train.main(common + ["--out", str(broken), "--resume", "--lr", "1e-3"]) == 2
    assert train.main(common + ["--out", str(tmp_path / "none"), "--resume"]) == 2
    assert train.main(common + ["--out", str(broken), "--resume", "--init",
                                str(broken / "best.pt")]) == 2
    assert train.main(common + ["--out", str(broken), "--tumor-share", "1.5"]) == 2
    # another case in the folder changes the split: refused, the run's files untouched
    split_before = (broken / "split.json").read_text()
    _fake_brats(tmp_path, ["D"])
    assert train.main(common + ["--out", str(broken), "--resume"]) == 2
    assert (broken / "split.json").read_text() == split_before


def test_train_cli_splits_within_each_collection(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    _fake_brats(one, ["A1", "A2", "A3"])
    _fake_brats(two, ["B1", "B2"])
    out = tmp_path / "run"
    assert train.main([str(one), str(two), "--out", str(out), "--epochs", "1",
                       "--no-progress", "--augment", "0"]) == 0
    split = json.loads((out / "split.json").read_text())
    assert [n[0] for n in split["val_cases"]] == ["A", "B"]
    assert split["collections"]["B1"] == "two" and len(split["train_cases"]) == 3
    _fake_brats(two, ["A1"])  # the same case name in two collections
    assert train.main([str(one), str(two), "--out", str(out), "--no-progress"]) == 2


def test_warm_start_copies_layers_and_shared_region_rows():
    torch.manual_seed(0)
    wt = CompressedUNet(out_channels=1, channels=(8, 8, 8, 8, 8), groups=4)
    bundle = {"state_dict": wt.state_dict(), "config": wt.config, "regions": ["whole_tumor"]}
    three = CompressedUNet(out_channels=3, channels=(8, 8, 8, 8, 8), groups=4)
    before = three.head.weight.detach().clone()
    copied = train.warm_start(three, bundle, data.REGIONS)
    assert len(copied) == len(three.state_dict())
    assert torch.equal(three.head.weight[0], wt.head.weight[0])
    assert torch.equal(three.head.weight[1:], before[1:])  # regions the source lacks
    assert torch.equal(three.inc.first.expand.weight, wt.inc.first.expand.weight)
    other = CompressedUNet(out_channels=3, channels=(8, 8, 8, 8, 16), groups=4)
    with pytest.raises(ValueError, match="does not match"):
        train.warm_start(other, bundle, data.REGIONS)


def test_train_cli_init_from_exported_weights(tmp_path):
    _fake_brats(tmp_path, ["A", "B", "C"])
    first, second = tmp_path / "wt.pt", tmp_path / "regions.pt"
    common = ["--epochs", "1", "--no-progress", "--augment", "0"]
    assert train.main([str(tmp_path), "--out", str(tmp_path / "r1"), "--export", str(first)]
                      + common) == 0
    assert train.main([str(tmp_path), "--out", str(tmp_path / "r2"), "--export", str(second),
                       "--init", str(first), "--regions", *data.REGIONS] + common) == 0
    net = cnn_baseline.load_pretrained(path=second)
    assert net.config["out_channels"] == 3 and net.info["init"] == "wt.pt"
    compressed = tmp_path / "regions.pt.xz"          # the form the bundled weights take
    compressed.write_bytes(lzma.compress(second.read_bytes()))
    assert train.main([str(tmp_path), "--out", str(tmp_path / "r4"), "--init", str(compressed),
                       "--regions", *data.REGIONS] + common) == 0
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    for bad in (corrupt, tmp_path / "missing.pt"):
        assert train.main([str(tmp_path), "--out", str(tmp_path / "r3"), "--init", str(bad)]
                          + common) == 2
    assert not (tmp_path / "r3").exists()  # nothing written before the check


def test_import_without_torch_says_how_to_install():
    code = "import sys; sys.modules['torch'] = None; import cnn_baseline"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode != 0
    assert "pip install pcnnseg[baseline]" in res.stderr


@pytest.mark.parametrize("name", ["cnn_baseline.networks", "cnn_baseline.losses",
                                  pytest.param("cnn_baseline", marks=needs_weights),
                                  pytest.param("cnn_baseline.inference", marks=needs_weights)])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
