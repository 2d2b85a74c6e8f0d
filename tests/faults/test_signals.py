"""SIGTERM / SIGINT during `recsys run`, `recsys tune` and `mlflow run`: runs closed KILLED, trials failed, no model
registered after the signal, exit 143 / 130 with one line, and a clean rerun.

The signal is raised at a known stage by the process itself (RECSYS_FAULT_AT, see recsys.faults.checkpoint), or
sent from outside once the store shows a model run (no sleeps).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import wait_until

from tests.faults.helpers import ROOT, env, model_versions, one_clean_line, recsys, runs, write_config

pytestmark = pytest.mark.slow


def _assert_killed_store(uri: str) -> None:
    all_runs = runs(uri)
    assert all_runs, "the experiment logged nothing before the signal (the stage is too early for this check)"
    statuses = {r.info.run_id: r.info.status for r in all_runs}
    assert "RUNNING" not in statuses.values(), statuses
    assert "KILLED" in statuses.values(), statuses
    assert all(r.info.end_time for r in all_runs), "a closed run has no end time"
    assert model_versions(uri) == [], "a model version was registered after the signal"


def _assert_clean_rerun(cfg: Path, tmp: Path, environ: dict[str, str], uri: str, args: list[str]) -> None:
    before = {r.info.run_id for r in runs(uri)}
    again = recsys(args, tmp, environ)
    assert again.returncode == 0, again.stderr[-3000:]
    new = [r for r in runs(uri) if r.info.run_id not in before]
    assert new and all(r.info.status == "FINISHED" for r in new), [(r.info.run_name, r.info.status) for r in new]


@pytest.mark.parametrize("stage", ["prepared", "model:popularity", "fitted:als", "register"])
def test_sigterm_during_run(tmp_path: Path, stage: str) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    environ = env(uri, RECSYS_FAULT_AT=stage, TMPDIR=str(scratch))
    proc = recsys(["run", str(cfg)], tmp_path, environ)
    assert proc.returncode == 143, proc.stderr[-3000:]
    one_clean_line(proc)
    assert "SIGTERM" in proc.stderr
    _assert_killed_store(uri)
    leftovers = [p.name for p in scratch.iterdir() if p.is_dir()]
    assert leftovers == [], f"temporary directories left behind: {leftovers}"
    _assert_clean_rerun(cfg, tmp_path, env(uri), uri, ["run", str(cfg)])
    assert len(model_versions(uri)) == 1  # the rerun registers exactly one challenger


def test_sigint_during_run_is_one_line_exit_130(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path)
    proc = recsys(["run", str(cfg)], tmp_path, env(uri, RECSYS_FAULT_AT="model:als", RECSYS_FAULT_SIGNAL="INT"))
    assert proc.returncode == 130, proc.stderr[-3000:]
    one_clean_line(proc)
    assert "KeyboardInterrupt" not in proc.stderr
    _assert_killed_store(uri)


def test_sigterm_sent_from_outside_while_a_model_runs(tmp_path: Path) -> None:
    """An external `kill` at a point chosen by the store's state (the first model run exists)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "run", str(cfg)], cwd=tmp_path, env=env(uri),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: any(r.data.tags.get("role") == "model" for r in runs(uri)), "a model run", proc,
                   seconds=240)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err
    _assert_killed_store(uri)


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    out = []
    for summary in optuna.get_all_study_summaries(storage):
        out += optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)
    return out


@pytest.mark.parametrize("stage", ["trial:0", "trial:1"])
def test_sigterm_during_tune(tmp_path: Path, stage: str) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    cfg = write_config(tmp_path)
    args = ["tune", str(cfg), "--model", "als", "--storage", storage, "--no-log-model"]
    proc = recsys(args, tmp_path, env(uri, RECSYS_FAULT_AT=stage))
    assert proc.returncode == 143, proc.stderr[-3000:]
    one_clean_line(proc)
    _assert_killed_store(uri)
    states = [t.state for t in _trials(storage)]
    assert optuna.trial.TrialState.RUNNING not in states, states
    assert states[-1] == optuna.trial.TrialState.FAIL  # the trial running at the signal, failed at once
    _assert_clean_rerun(cfg, tmp_path, env(uri), uri, args)
    assert optuna.trial.TrialState.RUNNING not in [t.state for t in _trials(storage)]


