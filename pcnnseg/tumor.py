"""Brain tumor segmentation with a PCNN, from any subset of the BraTS sequences.

The whole tumor (WT: tumor and edema) is hyperintense in FLAIR and T2; the
enhancing tumor (ET) is bright in T1ce and not in T1; the tumor core (TC) is
the enhancing tumor and what it encloses. :func:`segment_tumor` turns this into
masks with no training:

1. **Contrast.** Each sequence becomes its contrast against normal tissue,
   ``(v - mode) / (p99 - mode)`` over the brain
   (:func:`pcnnseg.preprocess.tissue_contrast`): 0 is the brain's histogram
   peak, 1 its brightest percent, whatever the scanner.
2. **Stimulus.** ``A = (C_flair + w C_t2) / (1 + w)``, with ``w =``
   :data:`T2_WEIGHT` (FLAIR alone or T2 alone when only one is given), and
   ``S = clip(A / A_SCALE, 0, 1)`` inside the brain.
3. **PCNN.** The intensity-order SPCNN (:func:`pcnnseg.segment.
   intensity_order_model`) runs on the volume, with linking across slices
   (:func:`pcnnseg.pulse_volume`, weights set by the voxel spacing) or within
   each, until an isolated voxel at contrast :data:`THRESHOLD` would pulse; the
   voxels that have pulsed are the candidates. With linking (``beta > 0``) a
   pulsing region pulls its neighbours forward (their threshold is divided by
   ``1 + beta L``), so it grows into its slightly darker rim; the default
   :data:`LINKING` is 0, where the network computes a threshold: linking was
   no better held-out and grew into bright cortex on phantoms with a bias
   field.
4. **Selection.** A 3-D opening removes specks; one connected component is
   kept (:data:`SELECTION`): by default the *thickest*, the one with most
   voxels two steps inside it, so that thin bright structures (the cortical
   ribbon at the skull-strip border, vessels) lose to a compact lesion even
   when they are larger; or the largest; or, with ``selection="asymmetry"``,
   the one with the largest size times mean left-right asymmetry (the
   stimulus minus its mirror image about the brain's centre, both smoothed by
   2 voxels), so that bilateral bright structures (symmetric white-matter
   hyperintensities) lose to a one-sided lesion, at the price of tumors
   centred on the midline. With ``satellites`` below 1, every other component
   scoring at least that share of the kept one's score is kept too, so that
   the satellite lesions of a multifocal tumor are not dropped
   (:data:`SATELLITES`, 1 by default: one component). Holes are filled slice
   by slice.
5. **Regions** (``regions=True``, needs T1ce). Enhancement
   ``C_t1ce - ENHANCEMENT_T1_WEIGHT C_t1`` inside the whole tumor (T1
   hyperintensity, blood or fat, is bright in T1ce without enhancing) runs
   through the same PCNN to :data:`ENHANCING_THRESHOLD`, or to
   :data:`ENHANCING_OTSU` times the case's Otsu threshold [6]_ on the
   enhancement of the whole tumor when that is higher (contrast uptake varies
   with dose, timing and scanner): the enhancing tumor, opened. Subtracting
   only the positive part ``max(C_t1, 0)`` (``t1_part``), so that
   T1-hypointense tissue does not pass for enhancement, was chosen by no
   fold of the cross-validation: held-out it loses 0.020 enhancing Dice and
   0.069 core Dice.
   Tumor core: the enhancing tumor closed (2 voxels) and its holes filled
   slice by slice (the necrosis inside the enhancing rim), within the whole
   tumor. With ``necrosis_threshold`` set and FLAIR and T2 given, the core
   also takes fluid: the voxels of the whole tumor where ``C_t2 - C_flair``
   reaches the threshold in the same PCNN, opened. FLAIR's inversion pulse
   nulls free water [5]_, so liquefied necrosis and cysts, bright in T2, are
   dark in FLAIR, and a core whose enhancing rim is thin or broken is still
   found. It is off by default (:data:`NECROSIS_THRESHOLD` None): offered to
   the cross-validation after the other constants, it beat no necrosis step
   by less than a standard error in every fold; chosen by the best mean
   instead, it gains 0.013 held-out core Dice, with large swings both ways
   (+0.22 and -0.11 on two cases). The label map is 1 (core without
   enhancement), 2 (edema), 4 (or 3 in the 2023 convention) enhancing.

Constants were chosen by 5-fold patient-level cross-validation on 22 cases of
BraTS 2018 and BraTS-Africa 2023 with the one-standard-error rule (the simplest
configuration within one standard error of the best on the training folds),
then refit on all 22 (``benchmarks/segmentation.py``). Held-out whole-tumor
Dice 0.744 (BraTS 2018 0.811, BraTS-Africa 0.688), tumor core 0.631, enhancing
tumor 0.633 (0.612 and 0.589 with a fixed enhancement threshold, no Otsu share;
``benchmarks/results/segmentation.md``, which also says what was fixed before
the cross-validation).

The tissue-contrast scale is set by the brain's brightest percent, so the
method assumes the volume holds a tumor: on a tumor-free brain it returns its
brightest structure (screen slices or volumes with :func:`pcnnseg.detect`
first).

Assumptions: skull-stripped input (the brain is the non-zero voxels of FLAIR,
or of T2 without FLAIR; pass ``brain_mask=`` otherwise); one tumor per volume
(one component is kept, unless ``satellites`` says otherwise); for
``selection="asymmetry"``, the last array axis runs left-right (true of BraTS and of most axial acquisitions).

References
----------
The network is the simplified PCNN of [1]_ with fixed parameters
(:mod:`pcnnseg.segmentation`); linking as in [2]_; the regions and labels are
BraTS's [3]_; the one-standard-error rule is that of [4]_.

.. [1] Y. Chen, S.-K. Park, Y. Ma, R. Ala, "A new automatic parameter setting
   method of a simplified PCNN for image segmentation", IEEE Transactions on
   Neural Networks 22(6):880-892, 2011. doi:10.1109/TNN.2011.2128880
.. [2] J. L. Johnson, M. L. Padgett, "PCNN models and applications", IEEE
   Transactions on Neural Networks 10(3):480-498, 1999. doi:10.1109/72.761706
.. [3] B. H. Menze et al., "The multimodal brain tumor image segmentation
   benchmark (BRATS)", IEEE Transactions on Medical Imaging 34(10):1993-2024,
   2015. doi:10.1109/TMI.2014.2377694
.. [4] T. Hastie, R. Tibshirani, J. Friedman, "The Elements of Statistical
   Learning", 2nd ed., Springer, 2009, section 7.10.
.. [5] J. V. Hajnal et al., "Use of fluid attenuated inversion recovery
   (FLAIR) pulse sequences in MRI of the brain", Journal of Computer Assisted
   Tomography 16(6):841-844, 1992. doi:10.1097/00004728-199211000-00001
.. [6] N. Otsu, "A threshold selection method from gray-level histograms", IEEE
   Transactions on Systems, Man, and Cybernetics 9(1):62-66, 1979.
   doi:10.1109/TSMC.1979.4310076
"""
import math

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from pcnnseg.io import BRATS_SEQUENCES, BratsCase
from pcnnseg.metrics import BRATS_LABEL_CONVENTIONS
from pcnnseg.morphology import (bounding_box, dilate_cross, erode_cross, fill_holes_slicewise,
                                open_cross)
