"""The reports of a batch run (:mod:`pcnnseg.batch`): CSV tables and a Markdown page.

Written in the batch's output folder, all together or not at all
(:class:`pcnnseg.outputs.OutputSet`):

- ``cases.csv``: one row per case: name, status, output, seconds, error, source,
  the worker process (``host:pid``) and its peak memory;
- ``metrics.csv`` (when some case has reference labels): one row per case and
  region, one column per metric;
- ``summary.csv``: per region and metric, over the cases with metrics, the
  mean, the median and the worst value with its case (NaN values, such as the
  sensitivity of a region absent from the reference, are left out);
- ``report.md``: counts, the summary, one row and one overlay per case, and the
  failures with their errors.

Numbers in the CSV files are written with ``repr``, so they read back exactly.
"""
import csv
import io
import math
import os

import numpy as np

from pcnnseg import outputs
from pcnnseg.batch import STATUSES
from pcnnseg.io import write_bytes_atomic

__all__ = ["HIGHER_IS_BETTER", "LOWER_IS_BETTER", "metric_rows", "status_counts",
           "summary_rows", "write_reports"]

#: Metrics summarised, by direction (others, such as ``tumor_slices``, are counts).
HIGHER_IS_BETTER = ("dice", "sensitivity", "specificity", "hit_rate", "mean_iou")
LOWER_IS_BETTER = ("hausdorff95",)


def status_counts(records):
    """``{status: cases}`` for each of :data:`pcnnseg.batch.STATUSES`, in that order."""
    return {status: sum(r.status == status for r in records) for status in STATUSES}


def metric_rows(records):
    """``(columns, rows)`` of ``metrics.csv``: case, region, then each metric."""
    columns, rows = [], []
    for record in records:
        for region, values in (record.metrics or {}).items():
            for name in values:
                if name not in columns:
                    columns.append(name)
            rows.append({"case": record.name, "region": region, **values})
    return ["case", "region"] + columns, rows


def summary_rows(records):
    """Rows of ``summary.csv``: region, metric, cases, mean, median, worst, worst_case."""
    values = {}
    for record in records:
        for region, scores in (record.metrics or {}).items():
            for name, value in scores.items():
                if name in HIGHER_IS_BETTER + LOWER_IS_BETTER and not math.isnan(value):
                    values.setdefault((region, name), []).append((value, record.name))
    rows = []
    for (region, name), pairs in values.items():
        numbers = np.array([v for v, _ in pairs], dtype=float)
        pick = np.argmax if name in LOWER_IS_BETTER else np.argmin
        worst = int(pick(numbers))
        rows.append({"region": region, "metric": name, "cases": len(pairs),
                     "mean": float(np.mean(numbers)), "median": float(np.median(numbers)),
                     "worst": float(numbers[worst]), "worst_case": pairs[worst][1]})
    return rows


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv(columns, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue().encode()


def _number(value):
    return "-" if value is None else f"{value:.3f}"


def _markdown(records, job, settings, summary):
    counts = status_counts(records)
    shown = ", ".join(f"{k} {v}" for k, v in settings.items() if k != "job")
    lines = [f"# pcnnseg {job}: {len(records)} case{'' if len(records) == 1 else 's'}", "",
             f"{counts['done']} done, {counts['skipped']} skipped (finished by an earlier "
             f"run), {counts['failed']} failed. Settings: {shown}.", ""]
    if summary:
        lines += ["## Summary", "", "| region | metric | cases | mean | median | worst (case) |",
                  "|---|---|---:|---:|---:|---|"]
        lines += [f"| {r['region']} | {r['metric']} | {r['cases']} | {_number(r['mean'])} | "
                  f"{_number(r['median'])} | {_number(r['worst'])} ({r['worst_case']}) |"
                  for r in summary]
        lines.append("")
    lines += ["## Cases", "", "| case | status | seconds | scores |", "|---|---|---:|---|"]
    for r in records:
        scores = "; ".join(f"{region}: " + ", ".join(
            f"{k} {_number(v)}" for k, v in values.items()) for region, values in
            (r.metrics or {}).items())
        lines.append(f"| {r.name} | {r.status} | {r.seconds:.1f} | {scores} |")
    lines.append("")
    for r in records:
        if r.status != "failed":
            picture = os.path.join("overlays", f"{r.name}.png")
            lines += [f"### {r.name}", "", f"![{r.name}]({picture})", ""]
    failed = [r for r in records if r.status == "failed"]
    if failed:
        lines += ["## Failures", ""] + [f"- {r.name}: {r.error}" for r in failed] + [""]
    return "\n".join(lines).encode()


def write_reports(out_dir, records, *, job, settings):
    """Write the batch's reports into ``out_dir``, replacing those of an earlier run.

    Parameters
    ----------
    out_dir : str
    records : list of pcnnseg.batch.CaseRecord
    job : str
        ``"segment"`` or ``"detect"``, for the report's title.
    settings : dict
        The batch's settings, listed in the report.

    Returns
    -------
    dict of str to str
        The paths written, by name (``"cases"``, ``"report"``, and with metrics
        ``"metrics"`` and ``"summary"``).
    """
    case_columns = ["name", "status", "output", "seconds", "error", "source", "worker",
                    "peak_memory_mib"]
    files = {"cases": _csv(case_columns, [vars(r) for r in records])}
    columns, rows = metric_rows(records)
    summary = summary_rows(records)
    if rows:
        files["metrics"] = _csv(columns, rows)
        files["summary"] = _csv(["region", "metric", "cases", "mean", "median", "worst",
                                 "worst_case"], summary)
    files["report"] = _markdown(records, job, settings, summary)
    names = {"cases": "cases.csv", "metrics": "metrics.csv", "summary": "summary.csv",
             "report": "report.md"}
    paths = {key: os.path.join(out_dir, names[key]) for key in files}
    with outputs.OutputSet() as staged:
        for key, data in files.items():
            staged.stage(paths[key], lambda p, data=data: write_bytes_atomic(p, data))
        staged.remove_on_commit(os.path.join(out_dir, names[k]) for k in ("metrics", "summary")
                                if k not in files)
        staged.commit()
    return paths
