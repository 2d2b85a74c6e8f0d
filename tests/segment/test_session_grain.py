"""Visit grain is enforced: duplicated hits/sessions are DataErrors naming the keys; GA rows aggregate to visits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.sessions import (
    GAExportConfig,
    SessionTableConfig,
    SyntheticSessionsConfig,
    aggregate_hits,
    generate_hits,
    load_ga_export,
    load_session_table,
)
from recsys.errors import DataError


@pytest.fixture(scope="module")
def hits() -> pd.DataFrame:
    return generate_hits(SyntheticSessionsConfig(n_sessions=200, n_users=150), random_state=3)[0]


def test_duplicated_hit_names_session_and_hit_number(hits):
    dup = pd.concat([hits, hits.iloc[[10]]], ignore_index=True)
    sid, num = hits.loc[10, "session_id"], int(hits.loc[10, "hit_number"])
    with pytest.raises(DataError) as err:
        aggregate_hits(dup)
    assert sid in str(err.value) and f"'hit_number': {num}" in str(err.value)


def test_session_spanning_two_users_is_rejected(hits):
    bad = hits.copy()
    sid = bad["session_id"].iloc[-1]
    bad.loc[bad.index[-1], "user_id"] = "someone-else"
    if (hits["session_id"] == sid).sum() == 1:  # need a session with at least two hits
        sid = hits["session_id"].value_counts().index[0]
        bad.loc[bad.index[bad["session_id"] == sid][-1], "user_id"] = "someone-else"
    with pytest.raises(DataError, match=sid):
        aggregate_hits(bad)


def test_duplicated_sessions_in_session_table(tmp_path):
    path = tmp_path / "sessions.csv"
    pd.DataFrame({"sid": ["a", "b", "b", "c", "c"], "pages": [1, 2, 3, 4, 5]}).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_session_table(SessionTableConfig(path=str(path), session_id="sid", features={"pageviews": "pages"}))
    msg = str(err.value)
    assert "'b'" in msg and "'c'" in msg and "'a'" not in msg and "2 duplicated session key(s)" in msg


def test_aggregation_is_one_row_per_session_with_consistent_counts(hits):
    sessions = aggregate_hits(hits)
    assert sessions["session_id"].is_unique
    assert set(sessions["session_id"]) == set(hits["session_id"])
    per = hits.groupby("session_id").size()
    assert (sessions.set_index("session_id")["hits"] == per.reindex(sessions["session_id"]).to_numpy()).all()
    assert np.isclose(sessions["revenue"].sum(), hits["revenue"].sum())
    assert (sessions["converted"] == (sessions["transactions"] > 0)).all()


V1, V2 = 1_501_583_974, 1_501_590_000  # 2017-08-01T10:39:34Z and 12:20:00Z


def test_ga_rows_aggregate_to_visits_with_totals_in_micros(tmp_path):
    # two visitors; visitor 1 has two visits, one of which spans three rows; visit ids repeat across visitors
    raw = pd.DataFrame({
        "fullVisitorId": ["0001", "0001", "0001", "0001", "0002"],
        "visitId": [V1, V1, V1, V2, V1],  # GA visit ids are the visit's start in unix seconds
        "time": [0, 5000, 9000, 0, 0],
        "pageviews": [4, 4, 4, 1, 2],
        "timeOnSite": [30.0, 30.0, 30.0, np.nan, 12.0],
        "transactions": [1.0, 1.0, 1.0, np.nan, np.nan],
        "totalTransactionRevenue": [25_500_000.0, 25_500_000.0, 25_500_000.0, np.nan, np.nan],
        "eCommerceAction_type": [2, 3, 6, 0, 0],
        "pagePathLevel1": ["/a", "/b", "/c", "/a", "/a"],
    })
    path = tmp_path / "ga.csv"
    raw.to_csv(path, index=False)
    cfg = GAExportConfig(path=str(path), columns={
        "visitStartTime": "visitId", "hitTime": "time", "page": "pagePathLevel1", "action": "eCommerceAction_type",
        "totals.pageviews": "pageviews", "totals.timeOnSite": "timeOnSite", "totals.transactions": "transactions",
        "totals.transactionRevenue": "totalTransactionRevenue"})
    table = load_ga_export(cfg)
    s = table.sessions.set_index("session_id")
    assert len(s) == raw.groupby(["fullVisitorId", "visitId"]).ngroups == 3
    buy = s.loc[f"0001:{V1}"]
    assert buy["pageviews"] == 4 and buy["revenue"] == pytest.approx(25.5) and buy["converted"]
    assert buy["product_views"] == 1 and buy["cart_adds"] == 1 and buy["unique_pages"] == 3
    assert s.loc[f"0001:{V2}", "time_on_site"] == 0 and not s.loc[f"0002:{V1}", "converted"]
    assert s.loc[f"0001:{V1}", "timestamp"] == V1 and s.loc[f"0001:{V2}", "timestamp"] == V2


@pytest.mark.realdata
def test_google_extract_sessions_equal_distinct_visit_pairs():
    from conftest import shared_data

    path = shared_data("gmerch-data-to-insights", "all_sessions.csv")
    import yaml
    from conftest import REPO

    raw_cfg = yaml.safe_load((REPO / "configs" / "sessions-gmerch.yaml").read_text())
    ga = GAExportConfig(**{**raw_cfg["task_params"]["sessions"]["ga"], "path": str(path)})
    table = load_ga_export(ga)
    raw = pd.read_csv(path, dtype={"fullVisitorId": str}, usecols=["fullVisitorId", "visitId"])
    pairs = raw.drop_duplicates().shape[0]
    assert len(raw) > pairs  # the extract really has several rows per visit
    assert len(table.sessions) == pairs
    assert table.sessions["session_id"].is_unique


def test_hit_file_with_column_mapping_matches_direct_aggregation(hits, tmp_path):
    from recsys.data.sessions import HitsFileConfig, load_hits_file

    path = tmp_path / "hits.csv"
    hits.rename(columns={"session_id": "visit", "hit_number": "n"}).to_csv(path, index=False)
    table = load_hits_file(HitsFileConfig(path=str(path), columns={"session_id": "visit", "hit_number": "n"}))
    direct = aggregate_hits(hits)
    pd.testing.assert_frame_equal(table.sessions[direct.columns].reset_index(drop=True), direct,
                                  check_dtype=False)
    with pytest.raises(DataError, match="not found"):
        load_hits_file(HitsFileConfig(path=str(tmp_path / "missing.csv")))
