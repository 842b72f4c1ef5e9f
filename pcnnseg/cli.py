"""The ``pcnnseg`` command.

Exit status: 0 on success, 2 for a usage or input error (one line on stderr),
3 when a batch run over a dataset finished but some of its cases failed (one
line each on stderr, and in the batch's report), 130 when interrupted by SIGINT
(Ctrl-C) and 143 by SIGTERM (128 + the signal's number, as shells report a
process the signal ended). Every output of a run is checked before the work
starts and written to a temporary file beside its target; the files then
replace their targets together (:mod:`pcnnseg.outputs`), so an error or an
interrupt leaves the previous outputs as they were and no temporary file. A
batch run (``segment`` or ``detect`` of a folder of cases or a glob,
:mod:`pcnnseg.batch`) does so per case: an interrupt keeps the cases finished so
far, and the same command resumes.
"""
import argparse
import json
import os
import re
import signal
import sys

import numpy as np
from tqdm import tqdm

import pcnnseg
from pcnnseg import batch, datasets, outputs, phantom
from pcnnseg.io import read_image, write_png
from pcnnseg.validation import DEFAULT_N_ITER, check_n_iter

# The models of ``signature --model``: None for the SPCNN with automatic
# parameters, else the name of a parameter set in pcnnseg.
_MODELS = {"spcnn": None, "pcnn": "PCNN", "icm": "ICM", "scm": "SCM"}

# Iterations the command accepts: its table prints one line per iteration, and
# the kernels keep a count per iteration.
_MAX_N_ITER = 100_000

#: Exit status of a batch run in which some cases failed.
EXIT_CASES_FAILED = 3

# Options of segment and detect that name the files of one case, and those of a
# batch run over a dataset.
_ONE_CASE_OPTIONS = ("t2", "t1ce", "t1", "labels", "brain_mask", "overlay", "all_slices")
_BATCH_OPTIONS = ("workers", "scheduler", "overwrite")


def _load_slice(path, slice_index, seed):
    """Return a (H, W) slice and a description of where it came from."""
    if path is None:
        image, _ = phantom.make_slice(seed=seed)
        return image, f"synthetic phantom slice (seed {seed})"
    array = read_image(path).array
    if array.ndim == 2:
        if slice_index is not None:
            raise ValueError("--slice: the image is 2-D, it has no slices to choose from")
        return array, path
    if array.ndim != 3:
        raise ValueError(f"IMAGE: expected a 2-D or 3-D image, got shape {array.shape}")
    z = array.shape[0] // 2 if slice_index is None else slice_index
    if not -array.shape[0] <= z < array.shape[0]:
        raise ValueError(f"--slice: expected an index in [-{array.shape[0]}, "
                         f"{array.shape[0]}), got {z}")
    return array[z], f"{path} slice {z % array.shape[0]}"


def fire_time_picture(fire_time, n_iter):
    """Fire-time map as uint8: early pulses bright, never-pulsing pixels black."""
    picture = np.zeros(fire_time.shape, dtype=np.uint8)
    fired = fire_time >= 0
    picture[fired] = np.round(255 * (n_iter - fire_time[fired]) / n_iter).astype(np.uint8)
    return picture


def _n_iter(text):
    """argparse type of ``--n-iter``: an integer from 1 to ``_MAX_N_ITER`` that the
    library accepts (:func:`pcnnseg.validation.check_n_iter`)."""
    wrong = f"expected an integer from 1 to {_MAX_N_ITER}, got {text!r}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(wrong) from None
    if not 1 <= value <= _MAX_N_ITER:
        raise argparse.ArgumentTypeError(wrong)
    try:
        return check_n_iter(value)
    except (TypeError, ValueError) as err:   # its own words, less its argument's name
        raise argparse.ArgumentTypeError(re.sub(r"^n_iter: ", "", str(err))) from None


def _check_not_constant(image, source, of_volume):
    """A constant slice has no intensity range: say so in the command's terms
    (the library's message suggests a ``value_range`` the command does not have)."""
    lo, hi = float(np.min(image)), float(np.max(image))
    if lo == hi:
        hint = "; choose another slice with --slice" if of_volume else ""
        raise ValueError(f"IMAGE: {source} is constant (every value is {lo:g}), so it has "
                         f"nothing to pulse{hint}")


