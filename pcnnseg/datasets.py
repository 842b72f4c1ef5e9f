"""Datasets of many cases: which cases a folder or a glob holds, and reading one.

A *dataset* is one of

- a folder of BraTS case folders, in the 2018-2021 names
  (``<case>/<case>_flair.nii.gz`` ...) or the 2023 names
  (``<case>/<case>-t2f.nii.gz`` ...), labels optional (see
  :func:`pcnnseg.io.load_brats_case`);
- a folder of image files (``.nii.gz``, ``.nii``, ``.mha``, ``.mhd``, ``.nrrd``,
  ``.png``, ``.tif``), one case each, read as FLAIR; a file ``<name>_seg<ext>``
  or ``<name>-seg<ext>`` beside ``<name><ext>`` holds its reference labels;
- a glob pattern (``"scans/*.nii.gz"``, ``"brats*/Brats18_*"``) matching case
  folders, image files (paired with labels the same way) or DICOM series
  folders; other files it matches are left out.

A case folder that misses a sequence is still listed: reading it then fails
with a message naming the file, so a batch reports the case instead of
silently leaving it out.
"""
import glob
import os
import pathlib
import re
from dataclasses import dataclass

import numpy as np

from pcnnseg.io import BRATS_LAYOUTS, case_convention, check_same_grid, load_brats_case, read_image

__all__ = ["CaseSource", "Case", "IMAGE_SUFFIXES", "is_pattern", "is_dataset", "find_cases",
           "case_source", "check_unique_names", "load_case", "reference_labels"]

#: File name endings read as images when listing a folder (a DICOM series is one
#: case, not a dataset, so ``.dcm`` is not among them).
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".png", ".tif", ".tiff")

_LABEL_TAGS = ("_seg", "-seg")
_GLOB_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class CaseSource:
    """Where the files of one case are.

    Attributes
    ----------
    name : str
        The case's name, which its outputs take: the folder name of a BraTS
        case, the file name less its extension for an image.
    path : str
        The BraTS case folder, or the image file (or DICOM series folder).
    kind : {"brats", "image"}
    labels : str or None
        An image case's reference labels file, when there is one (a BraTS
        case's labels are found in its folder).
    """

    name: str
    path: str
    kind: str
    labels: str | None = None


@dataclass(frozen=True)
class Case:
    """One case read into memory.

    Attributes
    ----------
    name : str
    images : dict of str to ndarray
        Sequences under their canonical names (an image case: ``"flair"``).
    geometry : pcnnseg.io.Image
        The image whose grid the outputs take (FLAIR for a BraTS case).
    truth : ndarray of uint8 or None
        Reference labels in the BraTS 2018 convention (a plain mask reads as
        edema, 2), or None.
    has_regions : bool
        Whether ``truth`` holds tumor regions (core and enhancing tumor), not
        only a whole-tumor mask.
    """

    name: str
    images: dict
    geometry: object
    truth: np.ndarray | None
    has_regions: bool


def _image_stem(name):
    """``name`` less an image suffix, or None when it has none of :data:`IMAGE_SUFFIXES`."""
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return None


def _labels_beside(path):
    """The labels file ``<stem>_seg<ext>`` / ``<stem>-seg<ext>`` beside image ``path``."""
    folder, name = os.path.split(path)
    stem = _image_stem(name) or name
    for tag in _LABEL_TAGS:
        for suffix in IMAGE_SUFFIXES:
            candidate = os.path.join(folder, stem + tag + suffix)
            if os.path.isfile(candidate):
                return candidate
    return None


def _is_labels_file(path):
    """Whether ``path`` is the labels file of an image beside it."""
    folder, name = os.path.split(path)
    stem = _image_stem(name)
    if stem is None:
        return False
    for tag in _LABEL_TAGS:
        if stem.endswith(tag):
            base = stem[:-len(tag)]
            if any(os.path.isfile(os.path.join(folder, base + s)) for s in IMAGE_SUFFIXES):
                return True
    return False


