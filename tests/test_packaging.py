"""Packaging and import names (issue 16, "Packaging and the first run").

- ``pcnnseg.detect`` is the function, ``pcnnseg.detection`` its module;
- the modules of ``cnn_baseline`` import one another without a circle, each
  imports first in a fresh interpreter, and without torch the package says how to
  install its CPU build;
- the wheel installs the import names it should.
"""
import ast
import importlib.util
import inspect
import pathlib
import pickle
import shutil
import subprocess
import sys
import zipfile

import pytest

import pcnnseg
from pcnnseg import phantom

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run_python(*args):
    """Run a fresh interpreter in the repository root; return the CompletedProcess."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


# ------------------------------------------------------------ pcnnseg.detect

def test_detect_is_the_function_and_detection_its_module():
    import pcnnseg.detection as module
    from pcnnseg import detect
    from pcnnseg.detection import Reference

    assert detect is pcnnseg.detect is module.detect and inspect.isfunction(detect)
    assert module is sys.modules["pcnnseg.detection"] and module.Reference is Reference
    image, _ = phantom.make_slice(seed=0)
    found = pcnnseg.detect(image)
    assert isinstance(found, module.Detection) and found.box is not None
    assert pickle.loads(pickle.dumps(pcnnseg.detect)) is pcnnseg.detect


def test_no_module_hides_behind_a_function_of_the_package():
    """Every public function of the package is not also the name of one of its
    modules (``import pcnnseg.X as m`` would bind the function)."""
    modules = {p.stem for p in (ROOT / "pcnnseg").glob("*.py")}
    functions = {name for name in pcnnseg.__all__ if inspect.isfunction(getattr(pcnnseg, name))}
    assert functions and not functions & modules, functions & modules


# ------------------------------------------------------------ lazy public names

def test_every_public_name_resolves_to_its_module_object():
    for name in pcnnseg.__all__:
        value = getattr(pcnnseg, name)
        if name in pcnnseg._PUBLIC:
            assert value is getattr(importlib.import_module(pcnnseg._PUBLIC[name]), name)
        elif name in pcnnseg._MODULES:
            assert value is sys.modules[f"pcnnseg.{name}"]
    assert set(pcnnseg.__all__) <= set(dir(pcnnseg))
    assert set(pcnnseg._PUBLIC) | set(pcnnseg._MODULES) | {"__version__"} == set(pcnnseg.__all__)


def test_unknown_name_of_the_package_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'segment_tumour'"):
        pcnnseg.segment_tumour
    assert not hasattr(pcnnseg, "_not_there")


def test_package_and_command_start_without_numba_scipy_or_the_kernels():
    """``import pcnnseg`` and the command's module load the numerical stack only
    when something needs it, so ``pcnnseg --help`` and a batch's parent process
    (which only hands out cases) start quickly; a public name still works."""
    heavy = ("numba", "scipy", "skimage", "pcnnseg_kernels", "torch")
    code = ("import sys, pcnnseg, pcnnseg.cli, pcnnseg.batch, pcnnseg.batch_report\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
            "pcnnseg.segment_tumor\n"
            "print('numba' in sys.modules)")
    done = _run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"]


# ------------------------------------------------------------ cnn_baseline imports

def _cnn_baseline_imports(path):
    """Names of the ``cnn_baseline`` modules that ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n.split(".")[1] for n in names
                     if n.startswith("cnn_baseline.") and n.count(".") >= 1)
    return found


