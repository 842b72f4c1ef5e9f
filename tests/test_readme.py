"""The README's code runs as written (issue 16, "Packaging and the first run").

Its ``python`` blocks run in order in one namespace, as a reader pasting them into
one session would, in a folder beside a ``../shared/data`` made of small synthetic
phantom cases written as BraTS files (both naming conventions), so the paths the
README names load real files. A failure points at the README's line. The blocks
that import ``cnn_baseline`` need torch and are skipped without it.

Its shell blocks are parsed, not run: every ``pcnnseg`` command they hold, and
every option and choice of the command-line synopsis, is checked against the
parser of :mod:`pcnnseg.cli`, and every ``pip install`` extra against
``pyproject.toml``.
"""
import argparse
import ast
import contextlib
import importlib.util
import os
import pathlib
import re
import shlex
import traceback

import numpy as np
import pytest
import SimpleITK as sitk

from pcnnseg import phantom
from pcnnseg.cli import build_parser
from pcnnseg.io import BRATS_LAYOUTS

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Small enough that every block runs in seconds; make_case needs 16 per axis.
PHANTOM_SHAPE = (16, 64, 64)
CASE_2023 = "brats2023_ssa/BraTS-SSA-00002-000"
CASES_2018 = ("brats2018/Brats18_PHANTOM_1_1", "brats2018/Brats18_PHANTOM_2_1")


def fenced_blocks(text, language):
    """Fenced code blocks of one language.

    Parameters
    ----------
    text : str
        Markdown.
    language : str
        The word after the opening fence (``"python"``, ``"bash"``), ``""`` for
        blocks without one.

    Returns
    -------
    list of (int, str)
        For each block, the 1-based line number of its first code line and its code.
    """
    blocks, start, opened, lines = [], None, None, text.splitlines()
    for number, line in enumerate(lines, start=1):
        if start is None and line.startswith("```"):
            start, opened = number + 1, line[3:].strip()
        elif start is not None and line.strip() == "```":
            if opened == language:
                blocks.append((start, "\n".join(lines[start - 1:number - 1]) + "\n"))
            start = None
    return blocks


def test_fenced_blocks_finds_blocks_and_their_lines():
    text = "a\n```python\nx = 1\ny = 2\n```\n```bash\nls\n```\n```\nplain\n```\n"
    assert fenced_blocks(text, "python") == [(3, "x = 1\ny = 2\n")]
    assert fenced_blocks(text, "bash") == [(7, "ls\n")]
    assert fenced_blocks(text, "") == [(10, "plain\n")]


README_TEXT = README.read_text(encoding="utf-8")
PYTHON_BLOCKS = fenced_blocks(README_TEXT, "python")


def test_the_readme_has_the_blocks_this_file_checks():
    assert len(PYTHON_BLOCKS) >= 6
    assert len(fenced_blocks(README_TEXT, "bash")) >= 2
    assert any("pcnnseg segment" in code for _, code in fenced_blocks(README_TEXT, ""))


# ------------------------------------------------------------------ python blocks

def _write_case(folder, convention, seed):
    """A phantom case as BraTS files: four sequences and labels, ``convention`` names."""
    layout = BRATS_LAYOUTS[convention]
    folder.mkdir(parents=True)
    images, labels = phantom.make_case(PHANTOM_SHAPE, seed=seed)
    if convention == "2023":
        labels = np.where(labels == 4, 3, labels).astype(np.uint8)
    for key, array in {**images, "seg": labels}.items():
        name = f"{folder.name}{layout['separator']}{layout[key]}.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(array), str(folder / name), True)


def _phantom_data(root):
    """``root/shared/data`` laid out like the real one; returns ``root/work``."""
    data = root / "shared" / "data"
    _write_case(data / CASE_2023, "2023", seed=0)
    for seed, case in enumerate(CASES_2018, start=1):
        _write_case(data / case, "2018", seed=seed)
    (root / "work").mkdir()
    return root / "work"


def _needs_torch(code):
    tree = ast.parse(code)
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)]
    return any(name.split(".")[0] == "cnn_baseline" for name in imported)


def _compiled(line, code):
    """``code`` compiled so that tracebacks name README.md and its line numbers."""
    tree = ast.increment_lineno(ast.parse(code), line - 1)
    return compile(tree, str(README), "exec")


def _one_openmp_thread():
    """OpenMP pools limited to one thread, scikit-learn's included.

    On a busy 2-core machine the spinning OpenMP threads of scikit-learn's
    gradient boosting (``fit_segmenter``) made one fit take from 0.3 s to over a
    minute; the README's results do not depend on the thread count.
    """
    try:
        import sklearn.ensemble  # noqa: F401  loads the OpenMP runtime to limit
        from threadpoolctl import threadpool_limits
    except ImportError:  # without scikit-learn, nothing to limit
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="openmp")


