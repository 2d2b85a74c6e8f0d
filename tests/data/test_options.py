"""Options that cannot apply to the data are errors naming the option; coercions that drop rows are reported."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import yaml

from recsys.cli import main
from recsys.config.schema import DataConfig
from recsys.data.validation import validate_interactions
from recsys.errors import DataError

T0 = 1_614_834_367  # 2021-03-04T05:06:07Z


def _events(n: int = 200, **extra) -> pd.DataFrame:
    r = np.random.default_rng(0)
    df = pd.DataFrame({"customer": [f"u{i % 20}" for i in range(n)], "sku": [f"i{i % 15}" for i in range(n)],
                       "ts": T0 + np.arange(n) * 60})
    for k, v in extra.items():
        df[k] = v if not callable(v) else v(r, n)
    return df


def _run_cli(tmp_path, capsys, df: pd.DataFrame, columns: dict, data: dict | None = None, split: dict | None = None,
             items: pd.DataFrame | None = None, item_columns: dict | None = None) -> tuple[int, list[str]]:
    """`recsys data describe` on events.csv in tmp_path (cwd); returns (exit code, non-empty stderr lines)."""
    data = dict(data or {})
    df.to_csv(tmp_path / "events.csv", index=False)
    tab = {"interactions": "events.csv", "columns": {"user_id": "customer", "item_id": "sku", "timestamp": "ts",
                                                     **columns}}
    if "tabular_unit" in data:
        tab["timestamp_unit"] = data.pop("tabular_unit")
    if items is not None:
        items.to_csv(tmp_path / "items.csv", index=False)
        tab.update(items="items.csv", item_columns=item_columns or {})
    cfg = {"name": "x", "models": [{"name": "popularity"}], "data": {"source": "tabular", "tabular": tab, **data}}
    if split:
        cfg["split"] = split
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    code = main(["data", "describe", str(tmp_path / "c.yaml")])  # conftest puts the recsys logger back afterwards
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("error")]


def STARS(r, n):
    return r.integers(1, 6, n)


CASES = {
    "threshold without a rating column": (
        _events(), {}, {"implicit": {"rating_threshold": 4}}, None, "data.implicit.rating_threshold=4.0 cannot apply"),
    "rating weight without ratings": (
        _events(), {}, {"implicit": {"rating_weight": "rating"}}, None, "data.implicit.rating_weight='rating' cannot"),
    "rating weight with a weight column": (
        _events(w=1.0, stars=STARS), {"weight": "w", "rating": "stars"}, {"implicit": {"rating_weight": "rating"}},
        None, "data.implicit.rating_weight='rating' cannot apply: the weight column 'w'"),
    "rating weight when events decide": (
        _events(stars=STARS, act=lambda r, n: np.where(np.arange(n) % 2, "view", "rating")),
        {"rating": "stars", "event": "act"}, {"implicit": {"rating_weight": "rating"}}, None,
        "data.implicit.rating_weight='rating' cannot apply"),
    "event weights without an event column": (
        _events(), {}, {"implicit": {"event_weights": {"view": 1.0}}}, None,
        "data.implicit.event_weights cannot apply"),
    "event weights with a weight column": (
        _events(w=2.0, act="view"), {"weight": "w", "event": "act"}, {"implicit": {"event_weights": {"view": 1.0}}},
        None, "data.implicit.event_weights cannot apply: the weight column 'w'"),
    "rating range without ratings": (
        _events(), {}, {"rating_range": [1, 5]}, None, "data.rating_range=[1.0, 5.0] cannot apply"),
    "some weights not numbers": (
        _events(w=lambda r, n: np.where(np.arange(n) < 10, "n/a", "1.5")), {"weight": "w"}, None, None,
        "column 'w': 10 of 200 row(s) (5.00%) are not finite numbers; more than 1% would be dropped"),
    "no weight is a number": (
        _events(w="high"), {"weight": "w"}, {"allow_drop": True}, None, "column 'w': 200 of 200 row(s)"),
    "events without a weight": (
        _events(act=lambda r, n: np.where(np.arange(n) < 20, "click", "view")), {"event": "act"}, None, None,
        "column 'act': 20 of 200 row(s) (10.00%) have events ['click'] without a weight"),
    "test_n with a temporal split": (
        _events(), {}, None, {"method": "temporal", "test_n": 2}, "split.test_n=2 only applies to method leave_last"),
    "cutoff with a random split": (
        _events(), {}, None, {"method": "random", "cutoff": "2021-03-04"}, "split.cutoff='2021-03-04' only applies"),
    "unknown canonical column": (
        _events(), {"userid": "customer"}, None, None,
        "unknown canonical column(s) ['userid'] in data.tabular.columns"),
    "timestamp unit that cannot apply": (
        _events(), {}, {"tabular_unit": "datetime"}, None, "'ts' holds numbers, so data.tabular.timestamp_unit"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_option_that_cannot_apply_exits_2_with_one_line(tmp_path, capsys, monkeypatch, case):
    df, columns, data, split, needle = CASES[case]
    monkeypatch.chdir(tmp_path)
    code, err = _run_cli(tmp_path, capsys, df, columns, data, split)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err


def test_item_columns_naming_a_missing_column(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    items = pd.DataFrame({"sku": [f"i{i}" for i in range(15)], "name": "x"})
    code, err = _run_cli(tmp_path, capsys, _events(), {}, items=items, item_columns={"item_id": "sku", "title": "nom"})
    assert code == 2 and len(err) == 1 and "['nom'] named in data.tabular.item_columns" in err[0]


@pytest.mark.slow  # a `recsys` CLI subprocess
def test_real_cli_process_exits_2_with_one_error_line(tmp_path):
    import subprocess
    import sys

    _events().to_csv(tmp_path / "events.csv", index=False)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"name": "x", "models": [{"name": "popularity"}], "data": {
        "source": "tabular", "implicit": {"rating_threshold": 3.5}, "tabular": {
            "interactions": "events.csv", "columns": {"user_id": "customer", "item_id": "sku", "timestamp": "ts"}}}}))
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", "run", "c.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert errors == [("error: data.implicit.rating_threshold=3.5 cannot apply: events.csv has no rating column "
                       "(map one with data.tabular.columns.rating, or remove the threshold)")]


def test_one_percent_or_less_is_dropped_with_a_warning_naming_count_and_column(caplog):
    df = _events(w=lambda r, n: np.where(np.arange(n) == 7, "oops", "2.5")).rename(
        columns={"customer": "user_id", "sku": "item_id", "ts": "timestamp"})
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = validate_interactions(df.rename(columns={"w": "weight"}), DataConfig(), "f.csv",
                                    columns={"weight": "w"})
    assert len(out) == 199 and set(out["weight"]) == {2.5}
    assert T0 + 7 * 60 not in set(out["timestamp"])  # exactly the bad row is gone
    assert [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()] == [
        "f.csv, column 'w': 1 of 200 row(s) (0.50%) are not finite numbers; they are dropped"]


def test_allow_drop_accepts_more_than_one_percent_and_still_warns(caplog):
    df = _events(weight=lambda r, n: np.where(np.arange(n) < 50, "inf", "1")).rename(
        columns={"customer": "user_id", "sku": "item_id", "ts": "timestamp"})
    with pytest.raises(DataError, match=r"column 'weight': 50 of 200 .*data.allow_drop: true"):
        validate_interactions(df, DataConfig(), "f.csv")
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = validate_interactions(df, DataConfig(allow_drop=True), "f.csv")
    assert len(out) == 150
    assert any("50 of 200 row(s) (25.00%)" in r.getMessage() for r in caplog.records)


def test_threshold_applies_with_a_weight_column():
    df = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "item_id": ["x", "y", "z", "w"],
                       "timestamp": [T0, T0 + 1, T0 + 2, T0 + 3], "rating": [5, 2, 4, 1],
                       "weight": [3.0, 9.0, 1.0, 7.0]})
    out = validate_interactions(df, DataConfig(implicit={"rating_threshold": 4}), "f.csv")
    assert dict(zip(out["item_id"], out["weight"])) == {"x": 3.0, "z": 1.0}


def test_threshold_filters_one_star_ratings():
    df = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "y", "z"], "timestamp": [T0, T0 + 1, T0 + 2],
                       "rating": [1.0, 4.0, 5.0]})
    out = validate_interactions(df, DataConfig(implicit={"rating_threshold": 4, "rating_weight": "rating"}), "f.csv")
    assert dict(zip(out["item_id"], out["weight"])) == {"y": 4.0, "z": 5.0}
