"""PCNN model parameter sets and their mapping onto the canonical kernel update.

Every model here is a frozen dataclass of its published parameters. All of them
run on the same kernels through :meth:`kernel_params`, which maps the model onto
the canonical update (0-based iteration ``k``; the papers' ``n = k + 1``)::

    F[k] = DECAY_F F[k-1] + V_F (M * Y[k-1]) + S                  (1)
    L[k] = DECAY_L L[k-1] + V_L (W * Y[k-1])                      (2)
    U[k] = DECAY_U U[k-1] + F[k] (1 + BETA L[k])                  (3)
    Y[k] = U[k] > E[k-1]                                          (4)
    E[k] = DECAY_E E[k-1] + V_E Y[k]                              (5)

starting from ``F = L = U = Y = 0`` and ``E = E0``. ``*`` is the 3x3 synaptic sum
over the 8-neighbourhood (pixels outside the image never pulse).

Conventions chosen where publications differ:

- a pulse compares the internal activity with the threshold of the *previous*
  iteration (4); SCM's ``E[n] = g E[n-1] + h Y[n-1]``, ``Y[n] = U[n] > E[n]`` is the
  same recursion with the threshold index shifted by one;
- decays are ``exp(-alpha)`` with the natural logarithm, and SPCNN's
  ``alpha_f = ln(1 / sigma)`` uses the natural logarithm too;
- outputs are hard pulses; SCM's sigmoid output ``1 / (1 + exp(-gamma (U - E)))``
  exceeds 0.5 exactly when ``U > E``, so the pulse is the same.
"""
from dataclasses import dataclass, field
import math

import numpy as np
from skimage.filters import threshold_otsu

from pcnnseg_kernels import layout as _layout
from pcnnseg.validation import normalize

__all__ = ["PCNN", "SPCNN", "ICM", "SCM", "CHEN_WEIGHTS", "SCM_WEIGHTS", "otsu_threshold"]

#: Synaptic weights of Chen et al. (2011), also the default for PCNN and ICM.
CHEN_WEIGHTS = ((0.5, 1.0, 0.5), (1.0, 0.0, 1.0), (0.5, 1.0, 0.5))
#: Synaptic weights of Zhan et al. (2009).
SCM_WEIGHTS = ((0.1091, 0.1409, 0.1091), (0.1409, 0.0, 0.1409), (0.1091, 0.1409, 0.1091))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _weights_array(name, weights):
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (3, 3):
        raise ValueError(f"{name}: expected 3x3 synaptic weights, got shape {w.shape}")
    if not np.all(np.isfinite(w) & (np.abs(w) <= _FLOAT32_MAX)):
        raise ValueError(f"{name}: synaptic weights must be finite in float32, got {w.tolist()}")
    return tuple(tuple(float(x) for x in row) for row in w)


def _check_finite(model, names, nonnegative=()):
    for name in names:
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
        if not (math.isfinite(value) and abs(value) <= _FLOAT32_MAX):
            raise ValueError(f"{name}: expected a number finite in float32 (the kernels' "
                             f"precision), got {value}")
        if name in nonnegative and value < 0:
            raise ValueError(f"{name}: expected a value >= 0, got {value}")


def _check_decay_factors(model, names):
    for name in names:
        if getattr(model, name) > 1:
            raise ValueError(f"{name}: expected a decay factor in [0, 1], got {getattr(model, name)}")


def _pack(decay_f=0.0, v_f=0.0, decay_l=0.0, v_l=0.0, decay_u=0.0, beta=0.0,
          decay_e=0.0, v_e=0.0, e0=0.0):
    p = np.zeros(_layout.N_PARAMS, dtype=np.float32)
    p[_layout.DECAY_F] = decay_f
    p[_layout.V_F] = v_f
    p[_layout.DECAY_L] = decay_l
    p[_layout.V_L] = v_l
    p[_layout.DECAY_U] = decay_u
    p[_layout.BETA] = beta
    p[_layout.DECAY_E] = decay_e
    p[_layout.V_E] = v_e
    p[_layout.E0] = e0
    return p