from pcnnseg.preprocess import tissue_contrast
from pcnnseg.segmentation import ALPHA_E, first_pulse_iteration, intensity_order_model
from pcnnseg.simulate import pulse, pulse_volume
from pcnnseg.validation import (as_binary_mask, as_real_array, check_bool, check_number,
                                check_share, check_spacing, explain_memory_error)

__all__ = ["segment_tumor", "tumor_regions", "tumor_stimulus", "as_sequences", "fired",
           "THRESHOLD", "T2_WEIGHT", "LINKING", "LINKING_DIMENSIONS", "SELECTION",
           "SATELLITES", "CONTRAST_PERCENTILE", "ENHANCING_THRESHOLD", "ENHANCEMENT_T1_WEIGHT",
           "ENHANCING_OTSU", "NECROSIS_THRESHOLD", "A_SCALE"]

# Chosen by cross-validation (benchmarks/segmentation.py, the one-standard-error
# rule), refit on all 22 cases.
THRESHOLD = 0.35             # combined contrast at which an isolated voxel is tumor
T2_WEIGHT = 0.6              # weight of T2 against FLAIR in the stimulus
LINKING = 0.0                # beta of the PCNN: linking did not earn its place
LINKING_DIMENSIONS = "3d"    # link across slices ("3d") or within each ("2d")
ENHANCING_THRESHOLD = 0.15   # enhancement at which a voxel is enhancing tumor
ENHANCING_OTSU = 0.5         # share of the tumor's Otsu threshold the threshold rises to
ENHANCEMENT_T1_WEIGHT = 0.5  # share of T1 subtracted from T1ce
ENHANCEMENT_T1_PART = "signed"  # part of the T1 contrast subtracted: "signed" or "positive"
NECROSIS_THRESHOLD = None    # C_t2 - C_flair at which tumor is fluid (core); None: off
CONTRAST_PERCENTILE = 99.0   # percentile of the brain at contrast 1
SELECTION = "thickest"       # component kept: "thickest", "largest" or "asymmetry"
SATELLITES = 1.0             # other components kept at >= this share of the best's score

