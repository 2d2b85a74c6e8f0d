"""`recsys --help` (and each command's --help) imports only what the parser needs: no mlflow, optuna, pandas, and
none of the heavy optional model dependencies. Checked in a fresh interpreter through `sys.modules`, never by
timing; a module-level `import mlflow` in one of the command plug-ins makes it fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

HEAVY = ["torch", "sentence_transformers", "matplotlib", "mlflow", "optuna", "pandas", "sklearn", "implicit",
         "faiss", "fastapi"]

PROBE = r"""
import contextlib, io, json, sys
from recsys.cli import main
for argv in ARGVS:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
    assert "usage: recsys" in out.getvalue(), argv
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
"""


COMMANDS = [["run", "--help"], ["tune", "--help"], ["score", "--help"], ["registry", "promote", "--help"],
            ["serve", "--help"], ["data", "load", "--help"]]


@pytest.mark.parametrize("argvs", [[["--help"]], COMMANDS])
def test_help_imports_no_heavy_dependency(tmp_path, argvs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = f"ARGVS = {argvs!r}\nHEAVY = {HEAVY!r}\n{PROBE}"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


VALIDATE = r"""
import json, sys
from recsys.experiment import load_experiment_config
load_experiment_config(CONFIG)  # imports every model module of the catalog to check names and params
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
"""


@pytest.mark.parametrize("config", ["configs/quickstart.yaml", "configs/movielens.yaml"])
def test_config_validation_imports_no_model_dependency(tmp_path, config):
    """Validating a config (content and neural models in the catalog, `content` in movielens.yaml) leaves torch,
    sentence-transformers, scikit-learn, matplotlib and mlflow unimported: they load when a model needs them."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = f"CONFIG = {str(REPO / config)!r}\nHEAVY = {HEAVY!r}\n{VALIDATE}"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not {"torch", "sentence_transformers", "sklearn", "matplotlib", "mlflow", "optuna"} & set(loaded), loaded