def test_sigkill_after_optuna_recorded_the_trial_closes_its_run_as_recorded(tmp_path: Path) -> None:
    """Killed in the window between Optuna recording trial 0 COMPLETE and the worker closing its MLflow run: the rerun
    closes that run FINISHED with state COMPLETE (its trial counts), not FAILED, and the study finishes."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    cfg = write_config(tmp_path)
    args = ["tune", str(cfg), "--model", "als", "--storage", storage, "--no-log-model"]
    proc = recsys(args, tmp_path, env(uri, RECSYS_FAULT_AT="recorded:0", RECSYS_FAULT_SIGNAL="KILL"))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    trial_run = [r for r in runs(uri) if r.data.tags.get("role") == "trial"]
    assert [(r.data.tags["optuna.trial_number"], r.info.status) for r in trial_run] == [("0", "RUNNING")]
    assert [t.state for t in _trials(storage)] == [optuna.trial.TrialState.COMPLETE]  # the precondition: the window

    again = recsys(args, tmp_path, env(uri))
    assert again.returncode == 0, again.stderr[-3000:]
    trials = {t.number: t for t in _trials(storage)}
    closed = {int(r.data.tags["optuna.trial_number"]): r for r in runs(uri) if r.data.tags.get("role") == "trial"}
    assert sorted(closed) == sorted(trials)
    first = closed[0]
    assert (first.info.status, first.data.tags["state"]) == ("FINISHED", "COMPLETE")
    assert first.info.end_time
    assert first.data.metrics["val_ndcg_at_10"] == pytest.approx(trials[0].value)  # its value was already logged
    for number, run in closed.items():
        assert run.data.tags["state"] == trials[number].state.name
        assert run.info.status == ("FAILED" if trials[number].state == optuna.trial.TrialState.FAIL else "FINISHED")
    statuses = [r.info.status for r in sorted(runs(uri), key=lambda r: r.info.start_time)
                if r.data.tags.get("role") == "tuning"]
    assert statuses == ["FAILED", "FINISHED"]  # the killed worker's tuning run closed as FAILED by the rerun


def test_sigkill_during_run_leaves_runs_the_next_run_closes_as_failed(tmp_path: Path) -> None:
    """SIGKILL gives no chance to clean up: the experiment and model runs stay RUNNING until the next experiment
    in the store finds their process gone and closes them FAILED, saying why; its own runs finish."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path)
    proc = recsys(["run", str(cfg)], tmp_path, env(uri, RECSYS_FAULT_AT="model:popularity", RECSYS_FAULT_SIGNAL="KILL"))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    before = {r.info.run_id: r for r in runs(uri)}
    left = {i: r for i, r in before.items() if r.info.status == "RUNNING"}
    # the precondition: the experiment run and the model run that was being fitted are left RUNNING
    assert sorted(r.data.tags.get("label", r.data.tags.get("role")) for r in left.values()) == [
        "experiment", "popularity"]

    again = recsys(["run", str(cfg)], tmp_path, env(uri))
    assert again.returncode == 0, again.stderr[-3000:]
    after = {r.info.run_id: r for r in runs(uri)}
    for run_id in left:
        run = after[run_id]
        assert run.info.status == "FAILED" and run.info.end_time, (run.info.run_name, run.info.status)
        assert "ended without closing the run" in run.data.tags["recsys.closed_because"]
    assert all(after[i].info.status == r.info.status for i, r in before.items() if i not in left)  # untouched
    new = [r for i, r in after.items() if i not in before]
    assert new and all(r.info.status == "FINISHED" for r in new)
    assert "left RUNNING by a process that died" in again.stderr


@pytest.mark.parametrize("stage", ["model:popularity", "register"])
def test_sigterm_to_mlflow_run_reaches_the_child(tmp_path: Path, stage: str) -> None:
    """`mlflow run` is killed; its child gets SIGTERM too (exec + PR_SET_PDEATHSIG) and registers nothing."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path)
    environ = env(uri, RECSYS_FAULT_AT=stage, RECSYS_FAULT_TARGET="parent")
    mlflow = [sys.executable, "-m", "mlflow", "run", str(ROOT), "--env-manager", "local", "--experiment-name",
              "faults", "-P", f"config={cfg}"]
    proc = subprocess.run(mlflow, check=False, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=400)
    assert proc.returncode in (143, -signal.SIGTERM), proc.stderr[-3000:]  # killed by SIGTERM
    wait_until(lambda: not _children_of(cfg), "the orphaned child to exit", seconds=120)
    _assert_killed_store(uri)
    parent = [r for r in runs(uri) if r.data.tags.get("role") == "experiment"]
    assert parent and parent[0].info.status == "KILLED"
    _assert_clean_rerun(cfg, tmp_path, env(uri), uri, ["run", str(cfg)])


def _children_of(cfg: Path) -> list[int]:
    """Live processes whose command line names this test's config (the `mlflow run` child)."""
    live = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(cfg) in cmd and "experiments/run.py" in cmd and state != "Z":
            live.append(int(proc.name))
    return live