#: Contrast mapped to a stimulus of 1; a voxel of contrast ``a`` first pulses
#: at iteration ``floor(ln(A_SCALE / a) / ALPHA_E) + 1``.
A_SCALE = 2.0
_ASYMMETRY_SIGMA = 2.0       # voxels
_OTSU_BINS = 256
T1_PARTS = ("positive", "signed")


def as_sequences(images):
    """The sequences of ``images`` as a dict ``{name: ndarray}``, canonical names.

    Parameters
    ----------
    images : array_like, dict or BratsCase
        A FLAIR slice or volume; a dict of sequences keyed by ``"flair"``,
        ``"t1"``, ``"t1ce"``, ``"t2"`` (or the 2023 names ``"t2f"``, ``"t1n"``,
        ``"t1c"``, ``"t2w"``); or a case from :func:`pcnnseg.io.load_brats_case`.

    Returns
    -------
    dict of str to ndarray
        Each checked (real dtype, 2-D or 3-D, non-empty, finite); all of one shape.

    Raises
    ------
    TypeError, ValueError
        For an unknown sequence name, an invalid array (named after its
        sequence), sequences of different shapes (both named), or neither
        FLAIR nor T2.
    """
    from pcnnseg.io import SEQUENCE_ALIASES

    if isinstance(images, BratsCase):
        images = images.images
    if isinstance(images, dict):
        seqs = {}
        for key, value in images.items():
            if key not in SEQUENCE_ALIASES:
                raise ValueError(f"images: unknown sequence {key!r}; expected names among "
                                 f"{sorted(SEQUENCE_ALIASES)}")
            name = SEQUENCE_ALIASES[key]
            if name in seqs:
                raise ValueError(f"images: sequence {name!r} given twice (as {key!r})")
            seqs[name] = as_real_array(value, name, ndims=(2, 3))
    else:
        seqs = {"flair": as_real_array(images, "flair", ndims=(2, 3))}
    if "flair" not in seqs and "t2" not in seqs:
        raise ValueError(f"images: expected FLAIR or T2 among the sequences, got "
                         f"{sorted(seqs)}")
    shapes = {name: a.shape for name, a in seqs.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise ValueError(f"images: sequences differ in shape ({listed}); they must be "
                         f"co-registered on one grid")
    return {name: seqs[name] for name in BRATS_SEQUENCES if name in seqs}


def _brain(seqs, brain_mask):
    reference = seqs["flair"] if "flair" in seqs else seqs["t2"]
    if brain_mask is None:
        brain = reference != 0
    else:
        brain = as_binary_mask(brain_mask, "brain_mask")
        if brain.shape != reference.shape:
            raise ValueError(f"brain_mask: expected shape {reference.shape} (that of the "
                             f"images), got {brain.shape}")
    if not brain.any():
        raise ValueError("brain: no brain voxel (an all-zero image, or an empty brain_mask)")
    return brain


def _contrasts(seqs, brain, names, percentile=99.0):
    out = {}
    for name in names:
        if name in seqs:
            try:
                out[name] = tissue_contrast(seqs[name], brain, upper_percentile=percentile)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
    return out


def tumor_stimulus(contrasts, brain, *, t2_weight=T2_WEIGHT):
    """The whole-tumor stimulus ``clip(A / A_SCALE, 0, 1)`` inside the brain.

    Parameters
    ----------
    contrasts : dict of str to ndarray
        :func:`pcnnseg.preprocess.tissue_contrast` of ``"flair"`` and / or
        ``"t2"``.
    brain : bool ndarray
    t2_weight : float
        ``w`` in ``A = (C_flair + w C_t2) / (1 + w)``.

    Returns
    -------
    float32 ndarray in [0, 1]
    """
    if "flair" in contrasts and "t2" in contrasts:
        with np.errstate(over="ignore"):  # saturated contrasts: clipped below
            A = (contrasts["flair"] + np.float32(t2_weight) * contrasts["t2"]) \
                / np.float32(1.0 + t2_weight)
    else:
        A = contrasts["flair"] if "flair" in contrasts else contrasts["t2"]
    S = np.clip(A / np.float32(A_SCALE), 0.0, 1.0).astype(np.float32)
    S[~brain] = 0.0
    return S


def fired(S, level, *, beta, spacing=(1.0, 1.0, 1.0), linking="3d"):
    """Voxels of a [0, 1] stimulus that pulse before an isolated voxel at ``level`` would.

    Runs :func:`pcnnseg.segmentation.intensity_order_model` (2-D linking for a
    slice, or for each slice of a volume with ``linking="2d"``; 3-D with
    ``spacing`` for a volume) for the iterations an isolated
    voxel of stimulus ``level`` needs to pulse. With ``beta = 0`` this is
    exactly ``S > level`` rounded to the fire-time grid; with linking, voxels
    next to a pulsing region pulse once ``S (1 + beta L)`` passes the threshold.

    Parameters
    ----------
    S : (H, W) or (Z, Y, X) float32 ndarray in [0, 1]
    level : float in (0, 1]
    beta : float
    spacing : (float, float, float)
    linking : {"3d", "2d"}

    Returns
    -------
    bool ndarray, shape of ``S``
    """
    n_iter = first_pulse_iteration(level, ALPHA_E) + 1
    model = intensity_order_model(beta=beta)
    if S.ndim == 2 or linking == "2d":
        fire_time = pulse(S, model, n_iter=n_iter, value_range=(0.0, 1.0)).fire_time
    else:
        fire_time = pulse_volume(S, model, spacing=spacing, n_iter=n_iter,
                                 value_range=(0.0, 1.0)).fire_time
    return fire_time >= 0


def _mirror(a, brain):
    """``a`` reflected left-right (last axis) about the brain's centre."""
    centre = ndi.center_of_mass(brain)[-1]
    x = np.arange(a.shape[-1])
    src = np.clip(np.round(2.0 * centre - x).astype(np.intp), 0, a.shape[-1] - 1)
    return a[..., src]


def _in_plane(mask, spacing):
    """Whether a volume's face-neighbour cross leaves out the slices above and below:
    for fewer than 3 slices, or slices thicker than 1.5 in-plane pixels (never for
    a 2-D mask)."""
    return mask.ndim == 3 and (mask.shape[0] < 3 or spacing[0] > 1.5 * min(spacing[1:]))


def _opened(mask, spacing=(1.0, 1.0, 1.0)):
    """Opening by the face-neighbour cross, 3-D or in-plane (:func:`_in_plane`).

    In 3-D it also cuts thin bridges between slices, such as the bright cortical
    ribbon at the top and bottom of a brain that would join the tumor; with thick
    slices a 3-D cross would erase whatever spans a single slice.
    """
    return open_cross(mask, in_plane=_in_plane(mask, spacing))


def _select(candidates, S, brain, spacing=(1.0, 1.0, 1.0), selection=SELECTION,
            satellites=SATELLITES):
    """The best component of ``candidates`` by ``selection``, and those scoring at
    least ``satellites`` times as much (see :func:`segment_tumor`)."""
    labels, n = ndi.label(candidates)
    if n <= 1:
        return candidates
    index = np.arange(1, n + 1)
    size = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)
    score = size
    if selection == "thickest":
        # voxels at least 2 steps inside: thin ribbons have none, a tumor many
        core = erode_cross(candidates, in_plane=_in_plane(candidates, spacing), iterations=2)
        score = np.bincount(labels[core], minlength=n + 1)[1:].astype(np.float64)
    elif selection == "asymmetry":
        smooth = ndi.gaussian_filter(S, _ASYMMETRY_SIGMA)
        asymmetry = ndi.mean(smooth - _mirror(smooth, brain), labels, index)
        score = size * np.clip(asymmetry, 0.0, None)
    if score.max() <= 0:
        score = size
    keep = np.zeros(n + 1, dtype=bool)
    if satellites < 1:
        keep[1:] = score >= satellites * score.max()
    keep[index[np.argmax(score)]] = True    # alone at 1, even when others tie with it
    return keep[labels]