def _command_kernels(args):
    """The kernels a command compiles on its first run; see _announce_compilation."""
    import pcnnseg_kernels as k

    if args.command == "signature":
        return [k.pcnn_image]
    fitted = [k.ensemble_sum] if args.segmenter else []
    if args.command == "segment" or args.method in (None, "map"):
        return [k.pcnn_volume] + fitted
    return ([k.pcnn_batch, k.proposals.felzenszwalb_labels, k.proposals.region_statistics,
             k.proposals.hierarchical_grouping]
            + ([k.pcnn_image] if args.method == "published" else []))


def _announce_compilation(args):
    """One line on stderr when this run compiles the kernels (cold Numba cache)."""
    if getattr(args, "quiet", False):
        return
    import pcnnseg_kernels

    if pcnnseg_kernels.runtime.cache_is_cold(_command_kernels(args)):
        when = ("first run only" if pcnnseg_kernels.runtime.caching_enabled
                else "no writable cache folder, so on every run")
        print(f"pcnnseg {args.command}: compiling kernels ({when}, 10 to 40 s)...",
              file=sys.stderr, flush=True)


def _signature(args):
    from pcnnseg.signatures import binary_entropy

    if args.fire_time:
        outputs.check_output_file(args.fire_time, "--fire-time")
    image, source = _load_slice(args.image, args.slice, args.seed)
    _check_not_constant(image, source, of_volume=args.image is not None
                        and source != args.image)
    name = _MODELS[args.model]
    model = None if name is None else getattr(pcnnseg, name)()
    outputs._test_pause("work")
    _announce_compilation(args)
    result = pcnnseg.pulse(image, model, n_iter=args.n_iter)
    counts = result.counts
    fraction = counts / image.size
    entropy = binary_entropy(fraction)
    if args.fire_time:
        picture = fire_time_picture(result.fire_time, args.n_iter)
        with outputs.OutputSet() as files:
            files.stage(args.fire_time, lambda path: write_png(path, picture))
            files.commit()
    if args.json:
        json.dump({"source": source, "shape": list(image.shape), "model": repr(result.model),
                   "counts": counts.tolist(), "normalized": fraction.tolist(),
                   "entropy": entropy.tolist()}, sys.stdout, indent=2)
        print()
        return 0
    print(f"# {source}, shape {image.shape}")
    print(f"# model {result.model!r}")
    print(f"{'k':>4} {'G[k]':>9} {'G[k]/HW':>9} {'entropy':>8}")
    for k in range(args.n_iter):
        print(f"{k:>4} {counts[k]:>9d} {fraction[k]:>9.5f} {entropy[k]:>8.4f}")
    if args.fire_time:
        print(f"# fire-time map written to {args.fire_time}")
    return 0


def _stem(path):
    """Input file name without its extension ("phantom" when there is no input)."""
    stem = "phantom" if path is None else os.path.basename(os.path.normpath(path))
    return re.sub(r"(\.nii\.gz|\.[A-Za-z]+)$", "", stem) or "image"


def _output_paths(args):
    """Mask and overlay paths: given, or derived from the input's name."""
    output = args.output or f"{_stem(args.input)}_tumor.nii.gz"
    overlay = args.overlay or re.sub(r"(\.nii\.gz|\.[A-Za-z]+)$", "", output) + "_overlay.png"
    if os.path.abspath(overlay) == os.path.abspath(output):
        raise ValueError(f"--overlay: the overlay would overwrite the mask {output!r}")
    return output, overlay


def _phantom_image(volume):
    from pcnnseg.io import Image
    return Image(array=volume, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                 direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))


