"""The import contracts of pyproject.toml (`lint-imports`) hold for the package and fail when a module breaks one.

Each check runs the real `lint-imports` on a copy of `recsys/` (plus pyproject.toml) in a temp folder, so a violation
planted there never touches the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(REPO / "recsys", root / "recsys", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(root / "pyproject.toml")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def test_contracts_state_the_layers_and_exempt_nothing():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["name"]: c for c in cfg["contracts"]}
    assert not [name for name, c in contracts.items() if c.get("ignore_imports")]  # nothing is exempted
    layers = next(c for c in contracts.values() if c["type"] == "layers")
    assert layers["layers"][0].startswith("cli") and layers["layers"][-1] == "errors | logging | random"
    assert layers["exhaustive"] is True  # a new top-level module must be given a layer
    only = {c["forbidden_modules"][0]: set(c["source_modules"]) for c in contracts.values()
            if c["type"] == "forbidden" and c.get("allow_indirect_imports")}
    every = {f"recsys.{m.strip()}" for line in layers["layers"] for m in line.replace(":", "|").split("|")}
    assert every - only["mlflow"] == {"recsys.tracking"}
    assert every - only["optuna"] == {"recsys.tuning"}
    assert every - only["fastapi"] == {"recsys.serving"}


@pytest.mark.slow
def test_lint_imports_passes_on_the_package_and_fails_on_each_planted_violation(tmp_path):
    root = _copy(tmp_path)
    clean = _lint(root)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 broken" in clean.stdout
    # a model that imports mlflow, and the config layer importing a task: two contracts broken
    (root / "recsys" / "models" / "_leak.py").write_text("import mlflow\n")
    (root / "recsys" / "config" / "_upward.py").write_text("from recsys.tasks import get_task\n")
    broken = _lint(root)
    out = broken.stdout
    assert broken.returncode != 0
    assert "only recsys.tracking imports mlflow BROKEN" in out
    assert "recsys.models._leak -> mlflow" in out
    assert "recsys.config is not allowed to import recsys.tasks" in out
    assert "recsys.config._upward -> recsys.tasks" in out