def _finish_whole(candidates, S, brain, spacing, selection=SELECTION, satellites=SATELLITES):
    """Step 4: opening, the selected components, holes filled slice by slice."""
    return fill_holes_slicewise(_select(_opened(candidates, spacing), S, brain, spacing,
                                        selection, satellites))


def segment_tumor(images, *, brain_mask=None, spacing=None, regions=False,
                  label_convention="2018", threshold=THRESHOLD, beta=LINKING,
                  t2_weight=T2_WEIGHT, contrast_percentile=CONTRAST_PERCENTILE,
                  enhancing_threshold=ENHANCING_THRESHOLD, enhancing_otsu=ENHANCING_OTSU,
                  t1_weight=ENHANCEMENT_T1_WEIGHT, t1_part=ENHANCEMENT_T1_PART,
                  necrosis_threshold=NECROSIS_THRESHOLD,
                  linking=LINKING_DIMENSIONS, selection=SELECTION, satellites=SATELLITES,
                  segmenter=None, progress=None):
    """Whole-tumor mask, or BraTS label map, of an MRI slice or volume, untrained.

    The method and its constants are in the module docstring of
    :mod:`pcnnseg.tumor`; its cross-validated accuracy is in
    ``benchmarks/results/segmentation.md``.

    Parameters
    ----------
    images : (H, W) or (Z, Y, X) array_like, dict or BratsCase
        A FLAIR array; or a dict of co-registered sequences (any subset of
        ``"flair"``, ``"t1"``, ``"t1ce"``, ``"t2"`` holding FLAIR or T2; the
        2023 names are accepted); or a loaded case. FLAIR alone scored as
        well as FLAIR and T2 held-out (0.755 against 0.744 whole-tumor Dice,
        within noise); T2 alone is untested (bright CSF); regions need T1ce
        (and use T1 when given).
    brain_mask : bool array of the images' shape, optional
        Default: the non-zero voxels of FLAIR (of T2 without FLAIR), right for
        skull-stripped input. For volumes that are not skull-stripped, pass a
        brain mask: the contrast is measured against the tissue inside it.
        Checked as :func:`pcnnseg.detect` checks its mask: bool, or real
        values 0 and 1 only (no strings, complex numbers or NaN).
    spacing : (float, float, float), optional
        Voxel size (Z, Y, X) in mm for the through-plane linking weights.
        Default: the case's geometry for a BratsCase, else 1 mm isotropic.
    regions : bool
        Return a label map of the tumor regions instead of a mask.
    label_convention : {"2018", "2023"}
        Labels of the map: 1 core, 2 edema, 4 (2018) or 3 (2023) enhancing.
    threshold : float
        Combined contrast (0 normal tissue, 1 the brain's ``contrast_percentile``)
        at which an isolated voxel counts as tumor; in (0, A_SCALE).
    beta : float
        Linking strength of the 3-D PCNN, >= 0.
    t2_weight : float
        Weight of T2 against FLAIR in the stimulus, >= 0.
    contrast_percentile : float
        Percentile of the brain that sets a contrast of 1
        (:func:`pcnnseg.preprocess.tissue_contrast`), in (50, 100].
    enhancing_threshold, enhancing_otsu, t1_weight, t1_part, necrosis_threshold
        See :func:`tumor_regions`.
    linking : {"3d", "2d"}
        Link voxels across slices (default) or run each slice on its own.
    selection : {"thickest", "largest", "asymmetry"}
        The component kept: the one with most voxels two steps inside it
        (thin bright ribbons such as the cortex at the skull-strip border
        lose), the largest, or the one with the largest size x left-right
        asymmetry (bilateral bright structures, symmetric white-matter
        hyperintensities among them, lose to a one-sided lesion; so does a
        tumor centred on the midline; the last axis must run left-right).
    satellites : float
        Other components are kept too when they score at least this share of
        the kept one's score, so that a multifocal tumor keeps its satellite
        lesions; 1 keeps one component, 0 every one; in [0, 1].
    segmenter : pcnnseg.Segmenter or "default", optional
        A fitted readout (:func:`pcnnseg.fit_segmenter`; ``"default"``: the
        bundled one, :func:`pcnnseg.segmenter.default_segmenter`) whose tumor
        probability replaces the stimulus of step 2; ``threshold``, ``beta``
        ``t2_weight``, ``selection`` and ``satellites`` are then its own.
    progress : callable, optional
        Called as ``progress(done, total)`` after each step of the method.

    Returns
    -------
    bool ndarray (``regions=False``) or uint8 label map, shape of the images
        An empty mask (all-zero map) when nothing reaches the threshold.

    Raises
    ------
    TypeError, ValueError
        For invalid images (see :func:`as_sequences`), an empty, mis-shaped or
        non-binary brain mask, a constant sequence, regions without T1ce, an
        unknown label convention, constants out of range, a ``regions`` that
        is not a bool or a ``progress`` that is not callable.
    MemoryError
        When the images need more memory than there is (the message gives
        their shape).

    Examples
    --------
    >>> from pcnnseg import phantom
    >>> from pcnnseg.metrics import dice
    >>> flair, truth = phantom.make_volume(seed=0)
    >>> round(dice(segment_tumor(flair), truth), 2) > 0.9
    True
    """
    seqs = as_sequences(images)
    spacing = _spacing_of(images, spacing)
    regions = check_bool(regions, "regions")
    _check_level("threshold", threshold)
    _check_weight("beta", beta)
    _check_weight("t2_weight", t2_weight)
    _check_choice("linking", linking, ("3d", "2d"))
    _check_choice("selection", selection, ("thickest", "largest", "asymmetry"))
    check_share(satellites, "satellites")
    percentile = _check_percentile(contrast_percentile)
    _check_regions_arguments(seqs if regions else None, label_convention,
                             enhancing_threshold, t1_weight, t1_part, necrosis_threshold,
                             enhancing_otsu)
    segmenter = _check_segmenter(segmenter, seqs)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable progress(done, total) or None, got "
                        f"{type(progress).__name__}")
    steps = 4 if regions else 3
    done = [0]

    def step():
        done[0] += 1
        if progress is not None:
            progress(done[0], steps)

    full_brain = _brain(seqs, brain_mask)
    shape = next(iter(seqs.values())).shape
    with explain_memory_error(f"segment_tumor: {len(seqs)} sequence(s) of shape {shape}"):
        box = bounding_box(full_brain)
        brain = full_brain[box]
        crop = {name: a[box] for name, a in seqs.items()}
        if segmenter is None:
            contrasts = _contrasts(crop, brain, ("flair", "t2"), percentile)
            S = tumor_stimulus(contrasts, brain, t2_weight=t2_weight)
            level = threshold / A_SCALE
        else:
            contrasts = _contrasts(crop, brain, segmenter.sequences)
            S = segmenter.probability(contrasts, brain, spacing)
            level, beta = segmenter.level, segmenter.beta
            selection, satellites = segmenter.selection, segmenter.satellites
        step()
        candidates = fired(S, level, beta=beta, spacing=spacing, linking=linking)
        step()
        whole = np.zeros(full_brain.shape, dtype=bool)
        whole[box] = _finish_whole(candidates, S, brain, spacing, selection, satellites)
        step()
        if not regions:
            return whole
        labels = tumor_regions(seqs, whole, brain_mask=full_brain, spacing=spacing,
                               label_convention=label_convention,
                               enhancing_threshold=enhancing_threshold,
                               enhancing_otsu=enhancing_otsu, t1_weight=t1_weight,
                               t1_part=t1_part, necrosis_threshold=necrosis_threshold,
                               contrast_percentile=percentile, beta=beta, linking=linking)
    step()
    return labels