def _read_input(args):
    """INPUT (or the phantom when none) as ``(images, geometry, truth, has_regions,
    description)``: a dict of sequences, the :class:`~pcnnseg.io.Image` whose
    geometry outputs take, the reference as a 2018 label map or None, and
    whether that reference has tumor regions.

    INPUT is an image file or DICOM folder (FLAIR, or whatever sequence the user
    gives; ``--t1``, ``--t1ce``, ``--t2`` add the others), or a BraTS case folder
    (either naming convention), whose labels are the reference when present.
    """
    from pcnnseg.io import case_convention, check_same_grid

    truth, has_regions = None, False
    if args.input is None:
        images, truth = phantom.make_case(seed=args.seed)
        geometry, has_regions = _phantom_image(images["flair"]), True
        source = f"synthetic phantom case (seed {args.seed})"
    elif os.path.isdir(args.input) and case_convention(args.input):
        case = datasets.load_case(datasets.case_source(args.input))
        images, geometry, source = case.images, case.geometry, args.input
        truth, has_regions = case.truth, case.has_regions
    else:
        geometry = read_image(args.input)
        images, source = {"flair": geometry.array}, args.input
    for name in ("t1", "t1ce", "t2"):
        path = getattr(args, name, None)
        if path:
            extra = read_image(path)
            check_same_grid(geometry, extra, "INPUT", f"--{name}")
            images[name] = extra.array
    if args.labels:
        truth, has_regions = datasets.reference_labels(args.labels, geometry)
    return images, geometry, truth, has_regions, source


def _check_mode_options(args, many):
    """Refuse options of one case for a dataset, and batch options for one case."""
    wrong = _ONE_CASE_OPTIONS if many else _BATCH_OPTIONS
    for name in wrong:
        if getattr(args, name, None):
            option = "--" + name.replace("_", "-")
            what = ("names the files of one case; a dataset's cases bring their own"
                    if many else "applies to a dataset (a folder of cases or a glob)")
            raise ValueError(f"{option}: {what}")


def _check_unet_options(args):
    """The U-Net has none of the PCNN's options."""
    if args.method == "unet":
        for option, used in (("--segmenter", args.segmenter), ("--brain-mask", args.brain_mask),
                             ("--selection", args.selection != "thickest"),
                             ("--satellites", args.satellites is not None)):
            if used:
                raise ValueError(f"{option}: a PCNN option; --method unet takes none")


def _segment(args):
    from pcnnseg.io import check_mask_format, check_same_grid, write_label_map, write_mask
    from pcnnseg.metrics import brats_regions, dice
    from pcnnseg.overlay import overlay_slices
    from pcnnseg.tumor import segment_tumor

    many = datasets.is_dataset(args.input)
    _check_mode_options(args, many)
    _check_unet_options(args)
    if many:
        return _run_batch(args)
    output, overlay = _output_paths(args)
    outputs.check_output_file(output, "-o")
    outputs.check_output_file(overlay, "--overlay")
    images, geometry, truth, has_regions, source = _read_input(args)
    # before the work, and naming -o rather than the temporary file
    check_mask_format(output, geometry.array.shape, "-o")
    segmenter = batch.load_segmenter(args.segmenter)
    brain = None
    if args.brain_mask:
        mask = read_image(args.brain_mask)
        check_same_grid(geometry, mask, "INPUT", "--brain-mask")
        brain = mask.array != 0
    spacing = batch.spacing_of(geometry) if len(geometry.spacing) == 3 else (1.0, 1.0, 1.0)
    outputs._test_pause("work")
    if args.method == "unet":
        result = batch.unet_segment(images, regions=args.regions,
                                    label_convention=args.label_convention)
    else:
        _announce_compilation(args)
        with tqdm(total=4 if args.regions else 3, unit="step", desc="segment",
                  disable=args.quiet) as bar:
            def progress(done, total):
                bar.update(done - bar.n)
            chosen = {} if args.satellites is None else {"satellites": args.satellites}
            result = segment_tumor(images, brain_mask=brain, spacing=spacing,
                                   regions=args.regions, label_convention=args.label_convention,
                                   selection=args.selection, segmenter=segmenter,
                                   progress=progress, **chosen)
    if args.regions:
        found = brats_regions(result, convention=args.label_convention)
    else:
        found = {"whole_tumor": result}
    reference = None if truth is None else brats_regions(truth)
    picture = overlay_slices(geometry.array, found["whole_tumor"],
                             None if reference is None else reference["whole_tumor"])
    writer = write_label_map if args.regions else write_mask
    with outputs.OutputSet() as files:
        files.stage(output, lambda path: writer(path, result, geometry))
        files.stage(overlay, lambda path: write_png(path, picture))
        files.commit()
    used = ", ".join(images)
    print(f"{source} ({used}): {int(found['whole_tumor'].sum())} tumor voxels of "
          f"{found['whole_tumor'].size}")
    what = (f"label map ({args.label_convention} labels)" if args.regions else "mask")
    print(f"{what} written to {output}, overlay to {overlay}")
    if reference is not None:
        names = ["whole_tumor"] + (["tumor_core", "enhancing"]
                                   if args.regions and has_regions else [])
        scores = ", ".join(f"{n.replace('_', ' ')} {dice(found[n], reference[n]):.3f}"
                           for n in names)
        print(f"Dice against the reference: {scores}")
    return 0