def _cycle(graph):
    """A list of nodes forming a cycle of ``graph`` (dict of sets), or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_cnn_baseline_modules_import_one_another_without_a_circle():
    """Module-level and function-level imports alike (the package's own
    ``__init__`` is left out: every submodule import runs it first)."""
    modules = {p.stem: p for p in (ROOT / "cnn_baseline").glob("*.py") if p.stem != "__init__"}
    graph = {name: _cnn_baseline_imports(path) - {name} for name, path in modules.items()}
    assert "bundle" in graph["quantize"] and "inference" not in graph["quantize"]
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph))}"


@pytest.mark.parametrize("module", ["bundle", "inference", "quantize"])
def test_cnn_baseline_module_imports_first_in_a_fresh_interpreter(module):
    pytest.importorskip("torch")
    run = _run_python("-W", "error::RuntimeWarning", "-c", f"import cnn_baseline.{module}")
    assert run.returncode == 0, run.stderr


def test_quantize_runs_as_a_module_without_a_runpy_warning():
    pytest.importorskip("torch")
    run = _run_python("-W", "error::RuntimeWarning", "-m", "cnn_baseline.quantize", "--help")
    assert run.returncode == 0, run.stderr
    assert "usage: python -m cnn_baseline.quantize" in run.stdout


def test_without_torch_the_error_gives_the_readme_cpu_install_command():
    # sys.modules["torch"] = None makes "import torch" raise ImportError
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import cnn_baseline\n"
            "except ImportError as err:\n    print(err)\n")
    run = _run_python("-c", code)
    assert run.returncode == 0, run.stderr
    message = run.stdout
    command = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    assert command in message and "CUDA" in message
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------------------ the wheel

def _source_copy(dest):
    """What a wheel is built from, copied so that the build writes nothing in the repo."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("pcnnseg", "kernels", "cnn_baseline"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    return dest


def _record_paths(wheel):
    """Paths the wheel installs, from its ``*.dist-info/RECORD``."""
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        lines = zf.read(record).decode().splitlines()
    return [line.rsplit(",", 2)[0] for line in lines if line]


def top_level_names(paths):
    """Top-level import names among installed paths (packages and single modules).

    Parameters
    ----------
    paths : iterable of str
        Paths relative to site-packages, as a wheel's RECORD lists them.

    Returns
    -------
    set of str
    """
    names = set()
    for path in paths:
        head, _, rest = path.partition("/")
        if head.endswith((".dist-info", ".data")):
            continue
        if rest and rest.endswith(".py"):  # a package: a folder holding modules
            names.add(head)
        elif not rest and head.endswith(".py"):
            names.add(head[:-3])
    return names


def test_top_level_names_of_record_paths():
    paths = ["a/__init__.py", "a/b/c.py", "m.py", "x-1.0.dist-info/RECORD",
             "x-1.0.data/scripts/run", "data_only/file.json"]
    assert top_level_names(paths) == {"a", "m"}


def _builds_wheels_here():
    """Whether this environment's setuptools builds wheels without an isolated one:
    version 70.1 or later has ``bdist_wheel`` itself, older ones need ``wheel``
    (a fresh Python 3.11 venv has setuptools 65 and no ``wheel``)."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2])
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def wheel_paths(tmp_path_factory):
    src = _source_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("wheel")
    # Without a usable setuptools here, pip builds in an isolated environment,
    # fetching the build requirements of pyproject.toml from the package index.
    isolation = ["--no-build-isolation"] if _builds_wheels_here() else []
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                          *isolation, "-q", "-w", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    (wheel,) = out.glob("pcnnseg-*.whl")
    return _record_paths(wheel)


def test_wheel_installs_the_packages_and_their_data(wheel_paths):
    names = top_level_names(wheel_paths)
    assert names == {"pcnnseg", "pcnnseg_kernels", "cnn_baseline"}
    for name in ("compressed_unet.pt.xz", "compressed_unet_int8.pt.xz",
                 "compressed_unet_pruned_int8.pt.xz"):
        assert f"cnn_baseline/weights/{name}" in wheel_paths
    assert any(p.startswith("pcnnseg/data/") for p in wheel_paths)
    assert "cnn_baseline/bundle.py" in wheel_paths


def test_wheel_claims_no_generic_kernels_name(wheel_paths):
    """The folder kernels/ installs as pcnnseg_kernels, not as a top-level
    ``kernels`` (the name of Hugging Face's package of that name)."""
    names = top_level_names(wheel_paths)
    assert "kernels" not in names and "pcnnseg_kernels" in names
    assert "pcnnseg_kernels/fused.py" in wheel_paths
