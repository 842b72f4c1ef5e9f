"""The baseline's CUDA path: training with --device cuda, prediction on the GPU.

Skipped without a CUDA device (CI has none); run on a GPU machine with
``pytest tests/test_cuda.py``. Needs no data and no SimpleITK call.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cnn_baseline  # noqa: E402
from cnn_baseline import slice_file, train  # noqa: E402
from cnn_baseline.networks import CompressedUNet  # noqa: E402
from pcnnseg import phantom  # noqa: E402
from tests.test_slice_file import _synthetic  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def slices(tmp_path_factory):
    path = tmp_path_factory.mktemp("cuda") / "s.npz.xz"
    slice_file.write_slice_file(path, [_synthetic(n, 4, k) for k, n in enumerate("abcde")],
                                ["whole_tumor"])
    return path


def test_train_on_cuda_exports_cpu_weights_and_resumes(slices, tmp_path):
    out, export = tmp_path / "run", tmp_path / "w.pt.xz"
    common = ["--slices", str(slices), "--out", str(out), "--device", "cuda", "--no-progress",
              "--augment", "0.5", "--monitor", "dice", "--patience", "5"]
    assert train.main(common + ["--epochs", "1"]) == 0
    checkpoint = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert "cuda" in checkpoint["rng"] and checkpoint["epoch"] == 1
    assert train.main(common + ["--epochs", "2", "--resume", "--export", str(export)]) == 0
    net = cnn_baseline.load_pretrained(path=export)
    assert net.info["epochs_run"] == 2
    assert all(p.device.type == "cpu" for p in net.parameters())


def _agree(net):
    """The network's outputs and ``predict``'s masks on the CPU and on the GPU."""
    flair, _ = phantom.make_volume((16, 96, 96), seed=1)
    stack = np.stack([flair, 0.8 * flair, 1.1 * flair, 0.9 * flair])
    x = torch.rand(3, 4, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu_out = net.to("cpu")(x)
        cpu_mask = cnn_baseline.predict(stack, model=net)
        gpu_out = net.to("cuda")(x.to("cuda")).cpu()
        gpu_mask = cnn_baseline.predict(stack, model=net)
    assert next(net.parameters()).is_cuda and gpu_mask.shape == cpu_mask.shape
    # cuDNN may use TF32 for convolutions: agreement to about 1e-3 relative
    assert torch.allclose(gpu_out, cpu_out, atol=1e-2, rtol=1e-2), (gpu_out - cpu_out).abs().max()
    assert (gpu_mask != cpu_mask).mean() < 1e-3


def test_predict_on_cuda_matches_cpu():
    torch.manual_seed(0)
    _agree(CompressedUNet(out_channels=1).eval())


def test_bundled_network_on_cuda_matches_cpu():
    try:
        net = cnn_baseline.load_pretrained()
    except FileNotFoundError:
        pytest.skip("bundled weights not built")
    _agree(net)
