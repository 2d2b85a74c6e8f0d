"""The CLI prints one clear line for bad input and exits non-zero, without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.slow  # each case starts a `recsys` subprocess: `pytest -m "not slow"` skips it


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "recsys.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("content,needle", [
    ({"name": "x", "modles": []}, "did you mean `models`"),
    ({"name": "x", "models": [{"name": "als", "params": {"factors": -1}}]}, "models.0.params.factors"),
    ({"name": "x", "models": [{"name": "popularity"}], "data": {"source": "tabular",
                                                                "tabular": {"interactions": "missing.csv"}}},
     "missing.csv: file does not exist"),
])
def test_bad_input_one_line_nonzero_exit(tmp_path, content, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(content))
    proc = run_cli("run", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2
    err_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1 and needle in err_lines[0]
    assert "Traceback" not in proc.stderr


def test_data_error_from_file(tmp_path):
    (tmp_path / "events.csv").write_text("user_id,item_id,timestamp\na,x,1600000000\n,y,1600000001\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "x", "models": [{"name": "popularity"}],
                                   "data": {"source": "tabular", "tabular": {"interactions": "events.csv"}}}))
    proc = run_cli("data", "describe", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2
    assert "events.csv, column 'user_id': 1 null id(s)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_data_describe_reports_feasibility_numbers(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "x", "models": [{"name": "popularity"}],
                                   "data": {"synthetic": {"n_users": 200, "n_items": 80, "one_time_share": 0.5}}}))
    proc = run_cli("data", "describe", str(cfg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["users"] <= 200 and 0.3 < stats["one_time_user_share"] < 0.7
    for key in ("retention_train_to_test", "test_items_unseen_in_train", "test_users_seen_in_train"):
        assert 0.0 <= stats["split"][key] <= 1.0
    assert {"p50", "p90", "mean"} <= set(stats["interactions_per_user"])
