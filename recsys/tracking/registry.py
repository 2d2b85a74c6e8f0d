"""Model registry: register the selected model as `challenger`; promote it to `champion` behind a policy gate.

Aliases, never stages. `promote` compares the challenger with `@champion` on the same evaluation data (re-evaluating
the champion when it was scored on another split), loads the candidate through `models:/<name>/<version>` before
the alias moves, and records the decision on the version (tags, description) and as a JSON artifact on its run.
The `champion_history` tag on the registered model makes `rollback` possible.

This module is the MLflow I/O around the decision: it gathers evidence from the store, asks
`recsys.evaluation.promotion` (pure: evidence in, checks out) for the verdict, and records it.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from recsys.config.loader import config_hash
from recsys.config.policy import PolicyConfig, load_policy
from recsys.config.schema import ExperimentConfig
from recsys.errors import PromotionError
from recsys.evaluation.promotion import (
    PER_USER,
    Check,
    Evidence,
    compare,
    cutoffs_needed,
    first_champion_checks,
    json_number,
    same_evaluation_data,
    summarize,
)
from recsys.logging import get_logger
from recsys.tasks.base import ModelResult, TaskContext
from recsys.tracking.registry_lock import append_event, under_lease

_log = get_logger(__name__)

CHALLENGER, CHAMPION = "challenger", "champion"


def register_challenger(client: MlflowClient, cfg: ExperimentConfig, best: ModelResult, run_id: str,
                        ctx: TaskContext) -> dict[str, Any]:
    """Create a model version from the run's pyfunc and point `challenger` at it."""
    from mlflow.exceptions import MlflowException

    name = cfg.registered_model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={"task": cfg.task},
                                       description=f"recsys {cfg.task} models from experiment {cfg.name!r}")
    metric = cfg.metrics.primary
    tags = {
        "run_id": run_id,
        "task": cfg.task,
        "model": best.entry.name,
        "label": best.entry.run_name,
        "primary_metric": metric,
        "primary_value": repr(float(best.metrics.get(metric, float("nan")))),
        "dataset": ctx.dataset_name,
        "dataset_fingerprint": ctx.fingerprint,
        "split_fingerprint": ctx.split_fingerprint,
        "config_hash": config_hash(cfg),
        "experiment": cfg.name,
    }
    mv = client.create_model_version(name=name, source=best.extra["model_uri"], run_id=run_id, tags=tags,
                                     description=f"{best.entry.run_name}: {metric}={tags['primary_value']}")
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    _log.info("registered %s version %s (alias %s)", name, mv.version, CHALLENGER)
    return {"model_name": name, "version": str(mv.version), "alias": CHALLENGER}


# promotion ------------------------------------------------------------------------------------------------
HISTORY_TAG = "champion_history"
PARENT_TAG = "mlflow.parentRunId"
TEST_ROWS = "data/test_interactions.parquet"


