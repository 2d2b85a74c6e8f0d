"""docs/benchmarks.md is generated: it is exactly what benchmarks/leaderboard.py renders from the committed JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from recsys.experiment import load_experiment_config

ROOT = Path(__file__).resolve().parents[2]


def _leaderboard():
    spec = importlib.util.spec_from_file_location("leaderboard", ROOT / "benchmarks" / "leaderboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_page_is_rendered_from_the_results():
    results = ROOT / "benchmarks" / "results" / "leaderboard.json"
    if not results.exists():
        pytest.skip("no leaderboard run committed yet")
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert page == _leaderboard().render(json.loads(results.read_text())), \
        "docs/benchmarks.md was edited by hand or is stale: run `python benchmarks/leaderboard.py --render`"


def test_board_covers_every_zoo_model_with_one_budget():
    results = ROOT / "benchmarks" / "results" / "leaderboard.json"
    if not results.exists():
        pytest.skip("no leaderboard run committed yet")
    data = json.loads(results.read_text())
    zoo = {m.run_name for m in load_experiment_config(ROOT / "configs" / "zoo.yaml").models}
    tuned = {m.run_name for m in load_experiment_config(ROOT / "configs" / "zoo.yaml").models if m.search}
    for ds, block in data["datasets"].items():
        rows = {r["model"]: r for r in block["rows"]}
        assert set(rows) == zoo, ds
        for name in tuned:  # the same budget for every tuned model: COMPLETE + PRUNED trials
            trials = rows[name]["tuning"]["trials"]
            assert trials["COMPLETE"] + trials["PRUNED"] == data["meta"]["trials"], (ds, name, trials)
        for r in rows.values():  # the interval brackets its point estimate
            lo, hi = r["ndcg_at_10_ci95"]
            assert lo <= r["ndcg_at_10"] <= hi, (ds, r["model"])


def test_protocol_configs_name_their_published_source():
    board = _leaderboard()
    for key, pub in board.PUBLISHED.items():
        cfg = load_experiment_config(ROOT / pub["config"])
        assert "commit" in pub["source"] and pub["url"].startswith("https://github.com/"), key
        if pub["model"] is not None:
            assert pub["model"] in {m.name for m in cfg.models}, key
        assert cfg.metrics.k == [board.K], key
