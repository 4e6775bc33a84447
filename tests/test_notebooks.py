"""Execute every notebook in notebooks/ (CPU, small sizes, install cells skipped).

Each notebook runs in a fresh IPython kernel with ``JAXRANK_NOTEBOOK_TEST=1`` (their
install cells check it and the notebooks pick small sizes) and the repository root on
``PYTHONPATH``, so the checked-out package is the one tested. A failing cell fails
the test with the cell's traceback. Committed notebooks must carry no outputs.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BUDGET_S = 120  # per notebook; each takes well under 30 s on an idle core


def test_the_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_train_flax_ranker_tpu.ipynb",
        "03_late_interaction_int8.ipynb",
        "04_differentiable_sorting.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (path.name, cell.id)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXRANK_NOTEBOOK_TEST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    # A kernel spec of this interpreter, found first through JUPYTER_PATH, so that a
    # user-installed "python3" spec pointing elsewhere cannot be picked up.
    spec = tmp_path / "jupyter" / "kernels" / "jaxrank-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "jaxrank test", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=BUDGET_S,
        kernel_name="jaxrank-test",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET_S, f"{path.name} took {elapsed:.0f}s"
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
