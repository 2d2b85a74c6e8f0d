"""What docs/architecture.md promises a newcomer, shown on a copy of the package:

- a new model is one module in recsys/models/ + one test file (the catalog finds the module; the test is the
  shipped contract suite);
- a new task is at most four files: its task module, its evaluator, its predictor, and one test file (the task
  catalog and the predictor loader find them; `Task.run_model` is the shared template).

The templates live in tests/architecture/ (not collected here); the copy's own pytest run is the proof.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a pytest run of its own on a copy of the package

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "architecture"

MODEL_FILES = {"new_model.py": "recsys/models/cooccurrence.py", "new_model_tests.py": "tests/test_cooccurrence.py"}
TASK_FILES = {"new_task_task.py": "recsys/tasks/reorder.py", "new_task_evaluation.py": "recsys/evaluation/reorder.py",
              "new_task_predictor.py": "recsys/serving/predictors/reorder.py",
              "new_task_tests.py": "tests/test_reorder.py"}


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("newcomer")
    shutil.copytree(REPO / "recsys", root / "recsys", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests").mkdir()
    for src, dst in {**MODEL_FILES, **TASK_FILES}.items():
        assert not (root / dst).exists(), f"{dst} exists already: the demonstration must add it"
        shutil.copy(TEMPLATES / src, root / dst)
    return root


def _pytest(root: Path, test_file: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root), "RECSYS_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           test_file], cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_the_copy_is_what_the_subprocess_imports(copy):
    out = subprocess.run([sys.executable, "-c", "import recsys; print(recsys.__file__)"], cwd=copy,
                         env={**os.environ, "PYTHONPATH": str(copy)}, capture_output=True, text=True, check=True,
                         timeout=120)
    assert Path(out.stdout.strip()).parent == copy / "recsys"


def test_a_new_model_is_one_module_and_one_test_file(copy):
    assert len(MODEL_FILES) == 2 and sum(dst.startswith("recsys/") for dst in MODEL_FILES.values()) == 1
    run = _pytest(copy, "tests/test_cooccurrence.py")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


def test_a_new_task_is_at_most_four_files(copy):
    assert len(TASK_FILES) <= 4
    run = _pytest(copy, "tests/test_reorder.py")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 passed" in run.stdout