_PICTURE = re.compile(r"slice_\d{3,}\.png")


def _stale_pictures(outdir, new_names):
    """Slice pictures of an earlier detect run in ``outdir`` that this run does not
    redraw. Only a folder holding a ``detections.json`` is taken for an earlier
    run's, so pictures the user keeps elsewhere are never touched."""
    if not os.path.isfile(os.path.join(outdir, "detections.json")):
        return []
    return [os.path.join(outdir, name) for name in os.listdir(outdir)
            if _PICTURE.fullmatch(name) and name not in new_names]


def _detect(args):
    from pcnnseg.batch import detect_boxes
    from pcnnseg.io import write_bytes_atomic
    from pcnnseg.overlay import box_picture

    many = datasets.is_dataset(args.input)
    _check_mode_options(args, many)
    if many:
        return _run_batch(args)
    outdir = args.output or f"{_stem(args.input)}_detect"
    outputs.check_output_folder(outdir, "-o")
    images, geometry, labels, _, source = _read_input(args)
    volume = images["flair"] if "flair" in images else geometry.array
    truth = None if labels is None else labels > 0
    if volume.ndim not in (2, 3):
        raise ValueError(f"INPUT: expected a 2-D slice or a 3-D volume, got shape {volume.shape}")
    method = args.method = (_detect_method(args, volume.ndim)
                            or batch.default_detect_method(volume.ndim))
    segmenter = batch.load_segmenter(args.segmenter)
    spacing = batch.spacing_of(geometry) if volume.ndim == 3 else None
    slices = volume[None] if volume.ndim == 2 else volume
    outputs._test_pause("work")
    _announce_compilation(args)
    with outputs.OutputSet() as files:
        files.make_folder(outdir)
        _, rows = detect_boxes(images, volume, truth, spacing=spacing, method=method,
                               segmenter=segmenter)
        pictures = []
        for z, _, box, truth_box in rows:
            if box is not None or truth_box is not None or args.all_slices:
                picture = box_picture(slices[z], box, truth_box)
                pictures.append(f"slice_{z:03d}.png")
                files.stage(os.path.join(outdir, pictures[-1]),
                            lambda path, picture=picture: write_png(path, picture))
        summary = batch.detections_report(source, volume.shape, method, rows)
        report = os.path.join(outdir, "detections.json")
        text = (json.dumps(summary, indent=1) + "\n").encode()
        files.stage(report, lambda path: write_bytes_atomic(path, text))
        files.remove_on_commit(_stale_pictures(outdir, set(pictures)))
        files.commit()
    tumor = summary["tumor_slices"]
    print(f"{source}: a tumor box on {len(tumor)} of {len(rows)} slices with brain"
          + (f" ({_ranges(tumor)})" if tumor else "") + f", method {method}")
    print(f"boxes written to {report}, pictures to {outdir}/slice_*.png")
    ious = batch.reference_ious(rows)
    if ious:
        print(f"IoU >= 0.5 with the reference box on {sum(iou >= 0.5 for iou in ious)} of "
              f"{len(ious)} slices with a tumor")
    return 0


def _detect_method(args, ndim):
    """The box method that --method or --published ask for (None: the input's default),
    checked against the input's dimensions and --segmenter."""
    if args.published and args.method not in (None, "published"):
        raise ValueError(f"--published contradicts --method {args.method}")
    method = "published" if args.published else args.method
    if method == "map" and ndim != 3:
        raise ValueError("--method map reads boxes off a 3-D tumor map: INPUT is a 2-D "
                         "slice; use --method reference or published")
    if args.segmenter and (method or batch.default_detect_method(ndim)) != "map":
        raise ValueError("--segmenter: only the map method segments (give a volume, "
                         "--method map)")
    return method


