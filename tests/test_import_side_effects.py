"""Importing any module of the package changes no process-wide state: environment, warning filters, MLflow's
tracking URI. Only the entry points set process-wide things (`recsys.cli.configure_process`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import importlib, json, os, pkgutil, sys, warnings
import mlflow, optuna, fastapi, sklearn, threadpoolctl  # third-party libraries' own import-time settings first
env, filters, uri = dict(os.environ), list(warnings.filters), mlflow.get_tracking_uri()
import recsys
names = sorted(m.name for m in pkgutil.walk_packages(recsys.__path__, "recsys.")
               if not m.name.startswith("recsys.testing"))  # the shipped pytest suites need pytest's runner
for name in names:
    importlib.import_module(name)
changed_env = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
print(json.dumps({"modules": names, "env": changed_env, "filters": len(warnings.filters) - len(filters),
                  "new_filters": [str(f[1]) for f in warnings.filters if f not in filters],
                  "uri_same": mlflow.get_tracking_uri() == uri}))
"""


@pytest.mark.slow
def test_importing_every_module_changes_no_process_wide_state(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"recsys.tracking.mlflow_tracker", "recsys.tracking.model_store", "recsys.serving.app",
            "recsys.tuning.tuner", "recsys.models.catalog"} <= set(out["modules"])
    assert out["env"] == []
    assert out["new_filters"] == []
    assert out["uri_same"]


def test_the_command_line_sets_what_the_library_leaves_alone(monkeypatch):
    import warnings

    from recsys.cli import configure_process

    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    with warnings.catch_warnings():
        configure_process()
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
        assert any(f[1] is not None and f[1].pattern.startswith("Hint: Inferred schema") for f in warnings.filters)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # a user's choice is kept
    with warnings.catch_warnings():
        configure_process()
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
