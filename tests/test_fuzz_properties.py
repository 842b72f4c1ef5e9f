"""Property-based fuzzing of the public API (issue 16, "Tests and goal").

Hypothesis draws hostile arrays (every real dtype and complex, 0 to 4
dimensions with empty axes, NaN, inf, -0.0, denormals and extreme values,
Fortran order, reversed and strided views) and checks that each entry point
either returns a well-formed result or raises ``ValueError``/``TypeError`` with a
message naming the offending argument: never a crash, a NaN result or an error
from deep inside NumPy or Numba. The hand-picked corpus is in
``tests/test_numeric_edges.py``; this file searches around it.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import pcnnseg  # noqa: E402
from pcnnseg import PCNN, metrics  # noqa: E402

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

DTYPES = st.one_of(hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
                   hnp.floating_dtypes(), hnp.complex_number_dtypes())
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9)


@st.composite
def hostile_arrays(draw, dtype=DTYPES, shape=SHAPES):
    """An array of any dtype and shape, in one of several memory layouts."""
    a = draw(hnp.arrays(dtype, shape))
    layout = draw(st.sampled_from(["C", "F", "reversed", "strided", "readonly"]))
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "reversed" and a.ndim:
        a = a[::-1]
    elif layout == "strided" and a.ndim:
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    elif layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


REAL_DTYPES = st.one_of(hnp.boolean_dtypes(), hnp.integer_dtypes(),
                        hnp.unsigned_integer_dtypes(), hnp.floating_dtypes())


def images(min_dims=2, max_dims=3):
    """Half hostile arrays, half real images of a usable shape (any real dtype and
    values, NaN and inf included), so that both outcomes are searched."""
    shape = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=12)
    return st.one_of(hostile_arrays(), hostile_arrays(dtype=REAL_DTYPES, shape=shape))


def _named(err, *names):
    """Whether the message of ``err`` names one of ``names``."""
    return any(name in str(err) for name in names)


@FUZZ
@given(images())
def test_normalize_returns_a_unit_stimulus_or_a_named_error(a):
    try:
        S = pcnnseg.normalize(a)
    except (ValueError, TypeError) as err:
        assert _named(err, "image", "value_range"), err
        return
    assert S.dtype == np.float32 and S.shape == a.shape
    assert np.all((S >= 0) & (S <= 1))


@FUZZ
@given(images(), st.integers(min_value=1, max_value=12))
def test_pulse_fires_within_its_iterations_or_a_named_error(a, n_iter):
    try:
        result = pcnnseg.pulse(a, PCNN(), n_iter=n_iter)
    except (ValueError, TypeError) as err:
        assert _named(err, "image", "value_range"), err
        return
    ft = result.fire_time
    assert ft.shape == a.shape
    assert np.all((ft >= -1) & (ft < n_iter))
    # a (B, H, W) array is a batch of slices, one count series each
    assert result.counts.shape == a.shape[:-2] + (n_iter,)
    assert result.counts.sum() >= np.count_nonzero(ft >= 0)   # every fired pixel pulsed


@FUZZ
@given(images(), st.integers(min_value=1, max_value=6))
def test_segment_labels_in_range_or_a_named_error(a, levels):
    try:
        labels = pcnnseg.segment(a, levels=levels, n_iter=20)
    except (ValueError, TypeError) as err:
        assert _named(err, "image", "value_range"), err
        return
    assert labels.shape == a.shape
    assert labels.min() >= 0 and labels.max() <= levels


MASK_DTYPES = st.one_of(hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.floating_dtypes())


@st.composite
def mask_pairs(draw):
    """Two arrays of one shape (masks or not) and a spacing (valid or not)."""
    if draw(st.booleans()):     # hostile
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=7))
        pred = draw(hostile_arrays(dtype=MASK_DTYPES, shape=st.just(shape)))
        truth = draw(hostile_arrays(dtype=MASK_DTYPES, shape=st.just(shape)))
    else:                       # binary masks of 2 or 3 dimensions, any layout
        shape = draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=7))
        pred = draw(hostile_arrays(dtype=st.just(np.dtype(bool)), shape=st.just(shape)))
        truth = draw(hostile_arrays(dtype=st.sampled_from([np.dtype(bool), np.dtype(np.uint8)]),
                                    shape=st.just(shape))) > 0
    spacing = draw(st.one_of(
        st.none(),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=len(shape),
                 max_size=len(shape)),
        st.lists(st.floats(min_value=1e-300, max_value=1e300), min_size=len(shape),
                 max_size=len(shape))))
    return pred, truth, spacing


@FUZZ
@given(mask_pairs())
def test_dice_and_hd95_well_formed_or_a_named_error(pair):
    pred, truth, spacing = pair
    try:
        d = metrics.dice(pred, truth)
    except (ValueError, TypeError) as err:
        assert _named(err, "pred", "truth"), err
    else:
        assert 0.0 <= d <= 1.0
    try:
        h = metrics.hausdorff95(pred, truth, spacing=spacing)
    except (ValueError, TypeError) as err:
        assert _named(err, "pred", "truth", "spacing"), err
    else:
        assert not np.isnan(h) and h >= 0.0


@FUZZ
@given(hostile_arrays(shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1,
                                             max_side=40)))
def test_detect_returns_a_box_in_the_image_or_a_named_error(a):
    try:
        found = pcnnseg.detect(a)
    except (ValueError, TypeError) as err:
        assert _named(err, "image", "brain_mask", "value_range"), err
        return
    if found.box is not None:
        x, y, w, h = found.box
        assert 0 <= x and 0 <= y and w > 0 and h > 0
        assert x + w <= a.shape[1] and y + h <= a.shape[0]
