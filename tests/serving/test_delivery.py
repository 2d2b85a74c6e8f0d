"""Where recommendations go: batch scoring of the quickstart champion, fold-in serving of users the model never
saw, and `/items/{id}/similar` answered by the `similar` champion. Real MLflow store, real HTTP, real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import http_json, isolated_store, read_port_file, stop_process, wait_until

from recsys.cli import main

REPO = Path(__file__).resolve().parents[2]
RECOMMEND, SIMILAR = "recsys-quickstart", "recsys-similar"
CHAMPION = f"models:/{RECOMMEND}@champion"
pytestmark = pytest.mark.slow  # end-to-end (two experiments, a champion, a server): `pytest -m "not slow"` skips it

ALS = {"name": "als", "params": {"factors": 16, "iterations": 6, "num_threads": 1, "random_state": 3}}


@dataclass
class Deployed:
    root: Path
    uri: str
    versions: dict[str, str]
    port: int = 0

    def call(self, path: str, method: str = "GET", body: object = None) -> tuple[int, dict]:
        return http_json(self.port, path, method, body)

    def pyfunc(self, name: str = RECOMMEND):
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        return mlflow.pyfunc.load_model(f"models:/{name}@champion")

    def score(self, *args: str) -> int:
        return main(["--tracking-uri", self.uri, "--log-level", "WARNING", "score", "--model", CHAMPION, *args])


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Deployed:
    """The quickstart experiment (ALS only) and the similar experiment (item-KNN only), both champions."""
    from mlflow.tracking import MlflowClient

    from recsys.config import load_config
    from recsys.experiment import run_experiment
    from recsys.tracking import MlflowTracker

    root = tmp_path_factory.mktemp("delivery")
    versions = {}
    with isolated_store(root) as uri:
        for name, path, models in ((RECOMMEND, "quickstart.yaml", [ALS]),
                                   (SIMILAR, "similar.yaml", [{"name": "item_knn", "params": {"k_neighbors": 50}}])):
            cfg = load_config(REPO / "configs" / path, [f"models={json.dumps(models)}"])
            result = run_experiment(cfg, tracker=MlflowTracker(uri), workdir=root / name)
            versions[name] = result.registry["version"]
            MlflowClient(uri).set_registered_model_alias(name, "champion", versions[name])
    return Deployed(root=root, uri=uri, versions=versions)


@pytest.fixture(scope="module")
def service(deployed: Deployed):
    port_file = deployed.root / "port"
    env = {**os.environ, "MLFLOW_TRACKING_URI": deployed.uri}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "--tracking-uri", deployed.uri, "serve", "--models",
                             f"{RECOMMEND},{SIMILAR}", "--port", "0", "--port-file", str(port_file),
                             "--poll-interval", "0"], cwd=deployed.root, env=env, start_new_session=True)
    try:
        deployed.port = read_port_file(port_file, "recsys serve", proc)
        wait_until(lambda: deployed.call("/ready")[0] == 200, "recsys serve", proc)
        yield deployed
    finally:
        stop_process(proc)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["user_id", "rank"], kind="stable").reset_index(drop=True)


# batch scoring ------------------------------------------------------------------------------------------------
def test_score_all_users_equals_pyfunc_predict(deployed: Deployed, tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    out = tmp_path / "recs.parquet"
    exp_name = ["--experiment", "batch-equality"]  # other tests of this module log batch runs too
    assert deployed.score("--users", "all", "--k", "50", "--output", str(out), "--batch-size", "700", *exp_name) == 0
    recs = pd.read_parquet(out)
    pyfunc = deployed.pyfunc()
    model_users = pyfunc.unwrap_python_model().predictor.model.users_.ids.astype(str)
    assert sorted(recs["user_id"].unique()) == sorted(model_users)  # every quickstart user, once
    assert (recs.groupby("user_id")["rank"].max() == 50).all() and set(recs["reason"]) == {"model"}
    sample = np.random.default_rng(0).choice(model_users, 40, replace=False)
    expected = _sorted(pyfunc.predict(pd.DataFrame({"user_id": sample}), params={"k": 50}))
    got = _sorted(recs[recs["user_id"].isin(sample)])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)

    # the same into a database table; a second job over a file of users (two unknown) replaces it whole
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    assert deployed.score("--output", db, "--table", "recs", "--k", "50", *exp_name) == 0
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        table = pd.read_sql("SELECT * FROM recs", conn)
    pd.testing.assert_frame_equal(_sorted(table), _sorted(recs), check_dtype=False)
    users = tmp_path / "users.csv"
    pd.DataFrame({"user_id": [*sample[:5], "never-seen-1", "never-seen-2"]}).to_csv(users, index=False)
    assert deployed.score("--users", str(users), "--output", db, "--table", "recs", "--k", "10", *exp_name) == 0
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        table = pd.read_sql("SELECT * FROM recs", conn)
        leftovers = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%recsys_tmp%'").fetchall()
    assert len(table) == 70 and leftovers == []
    assert set(table.loc[table["user_id"].str.startswith("never-seen"), "reason"]) == {"cold_start"}
    expected = _sorted(pyfunc.predict(pd.DataFrame({"user_id": sample[:5]}), params={"k": 10}))
    pd.testing.assert_frame_equal(_sorted(table[~table["user_id"].str.startswith("never")]), expected,
                                  check_dtype=False)

    client = MlflowClient(deployed.uri)
    exp = client.get_experiment_by_name("batch-equality")
    runs = client.search_runs([exp.experiment_id], "tags.role = 'batch'")
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["model_version"] for r in runs} == {deployed.versions[RECOMMEND]}
    last = max(runs, key=lambda r: r.info.start_time)
    assert last.data.metrics["users"] == 7 and last.data.metrics["rows"] == 70
    assert last.data.metrics["users_cold_start"] == 2


def test_bad_score_arguments_are_one_line(deployed: Deployed, tmp_path, capsys) -> None:
    cases = {
        ("--output", str(tmp_path / "recs.csv")): ".parquet path or a SQLAlchemy URL",
        ("--output", f"sqlite:///{tmp_path / 'x.db'}"): "--table",
        ("--users", str(tmp_path / "nobody.csv"), "--output", str(tmp_path / "r.parquet")): "does not exist",
    }
    for args, needle in cases.items():
        assert deployed.score(*args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
    assert main(["--tracking-uri", deployed.uri, "score", "--model", f"models:/{RECOMMEND}@nobody", "--output",
                 str(tmp_path / "r.parquet")]) == 2
    assert "alias 'nobody'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["parquet", "sql"])
def test_killed_midway_leaves_the_previous_output(deployed: Deployed, tmp_path, kind) -> None:
    if kind == "parquet":
        out, table = str(tmp_path / "recs.parquet"), []
    else:
        out, table = f"sqlite:///{tmp_path / 'shop.db'}", ["--table", "recs"]
    first = tmp_path / "first.csv"
    pd.DataFrame({"user_id": ["u000001", "u000002"]}).to_csv(first, index=False)
    assert deployed.score("--users", str(first), "--output", out, *table, "--k", "5") == 0

    def previous() -> pd.DataFrame:
        if kind == "parquet":
            return pd.read_parquet(out)
        with sqlite3.connect(tmp_path / "shop.db") as conn:
            return pd.read_sql("SELECT * FROM recs", conn)

    before = previous()
    assert len(before) == 10

    def started_writing() -> bool:
        if kind == "parquet":
            return any(p.stat().st_size > 0 for p in tmp_path.glob(".recs.parquet__recsys_tmp_*"))
        with sqlite3.connect(tmp_path / "shop.db", timeout=30) as conn:
            return bool(conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'recs__recsys_tmp_%'")
                        .fetchone()[0])

    many = tmp_path / "many.csv"  # enough users that the job is far from done when it is killed
    pd.DataFrame({"user_id": [f"u{i:06d}" for i in range(3000)] + [f"x{i}" for i in range(120_000)]}).to_csv(
        many, index=False)
    env = {**os.environ, "MLFLOW_TRACKING_URI": deployed.uri}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "--tracking-uri", deployed.uri, "score", "--model",
                             CHAMPION, "--users", str(many), "--output", out, *table, "--k", "50",
                             "--batch-size", "100"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_until(started_writing, "score job writing its temporary output", proc, seconds=300, interval=0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    pd.testing.assert_frame_equal(previous(), before)  # readers still see the complete previous result
    # the next job cleans up what the killed one left and swaps in its own result
    assert deployed.score("--users", str(first), "--output", out, *table, "--k", "3") == 0
    assert len(previous()) == 6
    assert not list(tmp_path.glob(".recs.parquet__recsys_tmp_*"))
    if kind == "sql":
        with sqlite3.connect(tmp_path / "shop.db") as conn:
            assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '%recsys_tmp%'").fetchone()[0] == 0


# fold-in ------------------------------------------------------------------------------------------------------
def _history_of_a_new_user(deployed: Deployed) -> list[str]:
    """Five items an existing user had: sent as the history of someone the model never saw."""
    model = deployed.pyfunc().unwrap_python_model().predictor.model
    counts = np.diff(model.seen_.indptr)
    user = int(np.flatnonzero(counts >= 8)[3])
    return model.items_.id(model.seen_[user].indices[:5]).astype(str).tolist()


def test_new_user_with_a_history_is_folded_in(service: Deployed) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    history = _history_of_a_new_user(service)
    status, body = service.call("/recommendations", "POST", {"items": history, "k": 10, "user_id": "brand-new"})
    assert status == 200, body
    assert body["reason"] == "folded_in" and body["fallback"] is False and body["user_id"] == "brand-new"
    assert body["model"] == {"name": RECOMMEND, "version": service.versions[RECOMMEND], "alias": "champion"}
    status, popular = service.call("/users/brand-new/recommendations?k=10")
    assert popular["reason"] == "popular_items"
    got = [i["item_id"] for i in body["items"]]
    assert got != [i["item_id"] for i in popular["items"]] and not set(got) & set(history)

    # the ALS scores are implicit's recalculate_user over the champion's own item factors
    model = service.pyfunc().unwrap_python_model().predictor.model
    est = AlternatingLeastSquares(factors=16, regularization=model.config.regularization, alpha=model.config.alpha)
    est.item_factors = model.item_factors_.astype(np.float32)
    idx = model.items_.index(np.asarray(history))
    row = sp.csr_matrix((np.ones(5, np.float32), ([0] * 5, idx)),
                                                       shape=(1, len(model.items_)))
    ids, scores = est.recommend(0, row, N=10, recalculate_user=True)
    assert got == model.items_.id(ids).astype(str).tolist()
    np.testing.assert_allclose([i["score"] for i in body["items"]], scores, rtol=1e-5)

    # the pyfunc takes the same input and gives the same list
    rows = service.pyfunc().predict(pd.DataFrame({"items": [history]}), params={"k": 10})
    assert rows["item_id"].tolist() == got and set(rows["reason"]) == {"folded_in"}


def test_fold_in_edges(service: Deployed) -> None:
    status, body = service.call("/recommendations", "POST", {"items": ["no-such-item"], "k": 5})
    assert status == 200 and body["reason"] == "popular_items" and body["unknown_items"] == ["no-such-item"]
    user = str(service.pyfunc().unwrap_python_model().predictor.model.users_.ids[0])
    status, known = service.call(f"/users/{user}/recommendations?k=5")
    status, body = service.call("/recommendations", "POST", {"items": [], "k": 5, "user_id": user})
    assert body["reason"] == "personalised" and body["items"] == known["items"]
    status, body = service.call("/recommendations", "POST", {"items": ["x"] * 1001})
    assert status == 422
    status, body = service.call("/recommendations", "POST", {"items": ["x"], "k": 0})
    assert status == 422


def test_similar_is_answered_by_the_similar_champion(service: Deployed) -> None:
    from recsys.serving.predictor import load_predictor
    from recsys.tracking.model_store import fetch_model

    with fetch_model(service.uri, f"models:/{SIMILAR}@champion") as (_, folder):
        expected = load_predictor(folder).predict(pd.DataFrame({"item_id": ["i00010"]}), {"k": 7})
    status, body = service.call("/items/i00010/similar?k=7")
    assert status == 200, body
    assert body["model"]["name"] == SIMILAR and body["reason"] == "neighbours"
    assert [i["item_id"] for i in body["items"]] == expected["similar_item_id"].tolist()
    assert service.call("/items/no-such-item/similar")[0] == 404