def tumor_regions(images, whole_tumor, *, brain_mask=None, spacing=None,
                  label_convention="2018", enhancing_threshold=ENHANCING_THRESHOLD,
                  enhancing_otsu=ENHANCING_OTSU, t1_weight=ENHANCEMENT_T1_WEIGHT,
                  t1_part=ENHANCEMENT_T1_PART, necrosis_threshold=NECROSIS_THRESHOLD,
                  contrast_percentile=CONTRAST_PERCENTILE, beta=LINKING,
                  linking=LINKING_DIMENSIONS):
    """BraTS label map from a whole-tumor mask: tumor core and enhancing tumor inside it.

    Step 5 of :mod:`pcnnseg.tumor`, usable on any whole-tumor mask (this
    package's, a fitted readout's, a network's): the enhancement
    ``C_t1ce - t1_weight T`` (``T`` the T1 contrast, or its positive part; see
    ``t1_part``) inside the whole tumor runs through the
    intensity-order PCNN to ``enhancing_threshold`` (or, with ``enhancing_otsu``,
    to a share of the case's own Otsu threshold when that is higher) and is
    opened: the enhancing tumor; the tumor core is the enhancing tumor closed (2 voxels) with
    its holes filled slice by slice (the necrosis inside the enhancing rim),
    within the whole tumor, plus, with ``necrosis_threshold``, the fluid of the
    whole tumor (bright in T2, dark in FLAIR); the rest of the whole tumor is
    edema.

    Parameters
    ----------
    images : dict or BratsCase
        Sequences as :func:`segment_tumor` takes them; T1ce is needed, T1 used
        when given, FLAIR and T2 for the fluid of ``necrosis_threshold``.
    whole_tumor : bool array of the images' shape
        Its voxels outside the brain are left out (label 0).
    brain_mask, spacing, contrast_percentile, beta, linking
        As in :func:`segment_tumor`.
    label_convention : {"2018", "2023"}
        Labels 1 core, 2 edema, and 4 (2018) or 3 (2023) enhancing.
    enhancing_threshold : float
        Enhancement at which a voxel of the whole tumor is enhancing tumor, in
        (0, A_SCALE).
    enhancing_otsu : float
        Share of Otsu's threshold (Otsu 1979) on the enhancement of the whole tumor's
        voxels (the level that best splits them in two classes) that the
        enhancing threshold rises to when it is higher, so that the threshold
        follows the case's contrast uptake (dose, timing, scanner);
        ``enhancing_threshold`` is then a floor. 0 turns it off; in [0, 1].
    t1_weight : float
        Share of the T1 contrast subtracted from the T1ce contrast, >= 0: T1
        hyperintensities (blood, fat) are bright in T1ce without enhancing.
    t1_part : {"positive", "signed"}
        Subtract only the positive part of the T1 contrast (its
        hyperintensities), or the signed contrast, whose negative values (T1
        hypointense tissue, most of a tumor) then add to the enhancement.
    necrosis_threshold : float or None
        ``C_t2 - C_flair`` (tissue contrasts) at which a voxel of the whole
        tumor is fluid and joins the core, in (0, A_SCALE); the fluid runs
        through the same PCNN and is opened. None (or FLAIR or T2 not given):
        the core is the enhancing rim and what it encloses only.

    Returns
    -------
    uint8 ndarray, shape of the images

    Raises
    ------
    TypeError, ValueError
        For invalid images or mask, no T1ce, a constant T1ce / T1, or
        constants out of range.
    """
    seqs = as_sequences(images)
    spacing = _spacing_of(images, spacing)
    _check_regions_arguments(seqs, label_convention, enhancing_threshold, t1_weight, t1_part,
                             necrosis_threshold, enhancing_otsu)
    _check_weight("beta", beta)
    _check_choice("linking", linking, ("3d", "2d"))
    percentile = _check_percentile(contrast_percentile)
    whole = as_binary_mask(whole_tumor, "whole_tumor")
    full_brain = _brain(seqs, brain_mask)
    if whole.shape != full_brain.shape:
        raise ValueError(f"whole_tumor: expected the images' shape {full_brain.shape}, got "
                         f"{whole.shape}")
    box = bounding_box(full_brain)
    needed = ("t1ce", "t1") + (("flair", "t2") if necrosis_threshold is not None else ())
    crop = {name: seqs[name][box] for name in needed if name in seqs}
    with explain_memory_error(f"tumor_regions: images of shape {full_brain.shape}"):
        core, enhancing = _core_regions(
            crop, full_brain[box], whole[box] & full_brain[box], beta=beta, spacing=spacing,
            linking=linking, enhancing_threshold=enhancing_threshold,
            enhancing_otsu=enhancing_otsu, t1_weight=t1_weight, t1_part=t1_part,
            necrosis_threshold=necrosis_threshold, percentile=percentile)
    labels = np.zeros(full_brain.shape, dtype=np.uint8)
    values = BRATS_LABEL_CONVENTIONS[label_convention]
    part = labels[box]
    part[whole[box] & full_brain[box]] = values[2]
    part[core] = values[1]
    part[enhancing] = values[3]
    return labels


