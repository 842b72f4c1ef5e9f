"""Fitted whole-tumor readout: gradient-boosted trees on per-voxel features.

The optional, trained alternative to the untrained stimulus of
:mod:`pcnnseg.tumor`. On a grid of about 2 mm, each brain voxel gets, for each
sequence, its contrast against normal tissue
(:func:`pcnnseg.preprocess.tissue_contrast`), that contrast smoothed at 2 and
5 mm, and the left-right asymmetry of the 5 mm map, plus its distance to the
edge of the brain (4 x 4 + 1 = 17 features with the four BraTS sequences). A
gradient-boosted tree ensemble (scikit-learn's
``HistGradientBoostingClassifier``, Ke et al. 2017) turns them into a tumor
probability, which is interpolated back to the voxel grid and handed to the
same 3-D PCNN, selection and cleaning as the untrained method, in place of its
stimulus. The decision level on the probability (and the linking strength) are
chosen by an inner cross-validation on the training cases.

Fitting needs scikit-learn (``pip install "pcnnseg[fit]"``); a fitted
:class:`Segmenter` is plain arrays, saved to ``.npz`` and evaluated by the Numba
kernel :func:`pcnnseg_kernels.trees.ensemble_sum`, so using one does not.

References
----------
.. [1] G. Ke et al., "LightGBM: a highly efficient gradient boosting decision
   tree", NeurIPS 2017 (the histogram algorithm scikit-learn implements).
"""
import io as _io
import json
import os
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit

from pcnnseg_kernels import ensemble_sum
from pcnnseg.io import BRATS_SEQUENCES, BratsCase, write_bytes_atomic
from pcnnseg.validation import check_int, check_number

__all__ = ["Segmenter", "fit_segmenter", "default_segmenter", "voxel_features",
           "FEATURE_VERSION"]

#: Version of the feature definition; a saved Segmenter of another version is refused.
FEATURE_VERSION = 1
_GRID_MM = 2.0
_SIGMAS_MM = (2.0, 5.0)
_TREE_ARRAYS = ("feature", "threshold", "left", "right", "value", "is_leaf", "roots")
_SELECTIONS = ("thickest", "largest", "asymmetry")
#: Candidate decision levels on the probability. The training voxels hold a third
#: tumor, far above its share of a brain, so the best level sits well above 0.5;
#: with a grid ending at 0.8, every fold of the benchmark chose 0.8, its edge.
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
#: Candidate shares of the best component's score at which other components are
#: kept too (see :func:`pcnnseg.segment_tumor`'s ``satellites``).
SATELLITES = (1.0, 0.5, 0.25)
_DEFAULT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "segmenter.npz")


def _factors(spacing):
    """Block size per axis that brings ``spacing`` (mm) closest to the 2 mm grid."""
    return tuple(max(1, int(round(_GRID_MM / s))) for s in spacing)