def _ranges(indices):
    """``[3, 4, 5, 9]`` as ``"slices 3-5, 9"``."""
    parts, start = [], None
    for i, z in enumerate(indices):
        if start is None:
            start = z
        if i + 1 == len(indices) or indices[i + 1] != z + 1:
            parts.append(f"{start}" if start == z else f"{start}-{z}")
            start = None
    return "slices " + ", ".join(parts)


def _default_outdir(args):
    if datasets.is_pattern(args.input):
        raise ValueError("-o: give the output folder of a batch over a glob pattern")
    suffix = "tumor" if args.command == "segment" else "detect"
    return f"{_stem(args.input)}_{suffix}"


def _batch_progress(bar):
    """``progress`` of :func:`pcnnseg.batch.segment_many`: the bar, a line per failure."""
    def progress(record, done, total):
        bar.update(1)
        if record.status == "failed":
            tqdm.write(f"{record.name}: failed: {record.error}", file=sys.stderr)
    return progress


def _print_batch_summary(records, outdir):
    from pcnnseg.batch_report import status_counts, summary_rows

    counts = status_counts(records)
    print(f"{len(records)} case{'' if len(records) == 1 else 's'}: {counts['done']} done, {counts['skipped']} skipped "
          f"(finished earlier), {counts['failed']} failed; outputs in {outdir}, report "
          f"{os.path.join(outdir, 'report.md')}")
    for row in summary_rows(records):
        if row["metric"] in ("dice", "hit_rate"):
            print(f"{row['region'].replace('_', ' ')} {row['metric'].replace('_', ' ')} over "
                  f"{row['cases']} case{'' if row['cases'] == 1 else 's'}: mean {row['mean']:.3f}, median {row['median']:.3f}, "
                  f"worst {row['worst']:.3f} ({row['worst_case']})")


def _run_batch(args):
    """``segment`` / ``detect`` of a dataset: every case, in parallel."""
    outdir = args.output or _default_outdir(args)
    outputs.check_output_folder(outdir, "-o")
    cases = datasets.find_cases(args.input, exclude=outdir)
    options = {"workers": args.workers, "scheduler": args.scheduler,
               "overwrite": args.overwrite}
    batch.load_segmenter(args.segmenter)   # a bad file: one error now, not one per case
    if args.command == "segment":
        run = batch.segment_many
        options.update(method=args.method, regions=args.regions,
                       label_convention=args.label_convention, selection=args.selection,
                       satellites=args.satellites,
                       segmenter=args.segmenter)
        if args.method == "pcnn":
            _announce_compilation(args)
    else:
        run = batch.detect_many
        args.method = _detect_method(args, 3)   # None: each case's default
        options.update(method=args.method, segmenter=args.segmenter)
        _announce_compilation(args)
    try:
        with tqdm(total=len(cases), unit="case", desc=args.command,
                  disable=args.quiet) as bar:
            records = run(cases, outdir, progress=_batch_progress(bar), **options)
    except BaseException as err:
        if batch.interrupt_signal(err) is not None:
            err.batch_note = "the finished cases are kept; the same command resumes"
        raise
    _print_batch_summary(records, outdir)
    return EXIT_CASES_FAILED if any(r.status == "failed" for r in records) else 0