def _spacing_of(images, spacing):
    if spacing is None:
        spacing = (tuple(reversed(images.geometry.spacing))
                   if isinstance(images, BratsCase) and len(images.geometry.spacing) == 3
                   else (1.0, 1.0, 1.0))
    return check_spacing(spacing)


def _check_level(name, value):
    value = check_number(value, name)
    if not (math.isfinite(value) and 0 < value < A_SCALE):
        raise ValueError(f"{name}: expected a value in (0, {A_SCALE}), got {value}")


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_weight(name, value):
    value = check_number(value, name)
    if not (math.isfinite(value) and 0 <= value <= _FLOAT32_MAX):
        raise ValueError(f"{name}: expected a value >= 0 and finite in float32 (the "
                         f"stimulus's arithmetic), got {value}")


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {allowed}, got {value!r}")


def _check_percentile(value):
    value = check_number(value, "contrast_percentile")
    if not 50.0 < value <= 100.0:
        raise ValueError(f"contrast_percentile: expected a value in (50, 100], got {value}")
    return value


def _check_regions_arguments(seqs, label_convention, enhancing_threshold, t1_weight, t1_part,
                             necrosis_threshold, enhancing_otsu):
    """The constants of the regions, and T1ce among ``seqs`` (unless None)."""
    _check_choice("label_convention", label_convention, tuple(BRATS_LABEL_CONVENTIONS))
    _check_level("enhancing_threshold", enhancing_threshold)
    check_share(enhancing_otsu, "enhancing_otsu")
    _check_weight("t1_weight", t1_weight)
    _check_choice("t1_part", t1_part, T1_PARTS)
    if necrosis_threshold is not None:
        _check_level("necrosis_threshold", necrosis_threshold)
    if seqs is not None and "t1ce" not in seqs:
        raise ValueError(f"regions: the tumor regions need T1ce, got only {sorted(seqs)}")


