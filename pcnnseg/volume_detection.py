"""Tumor boxes of every slice of a volume, read off its whole-tumor map, or "no tumor".

:func:`detect_volume` segments the whole tumor once in 3-D
(:func:`pcnnseg.segment_tumor`: the volume's own tissue contrast, the
intensity-order PCNN, the thickest component) and gives each slice the box of
the largest 8-connected part of the map on it, grown on every side by
``margin`` times its width (left and right) and height (above and below): a map
thresholded well above the faint edge of the edema is smaller than the
expert's outline, and its box with it. Its score is the map's area on the
slice in mm²; a slice whose area is under ``min_area`` has no tumor
(``box=None``). A slice the map does not reach scores minus its distance in mm
to the nearest slice the map reaches, so that among tumor-free answers the
slices next to the tumor, where its thin ends lie, rank above distant ones: the
score orders slices by how likely they hold tumor (for ROC analysis or a
threshold of one's own), the area deciding above 0. Compared with scoring
selective-search proposals slice by slice (:func:`pcnnseg.detect`), the
volume's context decides where the tumor is, so a bright structure on one
slice does not win a box, and the work is shared with the segmentation (pass
its mask as ``whole_tumor``).

The default ``min_area`` and ``margin`` were chosen by patient-level
cross-validation (``benchmarks/volume_detection.py``). Held-out over the 22
development cases (5 folds by patient): with the fitted readout
(``segmenter="default"``) the box hits the tumor's box (IoU >= 0.5) on 0.866
of the tumor slices of at least 500 pixels (BraTS 2018 0.882, BraTS-Africa
0.857; 0.842 without the margin), slice-level tumor presence has an ROC AUC of
0.972 (0.941 with the area alone as the score), sensitivity 0.890 and
specificity 0.967; with the untrained segmentation 0.790 (0.820, 0.773; 0.756
without the margin), AUC 0.938 (0.917), sensitivity 0.907, specificity 0.899.
A margin in millimetres (4 mm) did as well on these cases in an earlier run
of the benchmark (0.875 and 0.799) but cost the phantom's small slices their
hits; a share of the box's size keeps them.

The segmentation assumes that the volume holds a tumor (it returns the
brightest compact structure of a tumor-free brain), so the volume-level
answer ``has_tumor`` is only as good as that assumption: the development
cases all hold a tumor and could not measure its specificity.
"""
from dataclasses import dataclass
import math

import numpy as np

from pcnnseg.boxes import grow_box, largest_component_box
from pcnnseg.detection import Detection
from pcnnseg.morphology import bounding_box
from pcnnseg.validation import as_binary_mask, check_number

__all__ = ["VolumeDetection", "detect_volume", "MIN_TUMOR_AREA", "BOX_MARGIN"]

#: Whole-tumor area (mm²) on a slice below which the slice counts as tumor-free.
#: Cross-validation (``benchmarks/volume_detection.py``, the area with the best
#: sensitivity + specificity on the training folds, among 0 to 600 mm²) chose 0 in
#: every fold: the map's clean-up already removes specks, so any part of it on a
#: slice marks a tumor slice.
MIN_TUMOR_AREA = 0.0
#: Share of a box's width (height) added on its left and right (top and bottom),
#: chosen by the same cross-validation (the best hit rate on the training folds).
BOX_MARGIN = 0.1


@dataclass(frozen=True)
class VolumeDetection:
    """Result of :func:`detect_volume`.

    Attributes
    ----------
    slices : tuple of Detection
        One per slice along the first axis, ``box=None`` on a tumor-free
        slice; ``score`` its tumor area in mm², or, on a slice the map does not
        reach, minus the distance in mm to the nearest slice it reaches (0
        when the map is empty).
    whole_tumor : (Z, Y, X) bool ndarray
        The whole-tumor map the boxes were read from.
    min_area : float
        Area threshold (mm²) that was applied.
    margin : float
        Share of their width and height the boxes were grown by on each side.
    """

    slices: tuple
    whole_tumor: np.ndarray
    min_area: float
    margin: float = 0.0

    @property
    def tumor_slices(self):
        """Indices of the slices judged to hold a tumor."""
        return [z for z, d in enumerate(self.slices) if d.box is not None]

    @property
    def has_tumor(self):
        """Whether any slice holds a tumor."""
        return any(d.box is not None for d in self.slices)


