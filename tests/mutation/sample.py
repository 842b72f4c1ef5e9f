"""Sample a cosmic-ray session's mutants, and summarise the sample's outcomes.

cosmic-ray replaces each binary operator by every other one, so the kernels give
thousands of mutants; a uniform sample estimates the share killed at a cost a
2-core machine can pay (the standard error of a share p from n mutants is
sqrt(p (1 - p) / n)).

Usage::

    python tests/mutation/sample.py keep SESSION.sqlite N [--seed S]
    python tests/mutation/sample.py summary SESSION.sqlite
"""
import argparse
import functools
import math
import random
import sqlite3


def keep_sample(session, n, seed=0):
    """Delete all but ``n`` randomly chosen pending mutants; return how many were pending.

    Mutants of a decorator line are dropped first: they change Numba's
    compilation options (``cache``, ``parallel``, ``inline``, ``fastmath``), which
    do nothing when the kernels run uncompiled, as they do here.
    """
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT w.job_id, m.module_path, m.start_pos_row FROM work_items w"
            " JOIN mutation_specs m ON m.job_id = w.job_id"
            " WHERE w.job_id NOT IN (SELECT job_id FROM work_results) ORDER BY w.job_id"
        ).fetchall()
        pending = [job for job, path, row in rows if not _on_decorator(path, row)]
        keep = set(random.Random(seed).sample(pending, min(n, len(pending))))
        drop = [(job,) for job, _, _ in rows if job not in keep]
        for table in ("mutation_specs", "work_items"):
            db.executemany(f"DELETE FROM {table} WHERE job_id = ?", drop)
    return len(pending)


@functools.lru_cache(maxsize=None)
def _lines(path):
    with open(path) as f:
        return f.read().splitlines()


def _on_decorator(path, row):
    """Whether line ``row`` (1-based) of the file at ``path`` is a decorator."""
    return _lines(path)[row - 1].lstrip().startswith("@")


def summary(session):
    """Killed and survived mutants of a session.

    Filtered (skipped) mutants and those of decorator lines (see
    :func:`keep_sample`) are left out.

    Returns
    -------
    dict
        ``killed``, ``survived``, ``other`` (incompetent or not run), ``share``
        killed of killed + survived, and its standard error ``se``.
    """
    with sqlite3.connect(session) as db:
        rows = db.execute("SELECT r.worker_outcome, r.test_outcome, m.module_path,"
                          " m.start_pos_row FROM work_items w"
                          " JOIN mutation_specs m ON m.job_id = w.job_id"
                          " LEFT JOIN work_results r ON r.job_id = w.job_id").fetchall()
    rows = [(w, t) for w, t, path, row in rows
            if w != "SKIPPED" and not _on_decorator(path, row)]
    killed = sum(t == "KILLED" for _, t in rows)
    survived = sum(t == "SURVIVED" for _, t in rows)
    n = killed + survived
    share = killed / n if n else math.nan
    return {"killed": killed, "survived": survived, "other": len(rows) - n, "share": share,
            "se": math.sqrt(share * (1 - share) / n) if n else math.nan}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keep = commands.add_parser("keep", help="keep a random sample of the pending mutants")
    keep.add_argument("session")
    keep.add_argument("n", type=int)
    keep.add_argument("--seed", type=int, default=0)
    summarise = commands.add_parser("summary", help="killed share of the sample")
    summarise.add_argument("session")
    args = parser.parse_args()
    if args.command == "keep":
        total = keep_sample(args.session, args.n, args.seed)
        print(f"kept {min(args.n, total)} of {total} pending mutants")
    else:
        s = summary(args.session)
        print(f"{s['killed']} killed, {s['survived']} survived, {s['other']} other: "
              f"{100 * s['share']:.1f} % killed (standard error {100 * s['se']:.1f} %)")