def otsu_threshold(S):
    """Otsu's threshold of a [0, 1] stimulus, over 256 bins spanning its range.

    The same bins as :func:`skimage.filters.threshold_otsu`, counted with
    ``np.bincount`` (a third of the time of its ``np.histogram`` call on these
    machines) and handed to it.

    Parameters
    ----------
    S : float32 ndarray, finite, not constant

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For a stimulus with NaN / inf values or a constant one (no threshold).
    """
    lo, hi = float(S.min()), float(S.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("S: expected a finite stimulus (see pcnnseg.normalize), got NaN "
                         "or infinite values")
    if not hi > lo:
        raise ValueError(f"S: a constant stimulus (every value is {lo}) has no Otsu threshold")
    scale = 256.0 / (hi - lo)
    # A range below 256 / FLOAT32_MAX (denormal differences) needs float64 bins.
    work = np.float32 if scale <= _FLOAT32_MAX else np.float64
    index = ((S.astype(work, copy=False) - work(lo)) * work(scale)).astype(np.intp)
    np.clip(index, 0, 255, out=index)
    counts = np.bincount(index.ravel(), minlength=256)
    centers = lo + (np.arange(256) + 0.5) * ((hi - lo) / 256.0)
    return float(threshold_otsu(hist=(counts, centers)))


class Model:
    """Base of the parameter sets: each maps itself onto the canonical kernel update."""

    def kernel_params(self):
        """Canonical kernel parameters.

        Returns
        -------
        params : (9,) float32 ndarray
            Indexed by the constants of :mod:`pcnnseg_kernels.layout`.
        M, W : (3, 3) float32 ndarray
            Feeding and linking synaptic weights.
        """
        raise NotImplementedError

    def _weights(self, weights):
        return np.ascontiguousarray(weights, dtype=np.float32)


@dataclass(frozen=True)
class PCNN(Model):
    """Eckhorn-Johnson pulse-coupled neural network.

    ``F[n] = e^-alpha_f F[n-1] + v_f (M * Y[n-1]) + S``,
    ``L[n] = e^-alpha_l L[n-1] + v_l (W * Y[n-1])``, ``U[n] = F[n] (1 + beta L[n])``,
    ``Y[n] = U[n] > E[n-1]``, ``E[n] = e^-alpha_e E[n-1] + v_e Y[n]``, with ``E[0] = e0``.
    Johnson & Padgett, IEEE TNN 10(3):480-498, 1999, doi:10.1109/72.761706.

    Parameters
    ----------
    alpha_f, alpha_l, alpha_e : float, >= 0
        Decay constants of feeding, linking and threshold.
    v_f, v_l, v_e : float
        Amplitudes of feeding, linking and threshold.
    beta : float
        Linking strength.
    feeding_weights, linking_weights : 3x3 nested tuples of float
        Synaptic weights M and W.
    e0 : float
        Initial threshold. With ``e0 = 0`` every pixel with a positive stimulus
        pulses at the first iteration.
    """

    alpha_f: float = 0.1
    alpha_l: float = 1.0
    alpha_e: float = 0.3
    v_f: float = 0.5
    v_l: float = 0.2
    v_e: float = 20.0
    beta: float = 0.1
    feeding_weights: tuple = field(default=CHEN_WEIGHTS)
    linking_weights: tuple = field(default=CHEN_WEIGHTS)
    e0: float = 0.0

    def __post_init__(self):
        _check_finite(self, ("alpha_f", "alpha_l", "alpha_e", "v_f", "v_l", "v_e",
                             "beta", "e0"), nonnegative=("alpha_f", "alpha_l", "alpha_e"))
        object.__setattr__(self, "feeding_weights",
                           _weights_array("feeding_weights", self.feeding_weights))
        object.__setattr__(self, "linking_weights",
                           _weights_array("linking_weights", self.linking_weights))

    def kernel_params(self):
        p = _pack(decay_f=math.exp(-self.alpha_f), v_f=self.v_f,
                  decay_l=math.exp(-self.alpha_l), v_l=self.v_l, beta=self.beta,
                  decay_e=math.exp(-self.alpha_e), v_e=self.v_e, e0=self.e0)
        return p, self._weights(self.feeding_weights), self._weights(self.linking_weights)


@dataclass(frozen=True)
class SPCNN(Model):
    """Simplified PCNN of Chen, Park, Ma & Ala with automatic parameters.

    ``U[n] = e^-alpha_f U[n-1] + S (1 + beta v_l (W * Y[n-1]))``,
    ``Y[n] = U[n] > E[n-1]``, ``E[n] = e^-alpha_e E[n-1] + v_e Y[n]``, starting from
    ``U[0] = Y[0] = 0`` and ``E[0] = e0`` (Chen's ``E[0] = 0`` by default). Chen et
    al., IEEE TNN 22(6):880-892, 2011, doi:10.1109/TNN.2011.2128880. Use
    :meth:`from_image` for the automatic setting.

    Parameters
    ----------
    alpha_f, alpha_e : float, >= 0
        Decay constants of internal activity and threshold.
    beta, v_l, v_e : float
        Linking strength, linking amplitude, threshold amplitude.
    weights : 3x3 nested tuples of float
        Synaptic weights W (default: Chen's, summing to 6).
    e0 : float
        Initial threshold. With a positive ``e0`` no pixel pulses at once: pixels
        first pulse in order of intensity, helped by their pulsing neighbours.
    """

    alpha_f: float
    beta: float
    v_e: float
    alpha_e: float
    v_l: float = 1.0
    weights: tuple = field(default=CHEN_WEIGHTS)
    e0: float = 0.0

    def __post_init__(self):
        _check_finite(self, ("alpha_f", "beta", "v_e", "alpha_e", "v_l", "e0"),
                      nonnegative=("alpha_f", "alpha_e"))
        object.__setattr__(self, "weights", _weights_array("weights", self.weights))

    @classmethod
    def from_image(cls, image, *, value_range=None):
        """Set all parameters from the image (Chen et al. 2011, Sec. IV).

        With ``S`` the image normalised to [0, 1] (see :func:`pcnnseg.normalize`),
        ``sigma`` its standard deviation, ``S'`` its Otsu threshold and
        ``S_max`` its maximum, and Chen's weights (sum 6)::

            alpha_f = ln(1 / sigma)
            beta    = (S_max / S' - 1) / 6            (with v_l = 1)
            v_e     = e^-alpha_f + 1 + 6 beta v_l        (raised by 2^-20 relative)
            alpha_e = ln(v_e / (S' [(1 - e^-3 alpha_f) / (1 - e^-alpha_f) + 6 beta v_l e^-alpha_f]))

        From the zero initial state every pixel with ``S > 0`` pulses at
        iteration ``k = 0``; ``v_e`` is the internal activity of a pixel of
        intensity 1 at ``k = 1`` whose neighbours all pulsed, so no pixel pulses
        at ``k = 1`` (``v_e`` is raised by a relative 2^-20 so that float32
        rounding keeps this true at ``S = 1``); ``alpha_e`` makes the threshold at ``k = 2`` equal the
        internal activity at ``k = 2`` of a pixel of intensity ``S'`` whose
        neighbours all pulsed at ``k = 0``. Hence, among pixels whose
        8 neighbours all have ``S > 0``, those pulsing at ``k = 2`` (the "Otsu
        iteration") are exactly those with ``S > S'``. The linking term of
        ``alpha_e`` carries the factor ``S'`` that this derivation gives.

        Parameters
        ----------
        image : ndarray
            Any real array (a slice, a batch or a volume): the statistics are
            taken over all its values, background included.
        value_range : (float, float), optional
            Intensities mapped to 0 and 1; default the image's min and max.

        Returns
        -------
        SPCNN

        Raises
        ------
        ValueError
            If the image is constant, or constant after clipping to
            ``value_range`` (``sigma = 0``): the parameters are undefined.
        """
        return cls._from_stimulus(normalize(image, value_range=value_range))

    @classmethod
    def _from_stimulus(cls, S):
        """:meth:`from_image` for an already normalised stimulus ``S``."""
        sigma = float(np.std(S, dtype=np.float64))
        if sigma == 0.0:
            raise ValueError("image: SPCNN parameters are undefined for a constant "
                             "(normalised) image; pass a model explicitly")
        s_otsu = otsu_threshold(S)
        s_max = float(S.max())
        if not 0.0 < s_otsu < s_max:
            raise ValueError(f"image: Otsu threshold {s_otsu} is not inside (0, {s_max}); "
                             "SPCNN parameters are undefined")
        alpha_f = math.log(1.0 / sigma)
        v_l = 1.0
        weight_sum = 6.0  # Chen's weights
        beta = (s_max / s_otsu - 1.0) / weight_sum
        decay = math.exp(-alpha_f)
        link = weight_sum * beta * v_l
        # Raised by 2**-20 relative: for S = 1 the internal activity at k = 1
        # equals v_e exactly, and float32 rounding must not make it pulse.
        v_e = (decay + 1.0 + link) * (1.0 + 2.0 ** -20)
        u_otsu = s_otsu * ((1.0 - math.exp(-3.0 * alpha_f)) / (1.0 - decay) + link * decay)
        alpha_e = math.log(v_e / u_otsu)
        return cls(alpha_f=alpha_f, beta=beta, v_e=v_e, alpha_e=alpha_e, v_l=v_l)

    def kernel_params(self):
        p = _pack(v_l=self.v_l, decay_u=math.exp(-self.alpha_f), beta=self.beta,
                  decay_e=math.exp(-self.alpha_e), v_e=self.v_e, e0=self.e0)
        w = self._weights(self.weights)
        return p, w, w


@dataclass(frozen=True)
class ICM(Model):
    """Intersecting Cortical Model of Ekblad & Kinser.

    ``F[n] = f F[n-1] + S + (W * Y[n-1])``, ``Y[n] = F[n] > T[n-1]``,
    ``T[n] = g T[n-1] + h Y[n]``, with ``T[0] = e0``. Ekblad, Kinser, Atmer &
    Zetterlund, Nucl. Instrum. Methods A 525:392-396, 2004,
    doi:10.1016/j.nima.2004.03.102. The connection function is the 3x3
    synaptic sum (Kinser's curvature-flow variant is not implemented).

    Parameters
    ----------
    f, g : float in [0, 1]
        Decay factors of the neuron state and of the threshold.
    h : float
        Threshold amplitude.
    weights : 3x3 nested tuples of float
    e0 : float
        Initial threshold.
    """

    f: float = 0.9
    g: float = 0.8
    h: float = 20.0
    weights: tuple = field(default=CHEN_WEIGHTS)
    e0: float = 0.0

    def __post_init__(self):
        _check_finite(self, ("f", "g", "h", "e0"), nonnegative=("f", "g"))
        _check_decay_factors(self, ("f", "g"))
        object.__setattr__(self, "weights", _weights_array("weights", self.weights))

    def kernel_params(self):
        p = _pack(decay_f=self.f, v_f=1.0, decay_e=self.g, v_e=self.h, e0=self.e0)
        w = self._weights(self.weights)
        return p, w, w


@dataclass(frozen=True)
class SCM(Model):
    """Spiking Cortical Model of Zhan, Zhang & Ma.

    ``U[n] = f U[n-1] + S (W * Y[n-1]) + S``, ``Y[n] = U[n] > E[n-1]``,
    ``E[n] = g E[n-1] + h Y[n]``; evaluated as ``f U + S (1 + (W * Y))``.
    Zhan, Zhang & Ma, IEEE TNN 20(12):1980-1986, 2009, doi:10.1109/TNN.2009.2030585.

    Parameters
    ----------
    f, g : float in [0, 1]
        Decay factors of internal activity and threshold.
    h : float
        Threshold amplitude.
    weights : 3x3 nested tuples of float
        Default: Zhan et al.'s.
    """

    f: float = 0.8
    g: float = 0.7
    h: float = 20.0
    weights: tuple = field(default=SCM_WEIGHTS)

    def __post_init__(self):
        _check_finite(self, ("f", "g", "h"), nonnegative=("f", "g"))
        _check_decay_factors(self, ("f", "g"))
        object.__setattr__(self, "weights", _weights_array("weights", self.weights))

    def kernel_params(self):
        p = _pack(v_l=1.0, decay_u=self.f, beta=1.0, decay_e=self.g, v_e=self.h)
        w = self._weights(self.weights)
        return p, w, w
