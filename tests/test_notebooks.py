"""The analysts' notebooks run top to bottom from a fresh kernel, on the sample.

Each notebook under ``notebooks/`` is executed with nbclient in a kernel of
this very interpreter (a kernel spec written to a temporary folder, so no
installed ``python3`` spec that points elsewhere can be picked up), with
matplotlib's Agg backend and the ``notebooks/`` folder as working directory;
one notebook also runs from the repository root. A run must finish in under
a minute (the issue's limit), write its figure to ``notebooks/figures/`` and
leave the sample's files as they were.
Committed notebooks carry no outputs: a check fails on any output or
execution count left in a file.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from recommender.config import load_config

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURES = NOTEBOOKS / "figures"
SAMPLE = ROOT / "data" / "sample.toml"
REQUIRED = [
    "01-corpus",
    "02-neighbours",
    "03-trending",
    "04-evaluate-and-tune",
    "05-learn-from-clicks",
]
FOUND = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))
KERNEL = "recommender-notebooks"
#: Seconds a notebook may take on the sample, kernel start included.
TIME_LIMIT = 60.0
#: Files a notebook writes besides its figure (relative to the repository root).
ALSO_WRITTEN = {"04-evaluate-and-tune": ["notebooks/output/tuned.toml"]}
#: Private names of the library: notebooks use its public API only.
PRIVATE = re.compile(r"(from\s+recommender[\w.]*\s+import\s+[^\n]*\b_\w+)|(\b\w+\._[a-z]\w*)")


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernel spec for this interpreter, in a folder of its own."""
    folder = tmp_path_factory.mktemp("kernels") / KERNEL
    folder.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"recommender tests ({sys.executable})",
        "language": "python",
        # Headless: figures render with Agg; notebooks save theirs explicitly.
        "env": {"MPLBACKEND": "Agg"},
    }
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(folder.parent)])