def _check_segmenter(segmenter, seqs):
    if segmenter is None:
        return None
    from pcnnseg.segmenter import Segmenter, default_segmenter

    if isinstance(segmenter, str) and segmenter == "default":
        segmenter = default_segmenter()
    if not isinstance(segmenter, Segmenter):
        hint = (" (load a saved one with pcnnseg.Segmenter.load)"
                if isinstance(segmenter, str) else "")
        raise TypeError(f"segmenter: expected a pcnnseg.Segmenter or 'default', got "
                        f"{segmenter!r}{hint}")
    missing = [s for s in segmenter.sequences if s not in seqs]
    if missing:
        raise ValueError(f"images: the segmenter needs the sequence(s) {missing}, got "
                         f"{sorted(seqs)}")
    if next(iter(seqs.values())).ndim != 3:
        raise ValueError("images: a fitted segmenter works on volumes, got a 2-D slice")
    return segmenter


def _enhancing_level(values, floor, share):
    """``max(floor, share x Otsu's threshold of the finite values)``, at most A_SCALE."""
    if share == 0:
        return floor
    values = values[np.isfinite(values)].astype(np.float64)
    if values.size < 2 or values.min() == values.max():
        return floor
    # scikit-image answers the centre of the lower class's last histogram bin;
    # half a bin more is that bin's upper edge, above the whole lower class
    upper_edge = threshold_otsu(values, nbins=_OTSU_BINS) + (
        values.max() - values.min()) / (2 * _OTSU_BINS)
    return min(max(floor, share * float(upper_edge)), A_SCALE)


