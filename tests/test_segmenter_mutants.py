"""The fitted readout: what a mutation run of ``pcnnseg/segmenter.py`` found untested.

Each test pins behaviour that surviving mutants (mutmut 3.8.1, issue 17) changed
without a test noticing: the constructor's messages, bounds and tree checks, the
exact save/load round trip, the features against a plain NumPy/SciPy computation,
the interpolation back to voxels, and what ``fit_segmenter`` does with its
options (training voxels, the classifier's settings, the inner cross-validation,
case names, progress messages). Cases are tiny phantoms or hand-made arrays.
"""
import dataclasses
import inspect
import json
import math
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi

import pcnnseg.segmenter as segmenter_module
from pcnnseg import phantom
from pcnnseg.io import BRATS_SEQUENCES, BratsCase, Image
from pcnnseg.metrics import dice
from pcnnseg.segmenter import (LEVELS, Segmenter, _decision_dice, _Prepared, _upsample,
                               fit_segmenter, voxel_features)
from pcnnseg.tumor import segment_tumor

sklearn = pytest.importorskip("sklearn")

SMALL = (16, 40, 40)
TWO = ("flair", "t2")
ONE_DECISION = dict(levels=(0.5,), betas=(0.0,), selections=("thickest",), satellites=(1.0,))
TREE_NAMES = r"\('feature', 'threshold', 'left', 'right', 'value', 'is_leaf', 'roots'\)"
MALFORMED = (r"^trees: malformed tree arrays \(children must come after their node, "
             r"features and roots in range, values finite\)$")
ONE_CLASS = (r"^cases: the training voxels hold only one class \(no tumor, or no normal "
             r"brain\); give labelled cases with tumors$")


def _small_case(seed):
    return phantom.make_case(SMALL, seed=seed)


@pytest.fixture(scope="module")
def cases():
    return [_small_case(seed) for seed in range(4)]


def _stump(**changes):
    """One tree: node 0 splits on feature 0 at 0.0, leaves 1 (-1.0) and 2 (+1.0)."""
    trees = {"feature": np.array([0, 0, 0]), "threshold": np.array([0.0, 0.0, 0.0]),
             "left": np.array([1, 0, 0]), "right": np.array([2, 0, 0]),
             "value": np.array([0.0, -1.0, 1.0]), "is_leaf": np.array([False, True, True]),
             "roots": np.array([0])}
    trees.update(changes)
    return trees


def _segmenter(trees=None, **changes):
    kwargs = dict(sequences=("flair",), trees=_stump() if trees is None else trees,
                  baseline=0.0, level=0.5, beta=0.0)
    kwargs.update(changes)
    return Segmenter(**kwargs)