def execute(name: str, cwd: Path, specs: KernelSpecManager) -> float:
    """Run one notebook in a fresh kernel with ``cwd`` as working directory;
    return the seconds it took. A failing cell raises ``CellExecutionError``
    naming the cell and its traceback."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=2 * TIME_LIMIT,  # per cell; the whole run is checked below
        resources={"metadata": {"path": str(cwd)}},
    )
    started = time.perf_counter()
    client.execute()
    return time.perf_counter() - started


def test_the_issue_notebooks_exist() -> None:
    assert set(REQUIRED) <= set(FOUND), f"missing: {sorted(set(REQUIRED) - set(FOUND))}"


@pytest.mark.parametrize("name", FOUND)
def test_committed_notebook_has_no_outputs(name: str) -> None:
    """Outputs are stripped in git: run "Clear All Outputs" before saving."""
    path = NOTEBOOKS / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.relative_to(ROOT)}: cells {dirty} carry outputs or execution counts; "
        "clear all outputs and save again"
    )


@pytest.mark.parametrize("name", FOUND)
def test_notebook_uses_the_public_api(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            found = PRIVATE.search(cell.source)
            assert found is None, f"{name} cell {index} uses a private name: {found.group(0)!r}"


@pytest.mark.slow
@pytest.mark.parametrize("name", FOUND)
def test_notebook_runs_and_saves_its_figure(name: str, kernel_specs: KernelSpecManager) -> None:
    written = [FIGURES / f"{name}.png", *(ROOT / p for p in ALSO_WRITTEN.get(name, []))]
    for path in written:
        path.unlink(missing_ok=True)
    inputs = {path: path.read_bytes() for path in (ROOT / "data").iterdir() if path.is_file()}

    seconds = execute(name, NOTEBOOKS, kernel_specs)

    assert seconds < TIME_LIMIT, f"{name} took {seconds:.1f} s (limit {TIME_LIMIT:.0f} s)"
    for path in written:
        assert path.is_file(), f"{name} did not write {path.relative_to(ROOT)}"
    assert written[0].stat().st_size > 10_000, f"{written[0]} looks empty"
    changed = [p.name for p, content in inputs.items() if p.read_bytes() != content]
    assert not changed, f"{name} changed the sample's files: {changed}"
    for path in written[1:]:
        if path.suffix == ".toml":  # a config written for `recommender run`: it must load
            assert set(load_config(path).sites) == set(load_config(SAMPLE).sites)


@pytest.mark.slow
def test_notebook_runs_from_the_repository_root(kernel_specs: KernelSpecManager) -> None:
    execute("01-corpus", ROOT, kernel_specs)
    assert (FIGURES / "01-corpus.png").is_file()


# -- what the notebook commands of docs/notebooks.md need -------------------------

#: The package that provides each `jupyter <subcommand>` docs/notebooks.md runs.
JUPYTER_SUBCOMMANDS = {"lab": "jupyterlab", "nbconvert": "nbconvert", "notebook": "notebook"}


def _notebook_section() -> str:
    """The analysts' page, which gives the commands to open and clear the notebooks."""
    return (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")


def _extra(name: str) -> set[str]:
    """The distributions extra ``name`` installs, its own extras expanded."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert name in extras, f"pyproject.toml has no {name!r} extra"
    found: set[str] = set()
    for text in extras[name]:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
            for inner in requirement.extras:
                found |= _extra(inner)
        else:
            found.add(canonicalize_name(requirement.name))
    return found


def _core() -> set[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}


def _notebook_imports() -> set[str]:
    """Top-level modules the notebooks import (IPython magics left out)."""
    found: set[str] = set()
    for name in FOUND:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            source = "\n".join(
                line
                for line in cell.source.splitlines()
                if not line.lstrip().startswith(("%", "!"))
            )
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


def test_the_notebooks_extra_installs_what_the_page_commands_need() -> None:
    """`pip install -e '.[notebooks]'` gives JupyterLab, nbconvert (the page's
    clear-outputs command), a kernel, and every package the notebooks import or
    the library functions they call need (matplotlib, tomli-w: the evaluate extra)."""
    from packaging.utils import canonicalize_name

    extra = _extra("notebooks")
    assert {"jupyterlab", "nbconvert", "ipykernel", "matplotlib", "tomli-w"} <= extra
    distributions = importlib.metadata.packages_distributions()
    provided = extra | _core()
    for module in sorted(_notebook_imports() - set(sys.stdlib_module_names) - {"recommender"}):
        names = {canonicalize_name(d) for d in distributions.get(module, [module])}
        assert names & provided, f"the notebooks import {module}, which no requirement installs"

    section = _notebook_section()
    installs = [line for line in section.splitlines() if "pip install" in line]
    assert installs, "docs/notebooks.md gives no install command"
    for line in installs:
        assert "'.[notebooks]'" in line or '".[notebooks]"' in line, line
    subcommands = re.findall(r"^\s*jupyter (\w+)", section, re.M)
    subcommands += re.findall(r"`jupyter (\w+)", section)
    assert {"lab", "nbconvert"} <= set(subcommands)
    for subcommand in subcommands:
        assert JUPYTER_SUBCOMMANDS[subcommand] in extra, f"jupyter {subcommand}"


def test_the_page_clear_outputs_command_clears_them(tmp_path: Path) -> None:
    """The page's `jupyter nbconvert --clear-output --inplace ...`, run on a
    notebook with outputs, gives back the committed file."""
    pytest.importorskip("nbconvert", reason="nbconvert comes with the notebooks extra")
    section = _notebook_section()
    command = re.search(r"`(jupyter nbconvert [^`]*notebooks/\*\.ipynb)`", section)
    assert command, "the clear-outputs command of docs/notebooks.md"
    name = FOUND[0]
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", text="output\n")]
            cell.execution_count = 1
    (tmp_path / "notebooks").mkdir()
    nbformat.write(notebook, tmp_path / "notebooks" / f"{name}.ipynb")
    words = shlex.split(command.group(1))
    words = [*words[:-1], *(str(p) for p in sorted((tmp_path / "notebooks").glob("*.ipynb")))]
    assert words[:2] == ["jupyter", "nbconvert"]
    done = subprocess.run(  # `jupyter nbconvert` with this interpreter's nbconvert
        [sys.executable, "-m", "nbconvert", *words[2:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    cleared = (tmp_path / "notebooks" / f"{name}.ipynb").read_bytes()
    assert cleared == (NOTEBOOKS / f"{name}.ipynb").read_bytes()