def _core_regions(seqs, brain, whole, *, beta, spacing, linking, enhancing_threshold,
                  enhancing_otsu, t1_weight, t1_part, necrosis_threshold, percentile):
    """Tumor core and enhancing tumor inside the whole tumor (step 5), in the brain box."""
    core = np.zeros(whole.shape, dtype=bool)
    enhancing = np.zeros(whole.shape, dtype=bool)
    contrasts = _contrasts(seqs, brain, ("t1ce", "t1", "flair", "t2"), percentile)  # checks all
    if not whole.any():
        return core, enhancing
    # Work in the whole tumor's box plus 3 voxels, room for the opening and the
    # closing: outside the whole tumor nothing pulses, so the result is the same.
    box = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in bounding_box(whole))
    enhancement = contrasts["t1ce"][box]
    if "t1" in contrasts:
        with np.errstate(over="ignore"):  # saturated contrasts: clipped below
            t1 = contrasts["t1"][box]
            if t1_part == "positive":
                t1 = np.maximum(t1, np.float32(0.0))
            enhancement = enhancement - np.float32(t1_weight) * t1
    inside = whole[box]

    def pulsed(A, threshold):
        S = np.clip(A / np.float32(A_SCALE), 0.0, 1.0).astype(np.float32)
        S[~inside] = 0.0
        return _opened(fired(S, threshold / A_SCALE, beta=beta, spacing=spacing,
                             linking=linking), spacing) & inside

    found = pulsed(enhancement, _enhancing_level(enhancement[inside], enhancing_threshold,
                                                 enhancing_otsu))
    in_plane = _in_plane(found, spacing)
    closed = erode_cross(dilate_cross(found, in_plane=in_plane, iterations=2),
                         in_plane=in_plane, iterations=2)   # closing
    if necrosis_threshold is not None and "flair" in contrasts and "t2" in contrasts:
        with np.errstate(over="ignore"):
            fluid = contrasts["t2"][box] - contrasts["flair"][box]
        closed |= pulsed(fluid, necrosis_threshold)
    core[box] = (fill_holes_slicewise(closed) & inside) | found
    enhancing[box] = found
    return core, enhancing