def detect_volume(images, *, brain_mask=None, spacing=None, segmenter=None, whole_tumor=None,
                  min_area=MIN_TUMOR_AREA, margin=BOX_MARGIN):
    """Tumor box of each slice of a volume, or None where the slice has no tumor.

    Parameters
    ----------
    images : (Z, Y, X) array_like, dict or BratsCase
        As :func:`pcnnseg.segment_tumor` takes them (a FLAIR volume, a dict of
        sequences, or a loaded case).
    brain_mask : (Z, Y, X) bool array_like, optional
        Default: the non-zero voxels of FLAIR (skull-stripped input).
    spacing : (float, float, float), optional
        Voxel size (Z, Y, X) in mm; default the case's geometry for a
        BratsCase, else 1 mm.
    segmenter : pcnnseg.Segmenter or "default", optional
        Passed to :func:`pcnnseg.segment_tumor`.
    whole_tumor : (Z, Y, X) bool array_like, optional
        A whole-tumor mask already computed (by :func:`pcnnseg.segment_tumor`
        or any other method): the boxes are read from it and nothing is
        segmented again (so ``brain_mask`` and ``segmenter`` must not be given).
    min_area : float
        Tumor area in mm² below which a slice is tumor-free, >= 0.
    margin : float
        Share of each box's width added on its left and on its right, and of
        its height above and below (rounded to whole pixels, clipped to the
        image), >= 0.

    Returns
    -------
    VolumeDetection

    Raises
    ------
    TypeError, ValueError
        For invalid images (see :func:`pcnnseg.segment_tumor`), a 2-D image
        (use :func:`pcnnseg.detect` on a slice), a mask of another shape,
        ``brain_mask`` or ``segmenter`` together with ``whole_tumor``, or a
        negative or non-finite ``min_area`` or ``margin``.

    Examples
    --------
    >>> from pcnnseg import phantom
    >>> flair, truth = phantom.make_volume(seed=0)
    >>> found = detect_volume(flair)
    >>> z = found.tumor_slices[len(found.tumor_slices) // 2]
    >>> x, y, w, h = found.slices[z].box
    >>> bool(truth[z, y + h // 2, x + w // 2])
    True
    """
    from pcnnseg.tumor import _spacing_of, as_sequences, segment_tumor

    seqs = as_sequences(images)
    shape = next(iter(seqs.values())).shape
    if len(shape) != 3:
        raise ValueError(f"images: expected a volume (Z, Y, X), got shape {shape}; use "
                         f"pcnnseg.detect on a single slice")
    spacing = _spacing_of(images, spacing)
    min_area = check_number(min_area, "min_area")
    if not (math.isfinite(min_area) and min_area >= 0):
        raise ValueError(f"min_area: expected a finite area >= 0 in mm², got {min_area}")
    margin = check_number(margin, "margin")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin: expected a finite share >= 0 of the box's size, got "
                         f"{margin}")
    if whole_tumor is not None and (brain_mask is not None or segmenter is not None):
        raise ValueError("whole_tumor: the boxes are read off this mask, so brain_mask and "
                         "segmenter, which segment, must not be given with it")
    if whole_tumor is None:
        mask = segment_tumor(images, brain_mask=brain_mask, spacing=spacing,
                             segmenter=segmenter)
    else:
        mask = as_binary_mask(whole_tumor, "whole_tumor")
        if mask.shape != shape:
            raise ValueError(f"whole_tumor: expected the images' shape {shape}, got "
                             f"{mask.shape}")
    areas = mask.sum(axis=(1, 2)).astype(np.float64) * float(spacing[1] * spacing[2])
    scores = _presence_scores(areas, spacing[0])
    empty = (np.zeros((0, 4), dtype=np.int64), np.zeros(0))
    # each slice's components are labelled within the mask's box, not the whole plane
    _, rows, columns = bounding_box(mask) or (None, slice(0, 0), slice(0, 0))
    slices = []
    for plane, area, score in zip(mask, areas, scores):
        box = None
        if area >= min_area and area > 0:
            x, y, w, h = largest_component_box(plane[rows, columns])
            box = _grown((x + columns.start, y + rows.start, w, h), margin, plane.shape)
        slices.append(Detection(box, math.nan, *empty, score=float(score)))
    return VolumeDetection(tuple(slices), mask, min_area, margin)


def _grown(box, margin, shape):
    """``box`` grown by ``margin`` times its width and height on each side."""
    return grow_box(box, (round(margin * box[2]), round(margin * box[3])), shape)


def _presence_scores(areas, slice_mm):
    """Each slice's area, or minus its distance (mm) to the nearest slice with area."""
    scores = areas.copy()
    reached = np.flatnonzero(areas > 0)
    if len(reached):
        missed = np.flatnonzero(areas == 0)
        gaps = np.abs(missed[:, None] - reached[None, :]).min(axis=1)
        scores[missed] = -gaps * float(slice_mm)
    return scores
