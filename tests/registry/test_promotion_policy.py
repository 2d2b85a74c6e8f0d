"""Each branch of the promotion policy, on real runs in a temporary SQLite MLflow store.

Two tiny experiments are run once per module (same data, two different splits); each test registers the runs it
needs under its own registered-model name, so tests do not share registry state.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import isolated_store
from mlflow.tracking import MlflowClient
from scipy import stats

from recsys.config.policy import FirstChampion, Guardrail, PolicyConfig, SignificanceConfig, load_policy
from recsys.errors import ConfigError, PromotionError
from recsys.experiment import run_experiment
from recsys.tracking import MlflowTracker
from recsys.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    promote,
    reevaluate_version,
    register_challenger,
    validate_candidate,
)

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

REPO = Path(__file__).resolve().parents[2]
_STORE: dict = {}
NO_BASELINE = FirstChampion(baseline_model=None)


@pytest.fixture
def store(tiny_config, tmp_path_factory):
    """Two experiments logged once: `main` (temporal split 20%) and `other` (same data, 30% test split)."""
    if not _STORE:
        root = tmp_path_factory.mktemp("registry-store")
        with isolated_store(root) as uri:
            main = run_experiment(tiny_config(registry={"enabled": False}), tracker=MlflowTracker(uri))
            other = run_experiment(tiny_config(name="tiny-other", split={"method": "temporal", "test_size": 0.3},
                                               registry={"enabled": False}), tracker=MlflowTracker(uri))
        _STORE.update(root=root, uri=uri, main=main, other=other)
    with isolated_store(_STORE["root"]):
        yield _STORE


@pytest.fixture
def client(store) -> MlflowClient:
    return MlflowClient(store["uri"])


def register(client: MlflowClient, exp, label: str, name: str) -> str:
    """Register the model run `label` of experiment result `exp` as a new challenger version of `name`."""
    result = next(r for r in exp.results if r.entry.run_name == label)
    cfg = exp.config.model_copy(update={"registry": exp.config.registry.model_copy(update={"model_name": name})})
    return register_challenger(client, cfg, result, exp.run_ids[label], exp.context)["version"]


def metric(exp, label: str, key: str) -> float:
    return next(r for r in exp.results if r.entry.run_name == label).metrics[key]


def alias(client: MlflowClient, name: str, which: str) -> str | None:
    version = (client.get_registered_model(name).aliases or {}).get(which)
    return None if version is None else str(version)


def recorded(client: MlflowClient, name: str, version: str) -> tuple[dict, dict]:
    """(version tags, decision JSON artifact) recorded by the last promotion decision."""
    mv = client.get_model_version(name, version)
    artifact = mlflow.artifacts.load_dict(mv.tags["promotion.artifact"])
    return mv.tags, artifact


def test_shipped_policies_load_and_bad_keys_are_named(tmp_path):
    default = load_policy(REPO / "configs/policies/default.yaml")
    strict = load_policy(REPO / "configs/policies/strict.yaml")
    assert default.significance is None and strict.significance is not None
    assert [g.metric for g in default.guardrails] == ["catalog_coverage_at_10"]
    for text, key in [("min_uplift: {relative: -0.5}\n", "min_uplift.relative"),
                      ("guardrails: [{metric: catalog_coverage_at_10}]\n", "max_drop_relative"),
                      ("significance: {alpah: 0.05}\n", "significance.alpah")]:
        path = tmp_path / "policy.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=key):
            load_policy(path)


def test_first_champion_beats_baseline_then_worse_challenger_is_kept(client, store):
    main, name = store["main"], "m-worse"
    best = main.best.entry.run_name
    assert best != "popularity"
    v1 = register(client, main, best, name)
    d1 = promote(client, name, REPO / "configs/policies/default.yaml")
    assert d1["decision"] == "promoted" and d1["mode"] == "first_champion"
    baseline = next(c for c in d1["checks"] if c["name"] == "beats_baseline")
    assert baseline["reference"] == pytest.approx(metric(main, "popularity", "ndcg_at_10"))
    assert alias(client, name, CHAMPION) == v1 and alias(client, name, CHALLENGER) is None

    v2 = register(client, main, "random", name)
    d2 = promote(client, name, REPO / "configs/policies/default.yaml")
    assert d2["decision"] == "kept"
    assert alias(client, name, CHAMPION) == v1 and alias(client, name, CHALLENGER) == v2
    uplift = next(c for c in d2["checks"] if c["name"] == "uplift")
    assert not uplift["passed"]
    assert uplift["challenger"] == pytest.approx(metric(main, "random", "ndcg_at_10"))
    assert uplift["reference"] == pytest.approx(metric(main, best, "ndcg_at_10"))
    tags, artifact = recorded(client, name, v2)
    assert tags["promotion.decision"] == "kept" and "uplift" in tags["promotion.reason"]
    assert artifact["decision"] == "kept" and artifact["previous_champion"] == v1
    assert artifact["policy"]["name"] == "default"
    assert "kept" in client.get_model_version(name, v2).description


def test_first_champion_failing_the_baseline_check_is_kept(client, store):
    main, name = store["main"], "m-first-fails"
    v1 = register(client, main, "random", name)
    d = promote(client, name, REPO / "configs/policies/default.yaml")
    assert d["decision"] == "kept" and alias(client, name, CHAMPION) is None
    check = next(c for c in d["checks"] if c["name"] == "beats_baseline")
    assert not check["passed"] and check["reference"] == pytest.approx(metric(main, "popularity", "ndcg_at_10"))
    assert recorded(client, name, v1)[0]["promotion.decision"] == "kept"
    # the baseline itself cannot be its own proof
    register(client, main, "popularity", name)
    d = promote(client, name, REPO / "configs/policies/default.yaml")
    assert d["decision"] == "kept" and "baseline itself" in " ".join(d["reasons"])
    assert alias(client, name, CHAMPION) is None


def test_guardrail_breach_keeps_the_champion_even_when_the_primary_metric_improves(client, store):
    main, name = store["main"], "m-guardrail"
    # precondition of the scenario: popularity is more accurate than random but covers far less of the catalog
    assert metric(main, "popularity", "ndcg_at_10") > metric(main, "random", "ndcg_at_10")
    cov_pop, cov_rand = (metric(main, m, "catalog_coverage_at_10") for m in ("popularity", "random"))
    assert cov_pop < 0.9 * cov_rand
    v1 = register(client, main, "random", name)
    assert promote(client, name, policy=PolicyConfig(first_champion=NO_BASELINE))["decision"] == "promoted"
    v2 = register(client, main, "popularity", name)
    policy = PolicyConfig(guardrails=[Guardrail(metric="catalog_coverage_at_10", max_drop_relative=0.1)])
    d = promote(client, name, policy=policy)
    assert d["decision"] == "kept" and alias(client, name, CHAMPION) == v1 and alias(client, name, CHALLENGER) == v2
    checks = {c["name"]: c for c in d["checks"]}
    assert checks["uplift"]["passed"] and not checks["guardrail"]["passed"]
    assert checks["guardrail"]["threshold"] == pytest.approx(0.1 * cov_rand)
    assert "guardrail" in recorded(client, name, v2)[0]["promotion.reason"]
    # the same pair without the guardrail is promoted: the guardrail alone made the difference
    assert promote(client, name, policy=PolicyConfig())["decision"] == "promoted"
    assert alias(client, name, CHAMPION) == v2


def _paired_p(client: MlflowClient, exp, challenger: str, champion: str) -> float:
    frames = []
    for label in (challenger, champion):
        local = client.download_artifacts(exp.run_ids[label], "per_user_metrics.parquet")
        frames.append(pd.read_parquet(local)[["user_id", "ndcg_at_10"]])
    joined = frames[0].merge(frames[1], on="user_id", suffixes=("_a", "_b"))
    return float(stats.wilcoxon(joined["ndcg_at_10_a"], joined["ndcg_at_10_b"], alternative="greater").pvalue)


@pytest.mark.parametrize("significant", [False, True], ids=["better-not-significant", "better-and-significant"])
def test_paired_significance_decides_between_two_better_models(client, store, significant):
    main, name = store["main"], f"m-significance-{significant}"
    best = main.best.entry.run_name
    register(client, main, "item_knn" if best != "item_knn" else "als", name)
    assert promote(client, name, policy=PolicyConfig(first_champion=NO_BASELINE))["decision"] == "promoted"
    champion = alias(client, name, CHAMPION)
    champ_label = client.get_model_version(name, champion).tags["label"]
    assert metric(main, best, "ndcg_at_10") > metric(main, champ_label, "ndcg_at_10")
    p = _paired_p(client, main, best, champ_label)
    assert 0 < p < 0.5
    # alpha just above / just below the p-value computed independently from the logged per-user vectors
    alpha = p * 2 if significant else p / 2
    policy = PolicyConfig(significance=SignificanceConfig(test="wilcoxon", alpha=alpha, min_users=20))
    v = register(client, main, best, name)
    d = promote(client, name, policy=policy)
    assert d["significance"]["p_value"] == pytest.approx(p, rel=1e-9)
    assert d["significance"]["n"] >= 20
    assert next(c for c in d["checks"] if c["name"] == "uplift")["passed"]
    if significant:
        assert d["decision"] == "promoted" and alias(client, name, CHAMPION) == v
    else:
        assert d["decision"] == "kept" and alias(client, name, CHAMPION) == champion
        assert "significance" in recorded(client, name, v)[0]["promotion.reason"]
    assert recorded(client, name, v)[0]["promotion.p_value"] == repr(d["significance"]["p_value"])


def hand_ndcg_at_10(model, data, test_rows: pd.DataFrame) -> float:
    """Mean NDCG@10 over test users: relevant = their test items minus their training items (items unknown to
    training count in the ideal DCG but can never be hit); unknown users get the most popular items (distinct
    training users, ties by item id)."""
    import math

    import numpy as np

    coo = data.matrix.tocoo()
    train_items_of: dict = {}
    users_of: dict = {}
    for u, i in zip(coo.row.tolist(), coo.col.tolist()):
        uid, iid = data.users.ids[u], data.items.ids[i]
        train_items_of.setdefault(uid, set()).add(iid)
        users_of.setdefault(iid, set()).add(uid)
    popular = sorted(users_of, key=lambda item: (-len(users_of[item]), item))[:10]
    user_pos = {uid: n for n, uid in enumerate(data.users.ids)}
    values = []
    for uid, rows in test_rows.groupby("user_id"):
        rel_all = set(rows["item_id"]) - train_items_of.get(uid, set())
        if not rel_all:
            continue
        if uid in user_pos:
            idx, _ = model.recommend(np.array([user_pos[uid]]), 10)
            ranked = [data.items.ids[i] for i in idx[0] if i >= 0]
        else:
            ranked = popular
        hittable = rel_all & set(users_of)
        dcg = sum(1.0 / math.log2(r + 2) for r, item in enumerate(ranked[:10]) if item in hittable)
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel_all), 10)))
        values.append(dcg / idcg)
    return float(np.mean(values))


def test_champion_from_another_split_is_reevaluated_on_the_challengers_test_data(client, store):
    main, other, name = store["main"], store["other"], "m-reevaluate"
    assert main.context.split_fingerprint != other.context.split_fingerprint
    best = main.best.entry.run_name
    v1 = register(client, main, best, name)
    promote(client, name, policy=PolicyConfig(guardrails=[]))
    # re-evaluating the champion on its own split reproduces its logged metrics (same users, same rankings)
    own = reevaluate_version(client, name, v1, main.parent_run_id, [10])
    for key in ("ndcg_at_10", "recall_at_10", "catalog_coverage_at_10"):
        assert own.metrics[key] == pytest.approx(metric(main, best, key), abs=1e-12)

    v2 = register(client, other, "popularity", name)
    d = promote(client, name, policy=PolicyConfig(guardrails=[]))
    assert d["champion_reevaluated"] is True
    assert d["champion_logged_value"] == pytest.approx(metric(main, best, "ndcg_at_10"))
    # independent recomputation (no evaluation code of the library): the in-memory champion's own top-10 lists
    # on the other split's logged test rows, NDCG@10 by the textbook formula in a per-user loop
    champ = next(r for r in main.results if r.entry.run_name == best).model
    test_rows = pd.read_parquet(client.download_artifacts(other.parent_run_id, "data/test_interactions.parquet"))
    expected = hand_ndcg_at_10(champ, main.context.state["data"], test_rows)
    assert d["reference_value"] == pytest.approx(expected, abs=1e-12)
    assert d["reference_value"] != pytest.approx(d["champion_logged_value"], abs=1e-9)
    # popularity (the challenger) does not beat the re-evaluated best model on the same rows: kept, pinned
    assert d["challenger_value"] < expected
    assert d["decision"] == "kept"
    assert alias(client, name, CHAMPION) == v1 and alias(client, name, CHALLENGER) == v2


def test_repeated_splits_score_each_fold_and_the_gate_pairs_fold_and_user(client, store, tiny_config):
    """A 2-fold temporal experiment: the same users appear in both test windows. Re-evaluating a champion from
    another split (trained on the first 80%, so neither 10% window is inside it) scores each fold on its own,
    keeps the fold on the per-user rows and averages the fold values; the gate pairs (fold, user) units."""
    main, name = store["main"], "m-reevaluate-folds"
    folded = run_experiment(tiny_config(name="tiny-folds", split={"method": "temporal", "test_size": 0.1, "folds": 2},
                                        models=[{"name": "random"}, {"name": "popularity"}],
                                        registry={"enabled": False}), tracker=MlflowTracker(store["uri"]))
    best = main.best.entry.run_name
    v1 = register(client, main, best, name)
    promote(client, name, policy=PolicyConfig(guardrails=[]))
    test_rows = pd.read_parquet(client.download_artifacts(folded.parent_run_id, "data/test_interactions.parquet"))
    assert sorted(test_rows["fold"].unique()) == [0, 1]
    twice = set(test_rows.loc[test_rows["fold"] == 0, "user_id"]) & set(test_rows.loc[test_rows["fold"] == 1,
                                                                                       "user_id"])
    assert twice  # the case that matters: users evaluated in both folds

    fresh = reevaluate_version(client, name, v1, folded.parent_run_id, [10])
    assert set(fresh.per_user["fold"]) == {0, 1} and not fresh.per_user.duplicated(["fold", "user_id"]).any()
    champ = next(r for r in main.results if r.entry.run_name == best).model
    data = main.context.state["data"]
    per_fold = [hand_ndcg_at_10(champ, data, test_rows[test_rows["fold"] == f].drop(columns=["fold"]))
                for f in (0, 1)]
    assert fresh.metrics["ndcg_at_10"] == pytest.approx(sum(per_fold) / 2, abs=1e-12)

    # champion and challenger from the same 2-fold experiment (no re-evaluation): the per-user tables hold
    # (fold, user) rows, users of both folds included; the gate pairs exactly those
    same = "m-folds-same-split"
    register(client, folded, "random", same)
    promote(client, same, policy=PolicyConfig(guardrails=[], first_champion=NO_BASELINE))
    register(client, folded, "popularity", same)
    rows = {label: pd.read_parquet(client.download_artifacts(folded.run_ids[label], "per_user_metrics.parquet"))
            for label in ("random", "popularity")}
    joined = rows["popularity"].merge(rows["random"], on=["fold", "user_id"], suffixes=("_a", "_b"))
    assert len(joined) > joined["user_id"].nunique()  # some users are paired once per fold
    d = promote(client, same, policy=PolicyConfig(guardrails=[], significance=SignificanceConfig(min_users=5)))
    assert d["champion_reevaluated"] is False
    p = float(stats.wilcoxon(joined["ndcg_at_10_a"], joined["ndcg_at_10_b"], alternative="greater").pvalue)
    assert d["significance"]["n"] == len(joined) and d["significance"]["p_value"] == pytest.approx(p, rel=1e-12)


def test_candidate_that_fails_to_load_is_refused_and_champion_does_not_move(client, store):
    main, name = store["main"], "m-corrupt"
    v1 = register(client, main, "item_knn", name)
    assert promote(client, name, REPO / "configs/policies/default.yaml")["decision"] == "promoted"
    v2 = register(client, main, "als", name)
    state = Path(client.get_model_version_download_uri(name, v2)) / "artifacts" / "model" / "state.npz"
    backup = state.read_bytes()
    try:
        state.write_bytes(backup[: len(backup) // 3])  # truncated: np.load fails
        with pytest.raises(PromotionError, match="failed to load or predict"):
            promote(client, name, policy=PolicyConfig(guardrails=[]))
        assert alias(client, name, CHAMPION) == v1 and alias(client, name, CHALLENGER) == v2
        tags, artifact = recorded(client, name, v2)
        assert tags["promotion.decision"] == "refused" and artifact["decision"] == "refused"
        with pytest.raises(PromotionError):
            validate_candidate(client, name, v2)
    finally:
        state.write_bytes(backup)
    assert validate_candidate(client, name, v1)["ok"]