def _block_mean(a, factors):
    """Mean over blocks of ``factors`` voxels (trailing voxels that fill no block dropped)."""
    shape = tuple(n // f for n, f in zip(a.shape, factors))
    trimmed = a[tuple(slice(0, n * f) for n, f in zip(shape, factors))]
    split = []
    for n, f in zip(shape, factors):
        split += [n, f]
    return trimmed.reshape(split).mean(axis=tuple(range(1, 2 * len(shape), 2)))


def _upsample(coarse, factors, shape):
    """Linear interpolation of a block grid back to the voxel grid of ``shape``."""
    fine = ndi.zoom(coarse, factors, order=1, mode="nearest", grid_mode=True)
    out = np.zeros(shape, dtype=np.float32)
    common = tuple(slice(0, min(a, b)) for a, b in zip(shape, fine.shape))
    out[common] = fine[common]
    # voxels past the last whole block take the nearest block's value
    for axis, (n, m) in enumerate(zip(shape, fine.shape)):
        if n > m:
            index = [slice(None)] * len(shape)
            index[axis] = slice(m, n)
            edge = [slice(None)] * len(shape)
            edge[axis] = slice(m - 1, m)
            out[tuple(index)] = out[tuple(edge)]
    return out


def _mirror(a, brain):
    from pcnnseg.tumor import _mirror as mirror
    return mirror(a, brain)


def voxel_features(contrasts, brain, spacing, sequences):
    """Per-voxel features of the readout, on a grid of about 2 mm.

    Parameters
    ----------
    contrasts : dict of str to (Z, Y, X) float32 ndarray
        :func:`pcnnseg.preprocess.tissue_contrast` of each sequence.
    brain : (Z, Y, X) bool ndarray
    spacing : (float, float, float)
        Voxel size (Z, Y, X) in mm.
    sequences : sequence of str
        Order of the sequences in the feature vector.

    Returns
    -------
    features : (z, y, x, 4 len(sequences) + 1) float32 ndarray
        Per sequence: contrast, contrast smoothed at 2 and 5 mm, asymmetry of
        the 5 mm map; then the distance to the brain's edge in mm.
    coarse_brain : (z, y, x) bool ndarray
        Blocks more than half inside the brain.
    factors : tuple of int
        Block size per axis.
    """
    factors = _factors(spacing)
    if any(n < f for n, f in zip(brain.shape, factors)):
        raise ValueError(f"images: the brain spans {brain.shape} voxels, less than one "
                         f"{_GRID_MM:g} mm block {factors} of the readout's grid")
    coarse_brain = _block_mean(brain.astype(np.float32), factors) > 0.5
    if not coarse_brain.any():
        raise ValueError(f"images: no {_GRID_MM:g} mm block of the readout's grid is mostly "
                         f"brain")
    coarse_spacing = tuple(s * f for s, f in zip(spacing, factors))
    columns = []
    for name in sequences:
        c = _block_mean(contrasts[name], factors).astype(np.float32)
        columns.append(c)
        for sigma in _SIGMAS_MM:
            columns.append(ndi.gaussian_filter(c, [sigma / s for s in coarse_spacing]))
        columns.append(columns[-1] - _mirror(columns[-1], coarse_brain))
    columns.append(ndi.distance_transform_edt(coarse_brain, sampling=coarse_spacing))
    return np.stack(columns, axis=-1).astype(np.float32), coarse_brain, factors


def _case_inputs(case):
    """(images dict, labels or None, spacing) of a BratsCase or an (images, labels) pair."""
    if isinstance(case, BratsCase):
        spacing = tuple(reversed(case.geometry.spacing))
        return case.images, case.labels, spacing
    try:
        images, labels = case
    except (TypeError, ValueError):
        raise TypeError(f"cases: expected BratsCase objects or (images, labels) pairs, got "
                        f"{type(case).__name__}") from None
    return images, labels, (1.0, 1.0, 1.0)


@dataclass(frozen=True, eq=False)
class Segmenter:
    """A fitted whole-tumor readout; make one with :func:`fit_segmenter`.

    Attributes
    ----------
    sequences : tuple of str
        The sequences it needs, in feature order.
    trees : dict of str to ndarray
        The tree ensemble as node arrays (see :func:`pcnnseg_kernels.trees.ensemble_sum`).
    baseline : float
        Raw score added to the trees' sum; the probability is its logistic.
    level : float
        Probability at which an isolated voxel counts as tumor (the PCNN's
        stop level).
    beta : float
        Linking strength of the PCNN on the probability.
    selection : str
        Which component is kept (see :func:`pcnnseg.segment_tumor`).
    satellites : float
        Share of the kept component's score at which other components are
        kept too (see :func:`pcnnseg.segment_tumor`).
    fitted_on : tuple of str
        Names of the training cases.
    feature_version : int
    """

    sequences: tuple
    trees: dict = field(repr=False)
    baseline: float
    level: float
    beta: float
    selection: str = "thickest"
    satellites: float = 1.0
    fitted_on: tuple = ()
    feature_version: int = FEATURE_VERSION

    def __post_init__(self):
        try:
            trees = {a: np.asarray(self.trees[a]) for a in _TREE_ARRAYS}
        except (KeyError, TypeError):
            raise ValueError(f"trees: expected a dict of the arrays {_TREE_ARRAYS}") from None
        if set(self.trees) != set(_TREE_ARRAYS) or any(
                a.dtype.kind not in "biuf" for a in trees.values()):
            raise ValueError(f"trees: expected real arrays named {_TREE_ARRAYS}, got "
                             f"{sorted(self.trees)}")
        for name, dtype in (("feature", np.int64), ("threshold", np.float64),
                            ("left", np.int64), ("right", np.int64), ("value", np.float64),
                            ("is_leaf", bool), ("roots", np.int64)):
            trees[name] = np.ascontiguousarray(trees[name], dtype=dtype)
        object.__setattr__(self, "trees", trees)
        object.__setattr__(self, "sequences", tuple(self.sequences))
        object.__setattr__(self, "fitted_on", tuple(self.fitted_on))
        for name in ("baseline", "level", "beta", "satellites"):
            object.__setattr__(self, name, float(check_number(getattr(self, name), name)))
        if self.feature_version != FEATURE_VERSION:
            raise ValueError(f"feature_version: this pcnnseg computes features of version "
                             f"{FEATURE_VERSION}, the segmenter was fitted on version "
                             f"{self.feature_version}; refit it")
        if self.selection not in _SELECTIONS:
            raise ValueError(f"selection: expected one of {_SELECTIONS}, got {self.selection!r}")
        unknown = [s for s in self.sequences if s not in BRATS_SEQUENCES]
        if not self.sequences or unknown:
            raise ValueError(f"sequences: expected names among {BRATS_SEQUENCES}, got "
                             f"{self.sequences}")
        n_features = 4 * len(self.sequences) + 1
        t = self.trees
        k = t["feature"].shape[0]
        ok = (all(t[a].ndim == 1 for a in _TREE_ARRAYS)
              and all(t[a].shape[0] == k for a in _TREE_ARRAYS if a != "roots")
              and t["roots"].size > 0 and k > 0)
        if ok:
            internal = ~t["is_leaf"]
            ok = (np.all((t["roots"] >= 0) & (t["roots"] < k))
                  and np.all((t["feature"][internal] >= 0) & (t["feature"][internal] < n_features))
                  and np.all((t["left"][internal] > np.arange(k)[internal])
                             & (t["left"][internal] < k))
                  and np.all((t["right"][internal] > np.arange(k)[internal])
                             & (t["right"][internal] < k))
                  and np.all(np.isfinite(t["value"])) and np.all(~np.isnan(t["threshold"])))
        if not ok:
            raise ValueError("trees: malformed tree arrays (children must come after their "
                             "node, features and roots in range, values finite)")
        for name, low, high in (("baseline", -1e6, 1e6), ("level", 0.0, 1.0), ("beta", 0.0, 1e3),
                                ("satellites", 0.0, 1.0)):
            value = getattr(self, name)
            if not (np.isfinite(value) and low <= value <= high) or (name == "level" and value == 0):
                raise ValueError(f"{name}: expected a finite value in "
                                 f"{'(0, 1]' if name == 'level' else f'[{low}, {high}]'}, got {value}")

    def probability(self, contrasts, brain, spacing):
        """Tumor probability on the voxel grid of ``brain`` (0 outside it).

        Parameters
        ----------
        contrasts : dict of str to ndarray
            :func:`pcnnseg.preprocess.tissue_contrast` of at least
            :attr:`sequences`, volumes of ``brain``'s shape.
        brain : (Z, Y, X) bool ndarray
        spacing : (float, float, float)

        Returns
        -------
        float32 ndarray, shape of ``brain``
        """
        features, coarse_brain, factors = voxel_features(contrasts, brain, spacing,
                                                         self.sequences)
        coarse = np.zeros(coarse_brain.shape, dtype=np.float32)
        if coarse_brain.any():
            t = self.trees
            raw = ensemble_sum(np.ascontiguousarray(features[coarse_brain]), t["feature"],
                               t["threshold"], t["left"], t["right"], t["value"],
                               t["is_leaf"], t["roots"]) + self.baseline
            coarse[coarse_brain] = expit(raw)
        p = _upsample(coarse, factors, brain.shape)
        p[~brain] = 0.0
        return np.clip(p, 0.0, 1.0)

    # ------------------------------------------------------------------ storage

    def save(self, path):
        """Write the segmenter to ``path`` (``.npz``), atomically.

        Plain arrays and a JSON header, read back with ``allow_pickle=False``:
        loading a file runs no code from it.
        """
        header = {"sequences": list(self.sequences), "baseline": self.baseline,
                  "level": self.level, "beta": self.beta, "selection": self.selection,
                  "satellites": self.satellites, "fitted_on": list(self.fitted_on),
                  "feature_version": self.feature_version}
        buffer = _io.BytesIO()
        np.savez_compressed(buffer, header=np.array(json.dumps(header)), **self.trees)
        write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path):
        """Read a segmenter written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not a segmenter, is corrupt, or holds invalid values.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path: no such segmenter file: {path!r}")
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                trees = {a: data[a] for a in _TREE_ARRAYS}
            return cls(sequences=tuple(header["sequences"]), trees=trees,
                       baseline=float(header["baseline"]), level=float(header["level"]),
                       beta=float(header["beta"]),
                       selection=header.get("selection", "thickest"),
                       satellites=float(header.get("satellites", 1.0)),
                       fitted_on=tuple(header["fitted_on"]),
                       feature_version=int(header["feature_version"]))
        except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"path: {path!r} is not a valid segmenter file ({err})") from None


def default_segmenter():
    """The readout bundled with pcnnseg, fitted on every development case.

    Fitted by ``python benchmarks/segmentation.py --save-segmenter`` on the 22
    cases of ``../shared/data`` (10 BraTS 2018, 12 BraTS-Africa 2023) with the
    four sequences. Cross-validated whole-tumor Dice of the same fitting (each
    fold fitted without its held-out cases): 0.834 (BraTS 2018 0.840,
    BraTS-Africa 0.829; ``benchmarks/results/segmentation.md``).

    Returns
    -------
    Segmenter

    Raises
    ------
    FileNotFoundError
        If the package was installed without its data.
    """
    return Segmenter.load(_DEFAULT_FILE)


def _export_trees(model):
    """Node arrays of a fitted binary HistGradientBoostingClassifier."""
    columns = {a: [] for a in _TREE_ARRAYS}
    offset = 0
    for predictors in model._predictors:
        nodes = predictors[0].nodes
        columns["roots"].append(np.array([offset]))
        columns["feature"].append(nodes["feature_idx"].astype(np.int64))
        columns["threshold"].append(nodes["num_threshold"].astype(np.float64))
        columns["left"].append(nodes["left"].astype(np.int64) + offset)
        columns["right"].append(nodes["right"].astype(np.int64) + offset)
        columns["value"].append(nodes["value"].astype(np.float64))
        columns["is_leaf"].append(nodes["is_leaf"].astype(bool))
        offset += len(nodes)
    trees = {a: np.concatenate(v) for a, v in columns.items()}
    leaf = trees["is_leaf"]
    trees["left"][leaf] = trees["right"][leaf] = 0   # unused; keep the arrays in range
    trees["feature"][leaf] = 0
    return trees, float(np.ravel(model._baseline_prediction)[0])


class _Prepared:
    """One training case reduced to what fitting needs."""

    def __init__(self, name, images, labels, spacing, sequences):
        from pcnnseg.morphology import bounding_box
        from pcnnseg.tumor import _brain, _contrasts, as_sequences

        seqs = as_sequences(images)
        missing = [s for s in sequences if s not in seqs]
        if missing:
            raise ValueError(f"cases: case {name!r} lacks the sequence(s) {missing}")
        if labels is None:
            raise ValueError(f"cases: case {name!r} has no labels to learn from")
        labels = np.asarray(labels)
        brain_full = _brain(seqs, None)
        if labels.shape != brain_full.shape:
            raise ValueError(f"cases: labels of {name!r} have shape {labels.shape}, images "
                             f"{brain_full.shape}")
        box = bounding_box(brain_full)
        self.name, self.spacing = name, spacing
        self.brain = brain_full[box]
        self.contrasts = _contrasts({s: seqs[s][box] for s in sequences}, self.brain, sequences)
        self.truth = labels[box] > 0
        self.features, self.coarse_brain, factors = voxel_features(
            self.contrasts, self.brain, spacing, sequences)
        self.target = _block_mean(self.truth.astype(np.float32), factors) > 0.5

    def sample(self, rng, n):
        """Up to ``n / 3`` tumor and ``2 n / 3`` other brain voxels (features, targets)."""
        X = self.features[self.coarse_brain]
        y = self.target[self.coarse_brain]
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        take = np.concatenate([rng.choice(pos, min(n // 3, pos.size), replace=False),
                               rng.choice(neg, min(n - n // 3, neg.size), replace=False)])
        return X[take], y[take]


def _fit_trees(prepared, rng, voxels_per_case, max_iter, max_depth, learning_rate, seed):
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:
        raise ImportError("fit_segmenter needs scikit-learn: pip install 'pcnnseg[fit]'") from None
    samples = [p.sample(rng, voxels_per_case) for p in prepared]
    X = np.concatenate([s[0] for s in samples])
    y = np.concatenate([s[1] for s in samples])
    if y.all() or not y.any():
        raise ValueError("cases: the training voxels hold only one class (no tumor, or no "
                         "normal brain); give labelled cases with tumors")
    model = HistGradientBoostingClassifier(max_iter=max_iter, max_depth=max_depth,
                                           learning_rate=learning_rate, early_stopping=False,
                                           random_state=seed)
    return _export_trees(model.fit(X, y))


def _decision_dice(segmenter_like, prepared, decisions):
    """Mean whole-tumor Dice of each (level, beta, selection, satellites) on ``prepared``
    cases."""
    from pcnnseg.metrics import dice
    from pcnnseg.tumor import _finish_whole, fired

    scores = np.zeros(len(decisions))
    for p in prepared:
        prob = segmenter_like.probability(p.contrasts, p.brain, p.spacing)
        candidates = {}
        for i, (level, beta, selection, satellites) in enumerate(decisions):
            if (level, beta) not in candidates:
                candidates[level, beta] = fired(prob, level, beta=beta, spacing=p.spacing)
            mask = _finish_whole(candidates[level, beta], prob, p.brain, p.spacing, selection,
                                 satellites)
            scores[i] += dice(mask, p.truth) / len(prepared)
    return scores


def fit_segmenter(cases, *, sequences=BRATS_SEQUENCES, voxels_per_case=15000, max_iter=100,
                  max_depth=6, learning_rate=0.1, levels=LEVELS,
                  betas=(0.0, 0.1), selections=("thickest", "asymmetry"),
                  satellites=SATELLITES, inner_folds=3,
                  seed=0, progress=None):
    """Fit a whole-tumor readout on labelled cases.

    Parameters
    ----------
    cases : iterable of BratsCase, or of (images, labels) pairs
        Labelled cases (labels: any non-zero value is tumor). ``images`` as
        :func:`pcnnseg.segment_tumor` takes them; pairs are taken as 1 mm
        isotropic, cases use their geometry.
    sequences : sequence of str
        Sequences the readout uses; every case must have them.
    voxels_per_case : int
        Training voxels drawn per case (a third tumor, two thirds other brain).
    max_iter, max_depth, learning_rate
        Of the gradient boosting (trees, their depth, shrinkage).
    levels, betas : sequences of float
        Candidate decision levels on the probability and linking strengths.
    selections : sequence of str
        Candidate component selections (see :func:`pcnnseg.segment_tumor`).
    satellites : sequence of float
        Candidate shares at which other components are kept too (see
        :func:`pcnnseg.segment_tumor`), in [0, 1].
        The (level, beta, selection, satellites) with the best mean Dice over an inner
        cross-validation on the cases (``inner_folds`` folds by case) is kept.
        With fewer than two cases there is nothing to cross-validate: the first
        of each is kept.
    inner_folds : int
    seed : int
        Seeds the voxel sampling and the trees.
    progress : callable, optional
        Called with a message string after each stage.

    Returns
    -------
    Segmenter

    Raises
    ------
    ImportError
        Without scikit-learn.
    TypeError, ValueError
        For invalid cases (missing sequences or labels, shapes), no case, or
        invalid options.

    Examples
    --------
    >>> from pcnnseg import phantom, segment_tumor
    >>> from pcnnseg.metrics import dice
    >>> pairs = [phantom.make_case((32, 96, 96), seed=s) for s in range(3)]
    >>> seg = fit_segmenter(pairs, sequences=("flair", "t2"), max_iter=20)
    >>> images, labels = phantom.make_case((32, 96, 96), seed=7)
    >>> bool(dice(segment_tumor(images, segmenter=seg), labels > 0) > 0.8)
    True
    """
    from pcnnseg.io import SEQUENCE_ALIASES

    if isinstance(sequences, str):
        sequences = (sequences,)
    sequences = tuple(SEQUENCE_ALIASES.get(s, s) for s in sequences)
    if not sequences or any(s not in BRATS_SEQUENCES for s in sequences) \
            or len(set(sequences)) != len(sequences):
        raise ValueError(f"sequences: expected distinct names among {BRATS_SEQUENCES}, got "
                         f"{sequences}")
    voxels_per_case = check_int(voxels_per_case, "voxels_per_case", 3)
    inner_folds = check_int(inner_folds, "inner_folds", 2)
    # Checked here, not by scikit-learn: its errors would come only after every
    # case's features were computed, and without this function's argument names.
    max_iter = check_int(max_iter, "max_iter", 1)
    max_depth = check_int(max_depth, "max_depth", 1)
    learning_rate = check_number(learning_rate, "learning_rate")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate: expected a finite number > 0, got {learning_rate}")
    seed = check_int(seed, "seed", 0, 2**32 - 1)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable progress(message) or None, got "
                        f"{type(progress).__name__}")
    levels, betas = tuple(float(v) for v in levels), tuple(float(b) for b in betas)
    if not levels or not all(0 < v <= 1 for v in levels):
        raise ValueError(f"levels: expected values in (0, 1], got {levels}")
    if not betas or not all(np.isfinite(b) and b >= 0 for b in betas):
        raise ValueError(f"betas: expected finite values >= 0, got {betas}")
    selections = (selections,) if isinstance(selections, str) else tuple(selections)
    if not selections or any(s not in _SELECTIONS for s in selections):
        raise ValueError(f"selections: expected values among {_SELECTIONS}, got {selections}")
    satellites = (satellites,) if isinstance(satellites, (int, float)) else tuple(satellites)
    if not satellites or not all(isinstance(v, (int, float)) and 0 <= v <= 1
                                 for v in satellites):
        raise ValueError(f"satellites: expected values in [0, 1], got {satellites}")
    decisions = [(lv, b, s, f) for lv in levels for b in betas for s in selections
                 for f in satellites]
    say = progress or (lambda message: None)

    prepared = []
    for i, case in enumerate(cases):
        images, labels, spacing = _case_inputs(case)
        name = case.name if isinstance(case, BratsCase) else f"case {i}"
        prepared.append(_Prepared(name, images, labels, spacing, sequences))
        say(f"features of {name}")
    if not prepared:
        raise ValueError("cases: expected at least one labelled case, got none")

    rng = np.random.default_rng(seed)
    fit = dict(voxels_per_case=voxels_per_case, max_iter=max_iter, max_depth=max_depth,
               learning_rate=learning_rate, seed=seed)
    best = decisions[0]
    if len(prepared) >= 2:
        folds = min(inner_folds, len(prepared))
        scores = np.zeros(len(decisions))
        for k in range(folds):
            train = [p for i, p in enumerate(prepared) if i % folds != k]
            held = [p for i, p in enumerate(prepared) if i % folds == k]
            trees, baseline = _fit_trees(train, rng, **fit)
            trial = Segmenter(sequences, trees, baseline, levels[0], betas[0])
            scores += _decision_dice(trial, held, decisions) * len(held) / len(prepared)
            say(f"inner fold {k + 1} of {folds}")
        best = decisions[int(np.argmax(scores))]
    trees, baseline = _fit_trees(prepared, rng, **fit)
    say("fitted")
    return Segmenter(sequences=sequences, trees=trees, baseline=baseline, level=best[0],
                     beta=best[1], selection=best[2], satellites=best[3],
                     fitted_on=tuple(p.name for p in prepared))