def _as_case(name, images, labels, spacing_xyz=(1.0, 1.0, 1.0)):
    geometry = Image(array=images["flair"], spacing=spacing_xyz, origin=(0.0, 0.0, 0.0),
                     direction=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    return BratsCase(name=name, images=images, labels=labels, geometry=geometry)


# ------------------------------------------------------------------ the constructor


def test_a_single_leaf_and_a_single_tree_are_valid_ensembles():
    leaf = {"feature": [0], "threshold": [0.0], "left": [0], "right": [0], "value": [0.7],
            "is_leaf": [True], "roots": [0]}
    made = _segmenter(leaf, baseline=-0.2)
    assert made.trees["roots"].tolist() == [0]
    assert _segmenter().trees["roots"].size == 1


def test_tree_arrays_are_converted_to_the_kernel_dtypes():
    trees = _stump(feature=np.array([0, 0, 0], np.int32),
                   threshold=np.array([0.0, 0.0, 0.0], np.float32),
                   left=np.array([1, 0, 0], np.int16), right=np.array([2, 0, 0], np.uint8),
                   value=np.array([0.0, -1.0, 1.0], np.float32),
                   is_leaf=np.array([0, 1, 1], np.uint8), roots=np.array([0], np.int32))
    made = _segmenter(trees)
    dtypes = {name: a.dtype for name, a in made.trees.items()}
    assert dtypes == {"feature": np.int64, "threshold": np.float64, "left": np.int64,
                      "right": np.int64, "value": np.float64, "is_leaf": np.bool_,
                      "roots": np.int64}
    assert all(a.flags.c_contiguous for a in made.trees.values())
    assert made.trees["is_leaf"].tolist() == [False, True, True]


@pytest.mark.parametrize("trees, got", [
    (_stump(extra=np.zeros(3)),
     r"\['extra', 'feature', 'is_leaf', 'left', 'right', 'roots', 'threshold', 'value'\]"),
    (_stump(threshold=np.array(["a", "b", "c"])),
     r"\['feature', 'is_leaf', 'left', 'right', 'roots', 'threshold', 'value'\]"),
    (_stump(value=np.array([0j, 1j, 2j])),
     r"\['feature', 'is_leaf', 'left', 'right', 'roots', 'threshold', 'value'\]"),
])
def test_extra_or_non_real_tree_arrays_are_refused(trees, got):
    with pytest.raises(ValueError, match=rf"^trees: expected real arrays named {TREE_NAMES}, "
                                         rf"got {got}$"):
        _segmenter(trees)


@pytest.mark.parametrize("change", [
    {"roots": np.array([], dtype=np.int64)},          # no tree
    {"value": np.array([0.0, -1.0])},                 # one array shorter
    {"threshold": np.zeros((3, 1))},                  # not 1-D
    {"roots": np.array([3])},                         # root past the last node
    {"feature": np.array([-1, 0, 0])},                # negative feature
    {"feature": np.array([5, 0, 0])},                 # 4 x 1 + 1 features: 0..4
    {"left": np.array([3, 0, 0])},                    # child past the last node
    {"right": np.array([3, 0, 0])},
    {"right": np.array([0, 0, 0])},                   # child not after its node (a loop)
    {"left": np.array([0, 0, 0])},
    {"threshold": np.array([np.nan, 0.0, 0.0])},
    {"value": np.array([0.0, np.inf, 1.0])},
])
def test_malformed_trees_are_refused_with_the_rule(change):
    with pytest.raises(ValueError, match=MALFORMED):
        _segmenter(_stump(**change))


def test_the_last_feature_index_is_the_distance_to_the_brain_edge():
    # 4 features per sequence and the distance: index 4 is valid with one sequence,
    # index 8 with two
    assert _segmenter(_stump(feature=np.array([4, 0, 0]))).trees["feature"][0] == 4
    assert _segmenter(_stump(feature=np.array([8, 0, 0])), sequences=TWO)
    with pytest.raises(ValueError, match=MALFORMED):
        _segmenter(_stump(feature=np.array([9, 0, 0])), sequences=TWO)


@pytest.mark.parametrize("name, value", [
    ("baseline", -1e6), ("baseline", 1e6), ("level", 1.0), ("level", 1e-9),
    ("beta", 0.0), ("beta", 1e3),
])
def test_bounds_are_inclusive_where_documented(name, value):
    assert getattr(_segmenter(**{name: value}), name) == value


@pytest.mark.parametrize("name, value, message", [
    ("baseline", -1000000.5, r"\[-1000000\.0, 1000000\.0\], got -1000000\.5"),
    ("baseline", 1000000.5, r"\[-1000000\.0, 1000000\.0\], got 1000000\.5"),
    ("baseline", math.inf, r"\[-1000000\.0, 1000000\.0\], got inf"),
    ("level", 0.0, r"\(0, 1\], got 0\.0"),
    ("level", 1.5, r"\(0, 1\], got 1\.5"),
    ("beta", 1000.5, r"\[0\.0, 1000\.0\], got 1000\.5"),
    ("beta", -0.5, r"\[0\.0, 1000\.0\], got -0\.5"),
    ("satellites", 1.5, r"\[0\.0, 1\.0\], got 1\.5"),
    ("satellites", -0.1, r"\[0\.0, 1\.0\], got -0\.1"),
])
def test_out_of_range_numbers_are_refused_with_their_range(name, value, message):
    with pytest.raises(ValueError, match=rf"^{name}: expected a finite value in {message}$"):
        _segmenter(**{name: value})


@pytest.mark.parametrize("name", ["baseline", "level", "beta", "satellites"])
def test_numbers_are_named_when_not_numbers(name):
    with pytest.raises(TypeError, match=rf"^{name}: expected a number, got str$"):
        _segmenter(**{name: "0.5"})


@pytest.mark.parametrize("change, message", [
    ({"feature_version": 2},
     r"^feature_version: this pcnnseg computes features of version 1, the segmenter was "
     r"fitted on version 2; refit it$"),
    ({"selection": "best"},
     r"^selection: expected one of \('thickest', 'largest', 'asymmetry'\), got 'best'$"),
    ({"sequences": ("flair", "dwi")},
     r"^sequences: expected names among \('flair', 't1', 't1ce', 't2'\), got "
     r"\('flair', 'dwi'\)$"),
    ({"sequences": ()},
     r"^sequences: expected names among \('flair', 't1', 't1ce', 't2'\), got \(\)$"),
])
def test_constructor_messages(change, message):
    with pytest.raises(ValueError, match=message):
        _segmenter(**change)


# ------------------------------------------------------------------ storage


def test_save_and_load_keep_every_attribute(tmp_path):
    made = _segmenter(_stump(feature=np.array([8, 0, 0])), sequences=("t2", "flair"),
                      baseline=-0.25, level=0.85, beta=0.1, selection="asymmetry",
                      satellites=0.25, fitted_on=("a", "b"))
    made.save(tmp_path / "seg.npz")
    loaded = Segmenter.load(tmp_path / "seg.npz")
    for name in ("sequences", "baseline", "level", "beta", "selection", "satellites",
                 "fitted_on", "feature_version"):
        assert getattr(loaded, name) == getattr(made, name), name
    assert loaded.selection == "asymmetry"
    for name, array in made.trees.items():
        assert loaded.trees[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded.trees[name], array)


def test_a_file_saved_before_satellites_loads_with_one_component(tmp_path):
    _segmenter(satellites=0.5).save(tmp_path / "seg.npz")
    with np.load(tmp_path / "seg.npz") as data:
        arrays = dict(data)
    header = json.loads(str(arrays["header"]))
    del header["satellites"]
    arrays["header"] = np.array(json.dumps(header))
    np.savez(tmp_path / "old.npz", **arrays)
    assert Segmenter.load(tmp_path / "old.npz").satellites == 1.0


@pytest.mark.parametrize("selection", ["largest", "thickest"])
def test_load_keeps_each_selection(tmp_path, selection):
    _segmenter(selection=selection).save(tmp_path / "seg.npz")
    assert Segmenter.load(tmp_path / "seg.npz").selection == selection


# ------------------------------------------------------------------ features


def _blocks(a, f):
    """Mean over blocks of ``f`` voxels, by loops (the reference)."""
    shape = tuple(n // k for n, k in zip(a.shape, f))
    out = np.empty(shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            for k in range(shape[2]):
                out[i, j, k] = a[i * f[0]:(i + 1) * f[0], j * f[1]:(j + 1) * f[1],
                                 k * f[2]:(k + 1) * f[2]].mean(dtype=np.float64)
    return out


@pytest.mark.parametrize("spacing, factors, z", [((1.0, 1.0, 1.0), (2, 2, 2), 6),
                                                 ((4.0, 1.0, 1.0), (1, 2, 2), 3)])
def test_voxel_features_equal_a_plain_computation(spacing, factors, z):
    # the brain fills x = 1..10 of 12: the end blocks are exactly half brain (not
    # counted), the four blocks between are whole; 2 mm blocks in y and x
    rng = np.random.default_rng(3)
    shape = (z, 8, 12)
    brain = np.zeros(shape, bool)
    brain[:, :, 1:11] = True
    contrasts = {s: rng.normal(size=shape).astype(np.float32) for s in TWO}
    X, coarse_brain, got_factors = voxel_features(contrasts, brain, spacing, TWO)
    assert got_factors == factors and X.dtype == np.float32 and X.shape == (3, 4, 6, 9)
    expected_brain = np.zeros((3, 4, 6), bool)
    expected_brain[:, :, 1:5] = True
    np.testing.assert_array_equal(coarse_brain, expected_brain)
    sigma_2mm = [2.0 / (s * f) for s, f in zip(spacing, factors)]
    sigma_5mm = [5.0 / (s * f) for s, f in zip(spacing, factors)]
    columns = []
    for s in TWO:
        c = _blocks(contrasts[s], factors)
        smooth = ndi.gaussian_filter(c, sigma_5mm)
        # the brain's centre is the array's: mirroring is flipping x
        columns += [c, ndi.gaussian_filter(c, sigma_2mm), smooth, smooth - smooth[..., ::-1]]
    x = np.arange(6)
    columns.append(np.where(expected_brain, 2.0 * np.minimum(x, 5 - x), 0.0))  # mm
    np.testing.assert_allclose(X, np.stack(columns, axis=-1), rtol=1e-5, atol=1e-5)


def test_a_brain_one_block_thick_is_enough():
    brain = np.zeros((2, 4, 6), bool)
    brain[:, :, 2:4] = True
    contrasts = {"flair": np.ones(brain.shape, np.float32)}
    X, coarse_brain, _ = voxel_features(contrasts, brain, (1.0, 1.0, 1.0), ("flair",))
    assert X.shape == (1, 2, 3, 5) and coarse_brain[:, :, 1].all() and coarse_brain.sum() == 2


def test_voxel_feature_errors():
    flat = np.ones((1, 4, 4), bool)
    with pytest.raises(ValueError, match=r"^images: the brain spans \(1, 4, 4\) voxels, less "
                                         r"than one 2 mm block \(2, 2, 2\) of the readout's "
                                         r"grid$"):
        voxel_features({"flair": flat.astype(np.float32)}, flat, (1.0, 1.0, 1.0), ("flair",))
    half = np.zeros((2, 2, 2), bool)
    half[0] = True                                        # exactly half of the one block
    with pytest.raises(ValueError, match=r"^images: no 2 mm block of the readout's grid is "
                                         r"mostly brain$"):
        voxel_features({"flair": half.astype(np.float32)}, half, (1.0, 1.0, 1.0), ("flair",))


def test_upsample_interpolates_between_block_centres():
    coarse = np.array([[[0.0, 1.0]]], np.float32)
    fine = _upsample(coarse, (1, 1, 2), (1, 1, 5))
    # voxel centres at (i + 0.5) / 2 - 0.5 in block units; the fifth, past the last
    # whole block, takes the nearest one's value
    expected = np.interp((np.arange(4) + 0.5) / 2 - 0.5, [0.0, 1.0], [0.0, 1.0])
    assert fine.dtype == np.float32
    np.testing.assert_allclose(fine[0, 0], list(expected) + [1.0], rtol=0, atol=1e-7)


def test_probability_of_a_constant_ensemble():
    leaf = {"feature": [0], "threshold": [0.0], "left": [0], "right": [0], "value": [0.7],
            "is_leaf": [True], "roots": [0]}
    made = _segmenter(leaf, baseline=-0.2)
    brain = np.ones((4, 6, 6), bool)
    brain[0, 0, 0] = False
    contrasts = {"flair": np.random.default_rng(0).normal(size=brain.shape).astype(np.float32)}
    p = made.probability(contrasts, brain, (1.0, 1.0, 1.0))
    expected = np.full(brain.shape, 1.0 / (1.0 + math.exp(-0.5)), np.float32)
    expected[0, 0, 0] = 0.0
    assert p.dtype == np.float32
    np.testing.assert_allclose(p, expected, rtol=1e-6)


# ------------------------------------------------------------------ fitting: options


def test_fit_defaults():
    params = inspect.signature(fit_segmenter).parameters
    defaults = {name: p.default for name, p in params.items() if name != "cases"}
    assert defaults == {"sequences": BRATS_SEQUENCES, "voxels_per_case": 15000,
                        "max_iter": 100, "max_depth": 6, "learning_rate": 0.1,
                        "levels": LEVELS, "betas": (0.0, 0.1),
                        "selections": ("thickest", "asymmetry"),
                        "satellites": (1.0, 0.5, 0.25), "inner_folds": 3, "seed": 0,
                        "progress": None}


@pytest.fixture
def classifier_fits(monkeypatch):
    """The (parameters, X, y) of every HistGradientBoostingClassifier fit."""
    from sklearn import ensemble
    calls = []

    class Recording(ensemble.HistGradientBoostingClassifier):
        def fit(self, X, y, *args, **kwargs):
            calls.append((self.get_params(), np.array(X), np.array(y)))
            return super().fit(X, y, *args, **kwargs)

    monkeypatch.setattr(ensemble, "HistGradientBoostingClassifier", Recording)
    return calls


def _depths(trees):
    """Depth of each tree (edges from the root to the deepest leaf)."""
    out = []
    for root in trees["roots"]:
        deepest, stack = 0, [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if trees["is_leaf"][node]:
                deepest = max(deepest, depth)
            else:
                stack += [(trees["left"][node], depth + 1), (trees["right"][node], depth + 1)]
        out.append(deepest)
    return out


def test_fit_defaults_reach_the_classifier_and_the_sample(classifier_fits):
    # 2 mm voxels: each voxel is a block, more than 10,000 of them normal brain
    images, labels = phantom.make_case((16, 56, 56), seed=0)
    seg = fit_segmenter([_as_case("two_mm", images, labels, (2.0, 2.0, 2.0))], sequences=TWO)
    (params, X, y), = classifier_fits
    assert {k: params[k] for k in ("max_iter", "max_depth", "learning_rate", "early_stopping",
                                   "random_state")} == {
        "max_iter": 100, "max_depth": 6, "learning_rate": 0.1, "early_stopping": False,
        "random_state": 0}
    # 15,000 voxels: all 379 tumor voxels (fewer than 5,000) and 10,000 others
    assert y.sum() == np.count_nonzero(labels) == 379 and (~y).sum() == 10000
    assert seg.trees["roots"].size == 100
    assert (seg.level, seg.beta, seg.selection) == (0.5, 0.0, "thickest")


def test_fit_options_reach_the_classifier(cases, classifier_fits):
    seg = fit_segmenter(cases[:1], sequences=TWO, voxels_per_case=10 ** 6, max_iter=7,
                        max_depth=2, learning_rate=0.3, seed=5)
    (params, X, y), = classifier_fits
    assert {k: params[k] for k in ("max_iter", "max_depth", "learning_rate", "early_stopping",
                                   "random_state")} == {
        "max_iter": 7, "max_depth": 2, "learning_rate": 0.3, "early_stopping": False,
        "random_state": 5}
    # no early stopping: max_iter trees, each at most max_depth deep
    assert seg.trees["roots"].size == 7
    depths = _depths(seg.trees)
    assert max(depths) == 2 and X.shape[0] > 500


def test_training_voxels_a_third_tumor_none_twice(cases, classifier_fits):
    fit_segmenter(cases[:1], sequences=TWO, voxels_per_case=25, max_iter=2)
    fit_segmenter(cases[:1], sequences=TWO, voxels_per_case=10 ** 6, max_iter=2, seed=0)
    fit_segmenter(cases[:1], sequences=TWO, voxels_per_case=10 ** 6, max_iter=2, seed=1)
    (_, X, y), (_, X_all, y_all), (_, X_other, y_other) = classifier_fits
    assert X.shape == (25, 9) and y.sum() == 8 and (~y).sum() == 17     # 25 // 3 tumor
    assert len(np.unique(X, axis=0)) == 25
    # more than there are: every brain block, once, whatever the seed
    assert len(np.unique(X_all, axis=0)) == len(X_all) > 500
    order, other = np.lexsort(X_all.T), np.lexsort(X_other.T)
    np.testing.assert_array_equal(X_all[order], X_other[other])
    np.testing.assert_array_equal(y_all[order], y_other[other])
    assert 8 < y_all.sum() < len(y_all) / 3


def test_fitting_without_scikit_learn_says_what_to_install(cases, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    with pytest.raises(ImportError, match=r"^fit_segmenter needs scikit-learn: pip install "
                                          r"'pcnnseg\[fit\]'$"):
        fit_segmenter(cases[:1], sequences=TWO, max_iter=2)


def test_any_nonzero_label_is_tumor(cases):
    images, labels = cases[0]
    as_core = fit_segmenter([(images, (labels > 0).astype(np.uint8))], sequences=TWO,
                            max_iter=3, voxels_per_case=300)
    as_enhancing = fit_segmenter([(images, (labels > 0) * np.uint8(4))], sequences=TWO,
                                 max_iter=3, voxels_per_case=300)
    for name, array in as_core.trees.items():
        np.testing.assert_array_equal(as_enhancing.trees[name], array)


def test_a_block_counts_as_tumor_when_more_than_half_is(cases):
    images, _ = cases[0]
    slab = np.zeros(SMALL, np.uint8)
    slab[8, 12:28, 12:28] = 2          # one voxel thin: at most half of any 2 mm block
    with pytest.raises(ValueError, match=ONE_CLASS):
        fit_segmenter([(images, slab)], sequences=TWO, max_iter=2)
    with pytest.raises(ValueError, match=ONE_CLASS):
        fit_segmenter([(images, np.zeros(SMALL, np.uint8))], sequences=TWO, max_iter=2)


def test_sequences_by_one_name_or_their_2023_names(cases):
    one = fit_segmenter(cases[:1], sequences="t2f", max_iter=2, voxels_per_case=300)
    assert one.sequences == ("flair",)
    both = fit_segmenter(cases[:1], sequences=("t2w", "t2f"), max_iter=2, voxels_per_case=300)
    assert both.sequences == ("t2", "flair")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"sequences": ("flair", "dwi")}, ValueError,
     r"^sequences: expected distinct names among \('flair', 't1', 't1ce', 't2'\), got "
     r"\('flair', 'dwi'\)$"),
    ({"sequences": ("flair", "t2f")}, ValueError,
     r"^sequences: expected distinct names among \('flair', 't1', 't1ce', 't2'\), got "
     r"\('flair', 'flair'\)$"),
    ({"voxels_per_case": 2}, ValueError, r"^voxels_per_case: expected an integer >= 3, got 2$"),
    ({"inner_folds": 1}, ValueError, r"^inner_folds: expected an integer >= 2, got 1$"),
    ({"inner_folds": 2.0}, TypeError,
     r"^inner_folds: expected an integer >= 2, got float 2\.0$"),
    ({"levels": (1.5,)}, ValueError, r"^levels: expected values in \(0, 1\], got \(1\.5,\)$"),
    ({"levels": ()}, ValueError, r"^levels: expected values in \(0, 1\], got \(\)$"),
    ({"betas": (-0.5,)}, ValueError, r"^betas: expected finite values >= 0, got \(-0\.5,\)$"),
    ({"selections": ("bogus",)}, ValueError,
     r"^selections: expected values among \('thickest', 'largest', 'asymmetry'\), got "
     r"\('bogus',\)$"),
    ({"selections": ()}, ValueError,
     r"^selections: expected values among \('thickest', 'largest', 'asymmetry'\), got \(\)$"),
])
def test_fit_option_messages(cases, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit_segmenter(cases[:2], **{"sequences": TWO, "max_iter": 2, **kwargs})


@pytest.mark.parametrize("bad, error, message", [
    ([], ValueError, r"^cases: expected at least one labelled case, got none$"),
    ([42], TypeError,
     r"^cases: expected BratsCase objects or \(images, labels\) pairs, got int$"),
])
def test_fit_case_messages(bad, error, message):
    with pytest.raises(error, match=message):
        fit_segmenter(bad, sequences=TWO, max_iter=2)


def test_smallest_options_are_accepted(cases):
    # voxels_per_case 3 (one tumor voxel, two others), a level of 1, two folds
    seg = fit_segmenter(cases[:2], sequences=TWO, voxels_per_case=3, max_iter=2,
                        levels=(1.0,), betas=(0.0,), selections=("thickest",), inner_folds=2)
    assert seg.level == 1.0


def test_one_case_keeps_the_first_of_each_option(cases):
    seg = fit_segmenter(cases[:1], sequences=TWO, max_iter=2, voxels_per_case=300,
                        levels=(0.7, 0.5), betas=(0.1, 0.0), selections="asymmetry")
    assert (seg.level, seg.beta, seg.selection) == (0.7, 0.1, "asymmetry")


# ------------------------------------------------------------------ fitting: cases, folds


def test_progress_messages(cases):
    said = []
    fit_segmenter(cases, sequences=TWO, max_iter=2, voxels_per_case=300, progress=said.append,
                  **ONE_DECISION)
    assert said == [f"features of case {i}" for i in range(4)] + [
        "inner fold 1 of 3", "inner fold 2 of 3", "inner fold 3 of 3", "fitted"]
    said.clear()
    fit_segmenter(cases[:2], sequences=TWO, max_iter=2, voxels_per_case=300,
                  progress=said.append, **ONE_DECISION)
    assert said == ["features of case 0", "features of case 1", "inner fold 1 of 2",
                    "inner fold 2 of 2", "fitted"]


def test_cases_and_pairs_fit_alike_and_keep_their_names(cases):
    (images0, labels0), pair1 = cases[0], cases[1]
    said = []
    from_case = fit_segmenter([_as_case("Brats18_A", images0, labels0), pair1], sequences=TWO,
                              max_iter=3, voxels_per_case=300, progress=said.append)
    from_pairs = fit_segmenter(cases[:2], sequences=TWO, max_iter=3, voxels_per_case=300)
    assert from_case.fitted_on == ("Brats18_A", "case 1")
    assert said[:2] == ["features of Brats18_A", "features of case 1"]
    # pairs are 1 mm isotropic
    for name, array in from_pairs.trees.items():
        np.testing.assert_array_equal(from_case.trees[name], array)
    assert (from_case.level, from_case.beta, from_case.selection) == (
        from_pairs.level, from_pairs.beta, from_pairs.selection)


def test_a_case_uses_its_own_spacing(cases):
    images, labels = cases[0]
    # 2 mm slices: blocks of one slice, not two (as for a pair, 1 mm)
    thick = fit_segmenter([_as_case("thick", images, labels, (1.0, 1.0, 2.0))], sequences=TWO,
                          max_iter=3, voxels_per_case=10 ** 6)
    iso = fit_segmenter([cases[0]], sequences=TWO, max_iter=3, voxels_per_case=10 ** 6)
    assert not all(np.array_equal(thick.trees[k], iso.trees[k]) for k in iso.trees)


@pytest.fixture
def fold_log(monkeypatch):
    """Names of the cases of each tree fitting and each scoring, in order."""
    log = []
    fit_trees, decision_dice = segmenter_module._fit_trees, segmenter_module._decision_dice

    def logged_fit(prepared, *args, **kwargs):
        log.append(("fit", [p.name for p in prepared]))
        return fit_trees(prepared, *args, **kwargs)

    def logged_dice(trial, prepared, decisions):
        log.append(("score", [p.name for p in prepared]))
        return decision_dice(trial, prepared, decisions)

    monkeypatch.setattr(segmenter_module, "_fit_trees", logged_fit)
    monkeypatch.setattr(segmenter_module, "_decision_dice", logged_dice)
    return log


def test_each_case_is_held_out_once_from_its_folds_trees(cases, fold_log):
    fit_segmenter(cases, sequences=TWO, max_iter=2, voxels_per_case=300, **ONE_DECISION)
    names = [f"case {i}" for i in range(4)]
    assert [kind for kind, _ in fold_log] == ["fit", "score"] * 3 + ["fit"]
    held = [fold_log[i][1] for i in (1, 3, 5)]
    train = [fold_log[i][1] for i in (0, 2, 4)]
    assert sorted(sum(held, [])) == names
    for t, h in zip(train, held):
        assert h and sorted(t + h) == names
    assert fold_log[-1][1] == names


def test_the_decision_with_the_best_mean_dice_over_cases_is_kept(cases, monkeypatch):
    # per case, the Dice of levels 0.5, 0.6, 0.7; folds of 2, 1 and 1 cases
    table = {"case 0": [0.0, 1.0, 0.0], "case 3": [0.0, 1.0, 0.0],
             "case 1": [1.0, 0.0, 0.6], "case 2": [0.0, 0.0, 0.6]}
    means = np.mean(list(table.values()), axis=0)
    assert means.argmax() == 1

    def scores(trial, prepared, decisions):
        assert len(decisions) == 3
        return np.mean([table[p.name] for p in prepared], axis=0)

    monkeypatch.setattr(segmenter_module, "_decision_dice", scores)
    seg = fit_segmenter(cases, sequences=TWO, max_iter=2, voxels_per_case=300,
                        levels=(0.5, 0.6, 0.7), betas=(0.0,), selections=("thickest",),
                        satellites=(1.0,))
    assert seg.level == 0.6


def test_the_selection_and_beta_chosen_are_kept(cases, monkeypatch):
    # decisions in the order (level, beta, selection, satellites): the last one wins
    def scores(trial, prepared, decisions):
        return np.arange(len(decisions), dtype=float)

    monkeypatch.setattr(segmenter_module, "_decision_dice", scores)
    seg = fit_segmenter(cases[:2], sequences=TWO, max_iter=2, voxels_per_case=300,
                        levels=(0.5, 0.6), betas=(0.0, 0.2),
                        selections=("thickest", "largest"), satellites=(1.0, 0.3))
    assert (seg.level, seg.beta, seg.selection, seg.satellites) == (0.6, 0.2, "largest", 0.3)


# ------------------------------------------------------------------ scoring a decision

BLOBS_SHAPE = (16, 32, 48)


def _blobs():
    """A probability with two blobs: a large slab 4 voxels thin across the midline
    (largest, but nothing 2 steps inside, and symmetric), and a smaller cube to one
    side (thickest, asymmetric)."""
    slab = np.zeros(BLOBS_SHAPE, bool)
    slab[6:10, 4:28, 12:36] = True
    cube = np.zeros(BLOBS_SHAPE, bool)
    cube[4:12, 12:20, 38:46] = True
    p = 0.05 + 0.9 * ndi.gaussian_filter((slab | cube).astype(np.float32), 0.7)
    return slab, cube, p.astype(np.float32)


class _FixedProbability(Segmenter):
    """A segmenter whose probability is the blobs' (on the uncropped, all-brain grid)."""

    def probability(self, contrasts, brain, spacing):
        assert brain.shape == BLOBS_SHAPE and brain.all()
        return _blobs()[2].copy()


def test_a_decision_scores_the_mean_dice_segment_tumor_reaches(monkeypatch):
    slab, cube, _ = _blobs()
    rng = np.random.default_rng(0)
    images = {s: (100.0 + 10.0 * rng.random(BLOBS_SHAPE)).astype(np.float32) for s in TWO}
    truths = [cube, slab | cube]
    spacing = (1.5, 1.0, 1.0)
    prepared = [_Prepared(f"case {i}", images, truth.astype(np.uint8), spacing, TWO)
                for i, truth in enumerate(truths)]
    fixed = _FixedProbability(sequences=TWO, trees=_stump(), baseline=0.0, level=0.5, beta=0.0)
    decisions = [(0.5, 0.0, "thickest", 1.0), (0.5, 0.0, "largest", 1.0),
                 (0.5, 0.0, "asymmetry", 1.0), (0.9, 0.0, "thickest", 1.0),
                 (0.9, 0.4, "thickest", 1.0), (0.9, 0.4, "largest", 1.0),
                 (0.5, 1.0, "thickest", 1.0), (0.5, 0.0, "largest", 0.0)]
    per_case = np.array([[dice(segment_tumor(images, spacing=spacing,
                                             segmenter=dataclasses.replace(
                                                 fixed, level=lv, beta=b, selection=s,
                                                 satellites=f)), t)
                          for t in truths] for lv, b, s, f in decisions])
    # the selections, the satellites and the linking matter here
    assert per_case[0, 0] > 0.9 and per_case[1, 0] < 0.5 and per_case[2, 0] > 0.9
    assert per_case[7, 1] > 0.9 > per_case[0, 1]
    assert per_case[3, 0] != per_case[4, 0]
    # and the slices' spacing, through the linking (0.197 with 1 mm slices)
    assert 0.21 < per_case[6, 0] < 0.22
    np.testing.assert_allclose(_decision_dice(fixed, prepared, decisions),
                               per_case.mean(axis=1), rtol=1e-12, atol=1e-12)