@under_lease  # one promotion/rollback at a time per model, on every machine sharing the store
def promote(client: MlflowClient, model_name: str, policy_path: str | Path | None = None, *,
            policy: PolicyConfig | None = None, version: str | int | None = None) -> dict[str, Any]:
    """Compare the challenger (or `version`) with `@champion` under a policy; move `champion` only if it wins.

    Returns the decision (also recorded as version tags, description and `promotion/decision-v<N>.json` on the
    challenger's run): ``decision`` is ``promoted`` or ``kept``. Raises PromotionError when the candidate does
    not load or predict (decision ``refused``, recorded too; the alias does not move).

    Example:
        >>> promote(MlflowClient(), "recsys-quickstart", "configs/policies/default.yaml")  # doctest: +SKIP
        {'decision': 'promoted', 'version': '3', 'previous_champion': '1', ...}
    """
    policy = policy or load_policy(policy_path)
    mv = _resolve_version(client, model_name, version)
    champion = _alias_version(client, model_name, CHAMPION)
    run = client.get_run(mv.run_id)
    primary = policy.primary_metric or mv.tags.get("primary_metric") or run.data.params.get("metrics.primary")
    if not primary:
        raise PromotionError(f"version {mv.version} of {model_name!r} has no `primary_metric` tag; set "
                             "primary_metric in the policy file")
    decision: dict[str, Any] = {
        "model_name": model_name, "version": str(mv.version), "run_id": mv.run_id,
        "label": mv.tags.get("label", ""), "previous_champion": str(champion.version) if champion else None,
        "policy": {"path": str(policy_path) if policy_path else None, **policy.model_dump(mode="json")},
        "primary_metric": primary, "direction": policy.direction, "decided_at": _now(),
    }
    if champion is not None and str(champion.version) == str(mv.version):
        decision.update(decision="kept", reasons=[f"version {mv.version} already holds `{CHAMPION}`"], checks=[])
        return decision
    try:  # evidence that cannot be read (a truncated per-user table): refused, and the decision recorded
        challenger = _run_evidence(client, run, label=f"v{mv.version}", version=str(mv.version))
        if champion is None:
            decision["mode"] = "first_champion"
            checks, significance = _first_champion_checks(client, run, challenger, primary, policy)
        else:
            decision["mode"] = "versus_champion"
            reference = _champion_evidence(client, model_name, champion, mv, run, primary, policy)
            decision["champion_reevaluated"] = reference.reevaluated
            if reference.reevaluated:
                decision["champion_logged_value"] = json_number(reference.logged_value)
                # like for like: score the challenger with the same procedure on the same rows
                logged = challenger.metrics.get(primary)
                challenger = _reevaluate(client, model_name, str(mv.version), run, primary, policy)
                challenger.logged_value = logged
                decision["challenger_logged_value"] = json_number(logged)
            checks, significance = compare(challenger, reference, primary, policy.direction, policy.min_uplift,
                                            policy.guardrails, policy)
    except PromotionError as exc:
        decision.update(decision="refused", reasons=[f"evidence: {exc}"], checks=[])
        _record(client, model_name, mv, decision)
        raise
    failed = summarize(decision, checks, significance, challenger, primary)
    if failed:
        decision.update(decision="kept", reasons=[f"{c.name}: {c.detail}" for c in failed])
        _record(client, model_name, mv, decision)
        _log.info("kept champion %s; version %s stays %s: %s", decision["previous_champion"], mv.version,
                  CHALLENGER, "; ".join(decision["reasons"]))
        return decision
    try:
        decision["load_check"] = validate_candidate(client, model_name, str(mv.version))
    except PromotionError as exc:
        decision.update(decision="refused", reasons=[f"load_check: {exc}"])
        _record(client, model_name, mv, decision)
        raise
    client.set_registered_model_alias(model_name, CHAMPION, mv.version)
    _push_history(client, model_name, str(mv.version), previous=decision["previous_champion"])
    append_event(client, model_name, "promote", decision["previous_champion"], str(mv.version))
    if (chal := _alias_version(client, model_name, CHALLENGER)) is not None and str(chal.version) == str(mv.version):
        client.delete_registered_model_alias(model_name, CHALLENGER)
    decision.update(decision="promoted", reasons=[c.detail for c in checks])
    _record(client, model_name, mv, decision)
    _log.info("promoted %s version %s to %s (was %s)", model_name, mv.version, CHAMPION, decision["previous_champion"])
    return decision


@under_lease
def rollback(client: MlflowClient, model_name: str, reason: str = "") -> dict[str, Any]:
    """Move `champion` back to the previous champion (from the `champion_history` tag); it must still load."""
    current = _alias_version(client, model_name, CHAMPION)
    history = _history(client, model_name)
    cur = str(current.version) if current else None
    while history and history[-1] == cur:
        history.pop()
    if not history:
        reason_refused = f"no previous champion in the `{HISTORY_TAG}` tag (current champion: {cur})"
        append_event(client, model_name, "rollback_refused", cur, None, reason=reason_refused)
        raise PromotionError(f"cannot roll back {model_name!r}: {reason_refused}; promote a version first")
    target = history[-1]
    check = validate_candidate(client, model_name, target)
    client.set_registered_model_alias(model_name, CHAMPION, target)
    client.set_registered_model_tag(model_name, HISTORY_TAG, json.dumps(history))
    append_event(client, model_name, "rollback", cur, target, reason=reason[:500])
    at = _now()
    record = {"decision": "rollback", "model_name": model_name, "from_version": cur, "to_version": target,
              "reason": reason, "decided_at": at, "load_check": check}
    if cur is not None:
        client.set_model_version_tag(model_name, cur, "promotion.decision", "rolled_back")
        client.set_model_version_tag(model_name, cur, "promotion.rolled_back_at", at)
        client.set_model_version_tag(model_name, cur, "promotion.reason", f"rolled back to v{target}: {reason}"[:4000])
    client.set_model_version_tag(model_name, target, "promotion.restored_at", at)
    _log.info("rolled back %s champion: version %s -> %s", model_name, cur, target)
    return record


