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
    ({"name": "x", "models": [{"name": "popularity"}], "tracking": {"log_models": "none"}},
     "tracking.log_models is 'none' but registry.enabled is true"),
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
    proc = run_cli("data", "describe", str(cfg), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["users"] <= 200 and 0.3 < stats["one_time_user_share"] < 0.7
    for key in ("retention_train_to_test", "test_items_unseen_in_train", "test_users_seen_in_train"):
        assert 0.0 <= stats["split"][key] <= 1.0
    assert {"p50", "p90", "mean"} <= set(stats["interactions_per_user"])


HAND_EVENTS = """user_id,item_id,timestamp
u1,i1,2020-01-01T10:00:00
u2,i1,2020-01-02T10:00:00
u2,i2,2020-01-03T10:00:00
u3,i2,2020-01-01T11:00:00
u3,i3,2020-01-02T11:00:00
u3,i1,2020-01-03T11:00:00
u4,i1,2020-01-04T10:00:00
u6,i2,2020-01-05T10:00:00
u2,i3,2020-01-11T10:00:00
u4,i2,2020-01-12T10:00:00
u5,i5,2020-01-13T10:00:00
"""


def test_data_describe_prints_the_verdict_and_json_keeps_full_precision(tmp_path):
    """Counted by hand: 3 of 6 users have one interaction; 2 of the 5 training users return after the cutoff;
    1 of the 3 test users (u5) and 1 of the 3 test items (i5) are unknown to training."""
    (tmp_path / "events.csv").write_text(HAND_EVENTS)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "hand", "models": [{"name": "popularity"}],
                                   "data": {"source": "tabular", "tabular": {"interactions": "events.csv",
                                                                             "timestamp_unit": "datetime"}},
                                   "split": {"method": "temporal", "cutoff": "2020-01-10T00:00:00"}}))
    text = run_cli("data", "describe", str(cfg), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "is collaborative filtering feasible here? FEASIBLE WITH CAVEATS"
    assert any("one-time users: 50% of users" in ln and "caveat above 40%" in ln for ln in lines)
    assert any("cold users: 33.33% of test users" in ln and "not feasible above 50%" in ln for ln in lines)
    assert any("retention: 40% of training users" in ln and "caveat below 5%" in ln for ln in lines)
    assert "test_users_seen_in_train: 0.6667" in text.stdout and "0.66666" not in text.stdout
    raw = run_cli("data", "describe", str(cfg), "--json", cwd=tmp_path)
    assert raw.returncode == 0, raw.stderr
    stats = json.loads(raw.stdout)
    assert stats["split"]["test_users_seen_in_train"] == 2 / 3  # full precision, not 0.6667
    assert stats["split"]["retention_train_to_test"] == 2 / 5 and stats["one_time_user_share"] == 3 / 6
    assert stats["feasibility"]["verdict"] == "feasible with caveats"
    assert stats["feasibility"]["numbers"]["cold_user_share"] == pytest.approx(1 / 3, abs=1e-15)
