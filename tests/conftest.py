import numpy as np
import pytest

from pcnnseg import ICM, PCNN, SCM, SPCNN, phantom


def _images():
    rng = np.random.default_rng(1)
    brain, _ = phantom.make_slice((96, 80), seed=3)
    holes = rng.random((33, 47)).astype(np.float32)
    holes[rng.random(holes.shape) < 0.3] = 0.0
    return {
        "random": rng.random((40, 56)).astype(np.float32),
        "phantom": brain,
        "random_with_zeros": holes,
        "one_row": rng.random((1, 17)).astype(np.float32),
        "tiny": rng.random((3, 2)).astype(np.float32),
    }


IMAGES = _images()

MODELS = {
    "pcnn": PCNN(),
    "pcnn_two_kernels": PCNN(linking_weights=((0.7, 1, 0.7), (1, 0, 1), (0.7, 1, 0.7)), e0=0.5),
    "spcnn": SPCNN(alpha_f=1.3, beta=0.4, v_e=4.9, alpha_e=1.7),
    "spcnn_e0": SPCNN(alpha_f=0.2, beta=0.2, v_e=5.0, alpha_e=0.1, e0=1.5),
    "icm": ICM(),
    "scm": SCM(),
}


@pytest.fixture(params=sorted(IMAGES))
def image_name(request):
    return request.param


@pytest.fixture(params=sorted(MODELS))
def model_name(request):
    return request.param