def _workers(text):
    """argparse type of ``--workers``: a positive integer."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _add_batch_options(parser):
    parser.add_argument("--workers", type=_workers, metavar="N",
                        help="dataset: worker processes on this machine (default: the "
                             f"usable cores, {batch.usable_cores()} here)")
    parser.add_argument("--scheduler", metavar="ADDRESS|local:N",
                        help="dataset: run on a dask.distributed cluster, at its scheduler's "
                             "address, or on a new local one of N workers (pip install "
                             "'pcnnseg[dask]'); the workers must see DATASET and -o under the "
                             "same paths")
    parser.add_argument("--overwrite", action="store_true",
                        help="dataset: redo cases finished by an earlier run (default: skip "
                             "them)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="pcnnseg",
        description="Pulse-coupled neural network segmentation of medical images.")
    parser.add_argument("--version", action="version", version=f"pcnnseg {pcnnseg.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sig = sub.add_parser(
        "signature", help="time signature G[k] of a slice",
        description="Print the PCNN time signature of a slice: pulses per iteration, "
                    "normalised by the pixel count, and their entropy. With no IMAGE, "
                    "a synthetic phantom slice.")
    sig.add_argument("image", nargs="?", metavar="IMAGE",
                     help="2-D or 3-D image (NIfTI, MetaImage, NRRD, PNG, TIFF, ...)")
    sig.add_argument("--slice", type=int, default=None,
                     help="slice index of a 3-D image (default: the middle one)")
    sig.add_argument("--model", choices=sorted(_MODELS), default="spcnn",
                     help="model (default: spcnn, parameters set from the image)")
    sig.add_argument("--n-iter", type=_n_iter, default=DEFAULT_N_ITER,
                     help=f"iterations, 1 to {_MAX_N_ITER} (default {DEFAULT_N_ITER})")
    sig.add_argument("--seed", type=int, default=0, help="phantom seed when no IMAGE")
    sig.add_argument("--fire-time", metavar="PNG", help="also write the fire-time map as PNG")
    sig.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sig.add_argument("-q", "--quiet", action="store_true",
                     help="no message when the first run compiles the kernels")
    sig.set_defaults(run=_signature)

    seg = sub.add_parser(
        "segment", help="whole-tumor mask or BraTS label map of an MRI slice or volume",
        description="Segment the whole tumor (tumor and edema) of skull-stripped MRI with "
                    "a 3-D PCNN, no training (pcnnseg.segment_tumor): FLAIR alone, or with "
                    "T2 (better), T1ce and T1 (--regions: tumor core and enhancing tumor "
                    "as a BraTS label map). Writes the result with the input's geometry "
                    "and a PNG overlay of the slices with most tumor (red; the reference "
                    "in green when given). With no INPUT, a synthetic four-sequence "
                    "phantom case, and the Dice against its exact labels. Given a dataset "
                    "(a folder of BraTS case folders or of image files, or a glob), "
                    "segments every case in parallel into the folder -o: <case>.nii.gz, "
                    "overlays/, records/, cases.csv, report.md, and with labels "
                    "metrics.csv and summary.csv; exit status 3 when some cases failed.")
    seg.add_argument("input", nargs="?", metavar="INPUT",
                     help="FLAIR image (NIfTI, MetaImage, NRRD, DICOM series folder, ...) "
                          "or a BraTS case folder (2018 or 2023 file names: all four "
                          "sequences, and its labels as the reference); or a dataset: a "
                          "folder of such case folders or image files, or a quoted glob")
    for name, what in (("t2", "T2"), ("t1ce", "contrast-enhanced T1"), ("t1", "T1")):
        seg.add_argument(f"--{name}", metavar="FILE",
                         help=f"{what} image on the grid of INPUT")
    seg.add_argument("--regions", action="store_true",
                     help="write a BraTS label map (core, edema, enhancing; needs T1ce) "
                          "instead of a whole-tumor mask")
    seg.add_argument("--label-convention", choices=("2018", "2023"), default="2018",
                     help="labels of the map: enhancing tumor 4 (2018, default) or 3 (2023)")
    seg.add_argument("--selection", choices=("thickest", "largest", "asymmetry"),
                     default="thickest",
                     help="which bright component is the tumor (default: thickest)")
    seg.add_argument("--satellites", type=float, metavar="SHARE",
                     help="also keep the components scoring at least SHARE (0-1) of the "
                          "tumor's score: satellite lesions of a multifocal tumor "
                          "(default: the method's; a --segmenter brings its own)")
    seg.add_argument("--segmenter", metavar="FILE",
                     help="a fitted readout instead of the untrained stimulus: 'default' "
                          "for the bundled one (four sequences), or a file of "
                          "pcnnseg.fit_segmenter(...).save()")
    seg.add_argument("--brain-mask", metavar="FILE",
                     help="brain mask on the grid of INPUT (default: the non-zero voxels "
                          "of a skull-stripped image)")
    seg.add_argument("--method", choices=("pcnn", "unet"), default="pcnn",
                     help="the PCNN (default) or the compressed U-Net baseline (four "
                          "sequences; needs PyTorch)")
    seg.add_argument("-o", "--output",
                     help="mask file (default: <input name>_tumor.nii.gz); for a dataset, "
                          "the output folder (default: <dataset name>_tumor)")
    seg.add_argument("--overlay", metavar="PNG",
                     help="overlay (default: the mask's name with _overlay.png)")
    seg.add_argument("--labels", metavar="FILE",
                     help="reference labels (BraTS labels score the regions too; otherwise "
                          "any non-zero = tumor): drawn and scored")
    seg.add_argument("--seed", type=int, default=0, help="phantom seed when no INPUT")
    _add_batch_options(seg)
    seg.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bar, no message when the first run compiles")
    seg.set_defaults(run=_segment)

    det = sub.add_parser(
        "detect", help="tumor box of each slice of a FLAIR slice or volume",
        description="Find the tumor box of every slice with brain, or say it has none. "
                    "A volume is segmented once in 3-D and each slice gets the box of "
                    "the tumor map on it, none under a minimum area (method map, "
                    "pcnnseg.detect_volume); a slice gets the selective-search proposal "
                    "whose PCNN time signature is nearest to labelled tumor boxes "
                    "(method reference, pcnnseg.detect). Writes OUTDIR/detections.json "
                    "(per slice: tumor yes or no, box (x, y, w, h), score; the tumor "
                    "slices) and a PNG per slice with a box or a reference tumor (the box in "
                    "red, the reference box in green when labels are given; every slice with "
                    "--all-slices). With no INPUT, "
                    "a synthetic phantom volume with its exact labels. Given a dataset (a "
                    "folder of BraTS case folders or of image files, or a glob), detects "
                    "in every case in parallel: OUTDIR/<case>.json, overlays/, records/, "
                    "cases.csv, report.md, and with labels metrics.csv and summary.csv; "
                    "exit status 3 when some cases failed.")
    det.add_argument("input", nargs="?", metavar="INPUT",
                     help="FLAIR slice or volume (NIfTI, MetaImage, NRRD, PNG, ...) or a "
                          "BraTS case folder; or a dataset: a folder of such case folders "
                          "or image files, or a quoted glob")
    det.add_argument("-o", "--output", metavar="OUTDIR",
                     help="output folder (default: <input name>_detect)")
    det.add_argument("--labels", metavar="FILE",
                     help="reference labels (any non-zero = tumor): drawn and scored")
    det.add_argument("--method", choices=batch.DETECT_METHODS,
                     help="map: boxes read off the 3-D tumor map, with a 'no tumor' answer "
                          "(default for volumes); reference: proposals ranked against "
                          "labelled tumor boxes (default for slices; a box on every slice); "
                          "published: ranked by distance to the slice's own signature")
    det.add_argument("--published", action="store_true",
                     help="same as --method published")
    det.add_argument("--segmenter", metavar="FILE",
                     help="map method: segment with a fitted readout: 'default' (bundled) "
                          "or a file saved by pcnnseg.fit_segmenter(...).save()")
    det.add_argument("--all-slices", action="store_true",
                     help="draw a picture of every slice with brain, not only those with a box")
    det.add_argument("--seed", type=int, default=0, help="phantom seed when no INPUT")
    _add_batch_options(det)
    det.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bar, no message when the first run compiles")
    det.set_defaults(run=_detect)
    return parser


def main(argv=None):
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with outputs.interrupts_raise():
            return args.run(args)
    except BaseException as err:
        signum = batch.interrupt_signal(err)
        if signum is not None:
            done = getattr(err, "batch_note", None) or (
                "after writing its outputs" if getattr(err, "after_commit", False)
                else "nothing written")
            print(f"pcnnseg {args.command}: interrupted ({signal.Signals(signum).name}), "
                  f"{done}", file=sys.stderr)
            return 128 + signum
        if isinstance(err, MemoryError):
            print(f"pcnnseg {args.command}: error: not enough memory ({err})",
                  file=sys.stderr)
            return 2
        if isinstance(err, (ValueError, TypeError, OSError, ImportError)):
            print(f"pcnnseg {args.command}: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