def case_source(path):
    """The :class:`CaseSource` of one case path: a BraTS case folder, or an image
    file or DICOM folder (with its labels file when one lies beside it).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    CaseSource

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"cases: no such file or folder: {path!r}")
    name = os.path.basename(os.path.normpath(path))
    if os.path.isdir(path) and case_convention(path):
        return CaseSource(name=name, path=path, kind="brats")
    return CaseSource(name=_image_stem(name) or name, path=path, kind="image",
                      labels=_labels_beside(path))


def _inside(path, folder):
    if folder is None:
        return False
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _folder_entries(folder):
    """Case paths of a dataset folder: BraTS case folders and image files."""
    paths = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir() and case_convention(entry.path):
                paths.append(entry.path)
            elif entry.is_file() and _image_stem(entry.name) is not None:
                paths.append(entry.path)
    return paths


def is_pattern(path):
    """Whether ``path`` is a glob pattern (holds ``*``, ``?`` or ``[``) and not an
    existing path."""
    path = os.fspath(path)
    return not os.path.exists(path) and bool(_GLOB_MAGIC.search(path))


def is_dataset(path):
    """Whether ``path`` names many cases (a dataset) rather than one.

    One case: an image file, a BraTS case folder, a DICOM series folder. Many:
    a glob pattern that is not an existing path, or a folder holding BraTS case
    folders or image files.

    Parameters
    ----------
    path : str or os.PathLike or None

    Returns
    -------
    bool
    """
    if path is None:
        return False
    path = os.fspath(path)
    if is_pattern(path):
        return True
    if not os.path.isdir(path) or case_convention(path):
        return False
    return bool(_folder_entries(path))


def find_cases(source, *, exclude=None):
    """List the cases of a dataset: a folder or a glob pattern.

    Parameters
    ----------
    source : str or os.PathLike
        A folder of BraTS case folders and/or image files, or a glob pattern.
    exclude : str or os.PathLike, optional
        A folder whose contents are never cases (a batch's output folder inside
        the dataset, so that a rerun does not read its own outputs).

    Returns
    -------
    list of CaseSource
        Sorted by name. Label files paired with an image are not cases.

    Raises
    ------
    FileNotFoundError
        If ``source`` is neither an existing path nor a pattern that matches.
    ValueError
        If it holds no case, or two cases have the same name (their outputs
        would collide); the message names them.
    """
    source = os.fspath(source)
    if os.path.isdir(source) and case_convention(source):
        return [case_source(source)]   # one BraTS case folder: not its files as cases
    if os.path.isdir(source):
        paths = _folder_entries(source)
        where = f"folder {source!r}"
    elif os.path.exists(source):
        raise ValueError(f"DATASET: expected a folder of cases or a glob pattern, got the "
                         f"file {source!r}")
    elif is_pattern(source):
        paths = glob.glob(source)
        where = f"pattern {source!r}"
        if not paths:
            raise FileNotFoundError(f"DATASET: nothing matches the pattern {source!r}")
    else:
        raise FileNotFoundError(f"DATASET: no such folder: {source!r}")
    paths = [p for p in paths if not _inside(p, exclude) and not _is_labels_file(p)
             and (os.path.isdir(p) or _image_stem(os.path.basename(p)) is not None)]
    cases = sorted((case_source(p) for p in paths), key=lambda c: (c.name, c.path))
    if not cases:
        raise ValueError(f"DATASET: no case in {where} (expected BraTS case folders or "
                         f"image files ending in {', '.join(IMAGE_SUFFIXES)})")
    check_unique_names(cases)
    return cases


def check_unique_names(cases):
    """Raise ValueError naming two :class:`CaseSource` of the same name (their
    outputs would collide)."""
    seen = {}
    for case in cases:
        if case.name in seen:
            raise ValueError(f"DATASET: two cases are named {case.name!r} ({seen[case.name]!r} "
                             f"and {case.path!r}); their outputs would collide")
        seen[case.name] = case.path


def reference_labels(path, geometry, name_image="INPUT", name_labels="--labels"):
    """Reference labels read from ``path`` as a BraTS 2018 label map.

    A BraTS map (values of one convention, at least two kinds of tumor label)
    keeps its regions; anything else is a mask, any non-zero value tumor (read
    as edema, 2).

    Parameters
    ----------
    path : str or os.PathLike
    geometry : pcnnseg.io.Image
        The image the labels must share a grid with.
    name_image, name_labels : str
        How messages name the image and the labels.

    Returns
    -------
    labels : ndarray of uint8
    has_regions : bool
    """
    from pcnnseg.metrics import BRATS_LABEL_CONVENTIONS, convert_brats_labels

    image = read_image(path)
    check_same_grid(geometry, image, name_image, name_labels)
    labels = image.array
    values = set(np.unique(labels).tolist()) - {0}
    for convention, allowed in BRATS_LABEL_CONVENTIONS.items():
        if values <= set(allowed) and len(values) >= 2:
            return convert_brats_labels(labels, source=convention, target="2018"), True
    return np.where(labels != 0, 2, 0).astype(np.uint8), False


def load_case(source):
    """Read one case: its sequences, geometry and reference labels when present.

    Parameters
    ----------
    source : CaseSource

    Returns
    -------
    Case

    Raises
    ------
    FileNotFoundError, ValueError, OSError
        As :func:`pcnnseg.io.load_brats_case` and :func:`pcnnseg.io.read_image`
        (a missing sequence, a corrupt file, sequences on different grids).
    """
    if source.kind == "brats":
        folder = pathlib.Path(source.path)
        layout = BRATS_LAYOUTS[case_convention(folder)]
        has_labels = (folder / f"{folder.name}{layout['separator']}{layout['seg']}.nii.gz"
                      ).is_file()
        brats = load_brats_case(folder, labels=has_labels)
        return Case(name=source.name, images=dict(brats.images), geometry=brats.geometry,
                    truth=brats.labels, has_regions=brats.labels is not None)
    image = read_image(source.path)
    truth, has_regions = None, False
    if source.labels is not None:
        truth, has_regions = reference_labels(source.labels, image, source.path, source.labels)
    return Case(name=source.name, images={"flair": image.array}, geometry=image, truth=truth,
                has_regions=has_regions)
