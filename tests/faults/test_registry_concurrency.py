"""Concurrent promotions and rollbacks on one store: they take turns under the registry lease.

One real experiment logs one pyfunc model; further versions reuse its artifacts (so every version loads and
predicts) on runs with strictly increasing NDCG, so each promotion wins its gate. The oracle replays the
append-only event log (`champion_event.<seq>`) as a stack: every event must start from the champion the
previous event left, every rollback must land on the version before the current champion, and the final alias
and `champion_history` must equal the replay.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from recsys.errors import PromotionError
from tests.faults.helpers import check_lease_expiry, env

pytestmark = pytest.mark.slow

NAME = "faults-registry"
PAIRS = 20


@pytest.fixture
def store(tmp_path, mlflow_uri, tiny_config):
    from recsys.experiment import run_experiment
    from recsys.tracking import MlflowTracker

    cfg = tiny_config(name="faults-registry", registry={"model_name": NAME},
                      models=[{"name": "popularity"}])
    run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = MlflowClient(mlflow_uri, registry_uri=mlflow_uri)
    v1 = client.get_model_version(NAME, "1")
    run1 = client.get_run(v1.run_id)
    for i in range(2, PAIRS + 3):
        run = client.create_run(run1.info.experiment_id, tags={"role": "model", "model": "popularity"})
        client.log_metric(run.info.run_id, "ndcg_at_10", 0.5 + 0.01 * i)  # above v1 (popularity on tiny data)
        client.log_metric(run.info.run_id, "catalog_coverage_at_10", 0.5)
        client.set_terminated(run.info.run_id)
        client.create_model_version(NAME, source=v1.source, run_id=run.info.run_id, tags=dict(v1.tags))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"name": "faults", "primary_metric": "ndcg_at_10", "guardrails": [],
                                      "significance": None, "first_champion": {"baseline_model": None},
                                      "reevaluate": False}))
    return client, str(policy), mlflow_uri


def _replay(events: list[dict]) -> tuple[list[str], str | None]:
    """(history stack, champion) from the events; asserts each event continues from the previous one."""
    stack: list[str] = []
    champion = None
    for e in events:
        assert e["from"] == champion, f"event {e['seq']} starts from {e['from']} but the champion was {champion}"
        if e["action"] == "promote":
            stack.append(e["to"])
            champion = e["to"]
        elif e["action"] == "rollback":
            assert len(stack) >= 2 and stack[-1] == e["from"], (e, stack)
            stack.pop()
            assert e["to"] == stack[-1], f"rollback {e['seq']} landed on {e['to']}, not the previous {stack[-1]}"
            champion = e["to"]
        else:
            assert e["action"] == "rollback_refused" and len(stack) <= 1, (e, stack)
    return stack, champion


def test_concurrent_promote_and_rollback_pairs(store) -> None:
    from recsys.tracking.registry import HISTORY_TAG, promote, rollback
    from recsys.tracking.registry_lock import events

    client, policy, uri = store
    assert promote(client, NAME, policy, version="1")["decision"] == "promoted"
    errors: list[BaseException] = []
    decisions: list[dict] = []

    def run(fn, *args, **kwargs) -> None:
        try:
            decisions.append(fn(MlflowClient(uri, registry_uri=uri), NAME, *args, **kwargs))
        except PromotionError:
            pass  # a rollback with nothing to roll back to (recorded as rollback_refused)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for i in range(2, PAIRS + 2):
        pair = [threading.Thread(target=run, args=(promote, policy), kwargs={"version": str(i)}),
                threading.Thread(target=run, args=(rollback,), kwargs={"reason": f"pair {i}"})]
        for t in pair:
            t.start()
        for t in pair:
            t.join(300)
            assert not t.is_alive(), f"pair {i}: a promotion or rollback did not return within 300 s (deadlock?)"
    assert errors == []
    log = events(client, NAME)
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1)), "sequence numbers repeat or skip"
    kept = [d for d in decisions if d.get("decision") not in ("promoted", "rollback")]
    assert kept == [], kept
    assert sum(e["action"] == "promote" for e in log) == PAIRS + 1
    assert sum(e["action"].startswith("rollback") for e in log) == PAIRS
    stack, champion = _replay(log)
    history = json.loads(client.get_registered_model(NAME).tags[HISTORY_TAG])
    assert history == stack
    assert len(history) == len(set(history)), f"duplicates in the champion history: {history}"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == champion


def test_two_processes_promote_at_once(store, tmp_path: Path) -> None:
    """The issue's case: two `recsys registry promote` at once; both finish and the history stays a chain."""
    from recsys.tracking.registry_lock import events

    client, policy, uri = store
    cmd = [sys.executable, "-m", "recsys.cli", "registry", "promote", "-m", NAME, "--policy", policy, "--version"]
    procs = [subprocess.Popen([*cmd, v], cwd=tmp_path, env=env(uri), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for v in ("2", "3")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    log = events(client, NAME)
    stack, champion = _replay(log)
    assert len(stack) == len(set(stack)) and stack[-1] == champion
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == champion
    assert all(e["action"] == "promote" for e in log) and len(log) >= 1


def test_dead_holder_lease_expires(store) -> None:
    """A lease whose holder died (never released) is taken over once it expires; a live one is not."""
    _client, _policy, uri = store
    check_lease_expiry(uri, NAME)


def test_rollback_on_an_empty_store_is_one_line(tmp_path: Path, mlflow_uri: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", "registry", "rollback", "-m", "nothing-here"],
                          check=False, cwd=tmp_path, env=env(mlflow_uri), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "does not exist" in proc.stderr


def test_promotion_with_an_unreadable_evidence_table_is_recorded(store, tmp_path: Path) -> None:
    from recsys.evaluation.promotion import PER_USER

    client, policy, uri = store
    mv = client.get_model_version(NAME, "2")
    bad = tmp_path / Path(PER_USER).name
    bad.write_bytes(b"PAR1 this is not parquet")
    client.log_artifact(mv.run_id, str(bad), str(Path(PER_USER).parent) if "/" in PER_USER else None)
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", "registry", "promote", "-m", NAME, "--policy", policy,
                           "--version", "2"], check=False, cwd=tmp_path, env=env(uri), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "cannot be read" in proc.stderr
    tags = client.get_model_version(NAME, "2").tags
    assert tags["promotion.decision"] == "refused" and "cannot be read" in tags["promotion.reason"]