def test_compiled_blocks_report_readme_lines():
    with pytest.raises(ValueError) as info:
        exec(_compiled(10, "x = 1\nraise ValueError('here')\n"), {})
    last = info.traceback[-1]
    assert str(last.path) == str(README) and last.lineno + 1 == 11  # lineno is 0-based


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Run every python block once, in order; ``(namespace, outcome per first line)``.

    An outcome is None (ran), ``"skip: ..."`` or ``"fail: <traceback>"``; after a
    failure the later blocks are not run (they may need its names).
    """
    work = _phantom_data(tmp_path_factory.mktemp("readme"))
    have_torch = importlib.util.find_spec("torch") is not None
    namespace, outcomes, failed = {"__name__": "readme"}, {}, None
    here, stack = os.getcwd(), contextlib.ExitStack()
    os.chdir(work)
    try:
        stack.enter_context(_one_openmp_thread())
        for line, code in PYTHON_BLOCKS:
            if failed is not None:
                outcomes[line] = f"skip: the block at README line {failed} failed"
            elif _needs_torch(code) and not have_torch:
                outcomes[line] = "skip: needs torch"
            else:
                try:
                    exec(_compiled(line, code), namespace)
                    outcomes[line] = None
                except Exception:  # reported by the test of this block
                    outcomes[line] = "fail: " + traceback.format_exc()
                    failed = line
    finally:
        stack.close()
        os.chdir(here)
    return namespace, outcomes


@pytest.mark.parametrize("line", [line for line, _ in PYTHON_BLOCKS],
                         ids=[f"line{line}" for line, _ in PYTHON_BLOCKS])
def test_readme_python_block_runs(readme_run, line):
    outcome = readme_run[1][line]
    if outcome is not None and outcome.startswith("skip: "):
        pytest.skip(outcome[6:])
    assert outcome is None, f"README block at line {line}:\n{outcome[6:]}"


def test_readme_results_are_what_the_comments_say(readme_run):
    ns, outcomes = readme_run
    if any(outcome and outcome.startswith("fail") for outcome in outcomes.values()):
        pytest.skip("a block failed (reported by its own test)")
    assert ns["result"].fire_time.shape == (240, 240) and ns["result"].counts.shape == (50,)
    assert ns["batch"].shape == (3, 50)
    assert ns["vol"].fire_time.shape == ns["volume"].shape
    assert ns["mask"].shape == ns["case"].shape and ns["mask"].dtype == bool
    assert set(np.unique(ns["labels"])) <= {0, 1, 2, 4}
    assert set(np.unique(ns["labels23"])) <= {0, 1, 2, 3}
    assert len(ns["found"].box) == 4 and len(ns["found"].candidates) == len(ns["found"].distances)
    assert isinstance(ns["my_ref"], ns["Reference"])
    assert len(ns["my_labelled_cases"]) == len(CASES_2018)


# ------------------------------------------------------------------ shell blocks

def _subparsers(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def _pcnnseg_commands(code):
    """Argument lists of the ``pcnnseg`` commands in a shell block's lines."""
    commands = []
    for line in code.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part, comments=True)
            if words and words[0] == "pcnnseg":
                commands.append(words[1:])
    return commands


def test_pcnnseg_commands_finds_each_command():
    code = ". .venv/bin/activate && pcnnseg segment --regions && pcnnseg detect # x\n"
    assert _pcnnseg_commands(code) == [["segment", "--regions"], ["detect"]]


@pytest.mark.parametrize("line, code", fenced_blocks(README_TEXT, "bash"),
                         ids=[f"line{line}" for line, _ in fenced_blocks(README_TEXT, "bash")])
def test_readme_shell_commands_parse(line, code):
    parser = build_parser()
    for args in _pcnnseg_commands(code):
        try:
            parsed = parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"README line {line}: pcnnseg {shlex.join(args)} does not parse")
        assert parsed.command == args[0]


def _synopsis():
    """``{command: [bracketed item, ...]}`` from the README's command-line block."""
    (code,) = [code for _, code in fenced_blocks(README_TEXT, "")
               if code.startswith("pcnnseg ")]
    items, command = {}, None
    for line in code.splitlines():
        if line.startswith("pcnnseg "):
            command = line.split()[1]
            items[command] = []
        items[command] += re.findall(r"\[([^\]]+)\]", line)
    return items


def _check_synopsis_item(sub, command, item):
    words = item.split()
    name = words[0]
    if not name.startswith("-"):  # a positional, shown by its metavar
        assert name in [a.metavar for a in sub._actions if not a.option_strings], \
            f"pcnnseg {command}: no positional {name}"
        return
    action = sub._option_string_actions.get(name)
    assert action is not None, f"pcnnseg {command}: no option {name}"
    takes_value = action.nargs != 0
    assert takes_value == (len(words) > 1), \
        f"pcnnseg {command} {name}: the README and the parser disagree on its value"
    choices = re.fullmatch(r"\{(.*)\}", words[-1]) if len(words) > 1 else None
    if choices:
        assert set(choices.group(1).split(",")) == {str(c) for c in action.choices}, \
            f"pcnnseg {command} {name}: choices differ"


def test_synopsis_check_catches_unknown_options_values_and_choices():
    sub = argparse.ArgumentParser()
    sub.add_argument("input", nargs="?", metavar="INPUT")
    sub.add_argument("--flag", action="store_true")
    sub.add_argument("--pick", choices=("a", "b"))
    for good in ("INPUT", "--flag", "--pick {a,b}", "--pick X"):
        _check_synopsis_item(sub, "toy", good)
    for bad in ("IMAGE", "--nope", "--flag X", "--pick", "--pick {a,c}"):
        with pytest.raises(AssertionError):
            _check_synopsis_item(sub, "toy", bad)


def test_readme_synopsis_names_existing_commands_options_and_choices():
    subparsers = _subparsers(build_parser())
    synopsis = _synopsis()
    assert set(synopsis) <= set(subparsers)
    assert {"segment", "detect", "signature"} <= set(synopsis)
    for command, items in synopsis.items():
        for item in items:
            _check_synopsis_item(subparsers[command], command, item)


def test_readme_pip_extras_exist():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    named = {name for group in re.findall(r'\.\[([\w,-]+)\]', README_TEXT)
             for name in group.split(",")}
    assert named, "the README names no extra"
    assert named <= set(extras), f"unknown extras: {sorted(named - set(extras))}"