def status(client: MlflowClient, model_name: str) -> pd.DataFrame:
    """One row per version: aliases, model label, primary metric and value, fingerprints, last decision."""
    from mlflow.exceptions import MlflowException

    try:
        rm = client.get_registered_model(model_name)
    except MlflowException:
        raise PromotionError(f"registered model {model_name!r} does not exist; run an experiment with "
                             "registry.enabled: true first") from None
    aliases: dict[str, list[str]] = {}
    for alias, v in (rm.aliases or {}).items():
        aliases.setdefault(str(v), []).append(alias)
    rows = []
    for mv in client.search_model_versions(f"name = '{model_name}'"):
        t = mv.tags or {}
        rows.append({
            "version": int(mv.version),
            "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
            "model": t.get("label", t.get("model", "")),
            "metric": t.get("primary_metric", ""),
            "value": _float(t.get("primary_value")),
            "split": t.get("split_fingerprint", "")[:8],
            "decision": t.get("promotion.decision", ""),
            "p_value": _float(t.get("promotion.p_value")),
            "reason": t.get("promotion.reason", "")[:80],
            "run_id": mv.run_id,
        })
    cols = ["version", "aliases", "model", "metric", "value", "split", "decision", "p_value", "reason", "run_id"]
    return pd.DataFrame(rows, columns=cols).sort_values("version", ascending=False).reset_index(drop=True)


def validate_candidate(client: MlflowClient, model_name: str, version: str) -> dict[str, Any]:
    """Load `models:/<name>/<version>` through pyfunc and predict on its input example; PromotionError otherwise."""
    import mlflow

    uri = f"models:/{model_name}/{version}"
    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(uri)
        example = model.input_example
        if example is None:
            raise ValueError("the model was logged without an input example")
        out = model.predict(example)
        if len(out) == 0:
            raise ValueError(f"predict on the input example ({len(example)} rows) returned nothing")
    except Exception as exc:  # noqa: BLE001 - anything that stops the model from serving refuses it
        raise PromotionError(f"candidate {uri} failed to load or predict ({type(exc).__name__}: {exc}); "
                             f"`{CHAMPION}` was not moved. Re-run the experiment to log a healthy model") from None
    return {"uri": uri, "input_rows": len(example), "output_rows": len(out), "ok": True}


# evidence ---------------------------------------------------------------------------------------------------
def _run_evidence(client: MlflowClient, run, label: str, version: str | None = None) -> Evidence:
    return Evidence(label=label, run_id=run.info.run_id, metrics=dict(run.data.metrics),
                    per_user=_load_table(client, run.info.run_id, PER_USER), version=version)


def _champion_evidence(client: MlflowClient, model_name: str, champion, mv, run, primary: str,
                       policy: PolicyConfig) -> Evidence:
    champ_run = client.get_run(champion.run_id)
    evidence = _run_evidence(client, champ_run, label=f"v{champion.version}", version=str(champion.version))
    ct, ht = champion.tags or {}, mv.tags or {}
    if same_evaluation_data(ct, ht, champion_version=str(champion.version), challenger_version=str(mv.version)):
        return evidence
    if not policy.reevaluate:
        raise PromotionError(f"champion v{champion.version} was evaluated on other data (split "
                             f"{ct.get('split_fingerprint')} vs {ht.get('split_fingerprint')}) and the policy has "
                             "reevaluate: false; set reevaluate: true to compare on the challenger's test data")
    fresh = _reevaluate(client, model_name, str(champion.version), run, primary, policy)
    fresh.logged_value = evidence.metrics.get(primary)
    return fresh


def _reevaluate(client: MlflowClient, model_name: str, version: str, challenger_run, primary: str,
                policy: PolicyConfig) -> Evidence:
    parent = challenger_run.data.tags.get(PARENT_TAG)
    if not parent:
        raise PromotionError(f"cannot re-evaluate the champion: run {challenger_run.info.run_id} has no parent "
                             f"experiment run holding {TEST_ROWS}; re-run the challenger's experiment")
    ks = cutoffs_needed(primary, policy)
    evidence = reevaluate_version(client, model_name, version, parent, ks)
    n_users = 0 if evidence.per_user is None else len(evidence.per_user)
    _log.info("re-evaluated v%s on %d test users of the challenger's split: %s=%.4f", version,
              n_users, primary, evidence.metrics.get(primary, float("nan")))
    return evidence


def reevaluate_version(client: MlflowClient, model_name: str, version: str, experiment_run_id: str,
                       ks: list[int]) -> Evidence:
    """Score a registered recommend model on the test interactions logged by an experiment's parent run.

    The saved model folder carries its vocabularies and seen-items matrix, so training items are excluded from
    the rankings without the training data. Test users unknown to the model get its popularity fallback; test
    items unknown to it stay relevant (it cannot recommend them). Diversity is not recomputed (item categories
    are not stored with the model).
    """
    import mlflow

    from recsys.data.tables import TrainData, align_items
    from recsys.evaluation.metric_registry import needs
    from recsys.evaluation.recommend import build_target, evaluate_recommender
    from recsys.models.base import Model, Recommender

    test_rows = _load_table(client, experiment_run_id, TEST_ROWS)
    if test_rows is None:
        raise PromotionError(f"cannot re-evaluate v{version}: run {experiment_run_id} has no {TEST_ROWS} "
                             "artifact; re-run that experiment")
    with tempfile.TemporaryDirectory(prefix="recsys-champion-") as tmp:
        mlflow.set_tracking_uri(client.tracking_uri)
        try:
            local = Path(mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}", dst_path=tmp))
            model = Model.load(local / "artifacts" / "model")
        except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
            raise PromotionError(f"cannot re-evaluate v{version} of {model_name!r}: its saved model does not "
                                 f"load ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, Recommender):
        raise PromotionError(f"v{version} is a {type(model).__name__}; re-evaluation on another split is "
                             "implemented for the recommend task only; set reevaluate: false to refuse instead")
    data = TrainData(matrix=model.seen_, users=model.users_, items=model.items_,
                     item_table=align_items(None, model.items_), interactions=pd.DataFrame())
    # repeated splits log every fold's test rows with a `fold` column: score each fold on its own, keep the
    # fold on the per-user rows (the paired test keys on (fold, user)) and average the metrics over folds,
    # as the experiment does for the challenger
    folds = sorted(test_rows["fold"].unique()) if "fold" in test_rows.columns else [None]
    fold_metrics, tables = [], []
    for fold in folds:
        rows = test_rows if fold is None else test_rows[test_rows["fold"] == fold].drop(columns=["fold"])
        target = build_target(data, rows, unknown_users="fallback", unknown_items="keep")
        res = evaluate_recommender(model, data, target, ks, store_lists=False, desc=f"re-evaluate v{version}")
        # the saved model carries no item categories: drop what needs them (diversity)
        fold_metrics.append({k: v for k, v in res.metrics.items() if not needs(k, "categories")})
        table = res.per_user.drop(columns=[c for c in res.per_user.columns if needs(c, "categories")])
        tables.append(table if fold is None else table.assign(fold=fold))
    metrics = {k: float(np.mean([m[k] for m in fold_metrics])) for k in fold_metrics[0]}
    per_user = pd.concat(tables, ignore_index=True)
    if folds != [None]:
        per_user = per_user[["fold", *[c for c in per_user.columns if c != "fold"]]]
    return Evidence(label=f"v{version} (re-evaluated)", run_id=experiment_run_id, metrics=metrics,
                    per_user=per_user, version=version, reevaluated=True)


def _first_champion_checks(client: MlflowClient, run, challenger: Evidence, primary: str,
                           policy: PolicyConfig) -> tuple[list[Check], dict | None]:
    model = policy.first_champion.baseline_model
    baseline, missing, itself = None, "", False
    if model:
        found = _find_baseline(client, run, model)
        if found is None:
            missing = (f"no sibling run with model={model!r} under parent run {run.data.tags.get(PARENT_TAG)}; "
                       "add it to the experiment's models or set first_champion.baseline_model: null")
        elif found.info.run_id == run.info.run_id:
            itself = True
        else:
            baseline = _run_evidence(client, found, label=model)
    return first_champion_checks(challenger, baseline, primary, policy, missing_baseline=missing,
                                 baseline_is_candidate=itself)


def _find_baseline(client: MlflowClient, run, model: str):
    parent = run.data.tags.get(PARENT_TAG)
    if not parent:
        return None
    found = client.search_runs([run.info.experiment_id],
                               filter_string=f"tags.`{PARENT_TAG}` = '{parent}' and tags.model = '{model}'",
                               max_results=1)
    return found[0] if found else None


# recording --------------------------------------------------------------------------------------------------
def _record(client: MlflowClient, model_name: str, mv, decision: dict[str, Any]) -> None:
    version = str(mv.version)
    path = f"promotion/decision-v{version}.json"
    decision["artifact"] = f"runs:/{mv.run_id}/{path}"
    client.log_dict(mv.run_id, decision, path)
    sig = decision.get("significance") or {}
    tags = {
        "promotion.decision": decision["decision"],
        "promotion.reason": "; ".join(decision.get("reasons", []))[:4000],
        "promotion.policy": decision["policy"]["name"],
        "promotion.champion_version": str(decision.get("previous_champion") or "none"),
        "promotion.primary_metric": decision["primary_metric"],
        "promotion.challenger_value": str(decision.get("challenger_value")),
        "promotion.reference_value": str(decision.get("reference_value")),
        "promotion.p_value": str(sig.get("p_value", "")),
        "promotion.decided_at": decision["decided_at"],
        "promotion.artifact": decision["artifact"],
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    summary = (f"[{decision['decided_at']}] {decision['decision']} by policy {decision['policy']['name']!r} vs "
               f"champion {decision.get('previous_champion') or 'none'}: {tags['promotion.reason'][:500]}")
    desc = (mv.description or "").split("\n\n[", 1)[0]
    client.update_model_version(model_name, version, description=f"{desc}\n\n{summary}".strip())


def _push_history(client: MlflowClient, model_name: str, version: str, previous: str | None = None) -> None:
    history = _history(client, model_name)
    if previous is not None and (not history or history[-1] != previous):
        history.append(previous)  # champion set outside `promote`: keep it reachable by rollback
    if not history or history[-1] != version:
        history.append(version)
    client.set_registered_model_tag(model_name, HISTORY_TAG, json.dumps(history))


def _history(client: MlflowClient, model_name: str) -> list[str]:
    from mlflow.exceptions import MlflowException

    try:
        raw = (client.get_registered_model(model_name).tags or {}).get(HISTORY_TAG)
    except MlflowException:
        raise PromotionError(f"registered model {model_name!r} does not exist in this store; run an experiment with "
                             "registry.enabled: true first (or check --model-name / --tracking-uri)") from None
    return [str(v) for v in json.loads(raw)] if raw else []


# small helpers -------------------------------------------------------------------------------------------------
def _resolve_version(client: MlflowClient, model_name: str, version: str | int | None):
    from mlflow.exceptions import MlflowException

    try:
        if version is not None:
            return client.get_model_version(model_name, str(version))
        return client.get_model_version_by_alias(model_name, CHALLENGER)
    except MlflowException:
        what = f"version {version}" if version is not None else f"version holding the `{CHALLENGER}` alias"
        raise PromotionError(f"registered model {model_name!r} has no {what}; run an experiment with "
                             "registry.enabled: true (or pass an existing --version)") from None


def _alias_version(client: MlflowClient, model_name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def _load_table(client: MlflowClient, run_id: str, path: str) -> pd.DataFrame | None:
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="recsys-artifact-") as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except (MlflowException, OSError):
            return None
        try:
            return pd.read_parquet(local)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: one line, the decision recorded
            raise PromotionError(f"evidence table {path} of run {run_id} cannot be read ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}); re-run that experiment to log it again") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
