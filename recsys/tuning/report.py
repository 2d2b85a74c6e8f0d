"""After a study: pick the trial (best, or Pareto + explicit rule), summarise, and draw the plots as PNG."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from recsys.errors import RecsysError
from recsys.logging import get_logger
from recsys.tuning.space import SelectRule

_log = get_logger(__name__)


def select_trial(study: optuna.Study, metrics: list[str], directions: Sequence[str],
                 rule: SelectRule | None) -> FrozenTrial:
    """The single best trial, or the Pareto trial chosen by `rule` (multi-objective)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise RecsysError(f"study {study.study_name!r} has no COMPLETE trial to pick from; run more trials "
                          "(--n-trials) or check the FAILED trial runs for the error")
    if len(metrics) == 1:
        return study.best_trial
    front = study.best_trials
    if rule is None:
        raise RecsysError(f"multi-objective study {study.study_name!r} needs a `select` rule to pick a trial")
    sign = {m: 1.0 if d == "maximize" else -1.0 for m, d in zip(metrics, directions)}

    def value(t: FrozenTrial, m: str) -> float:
        return t.values[metrics.index(m)]

    kept = [t for t in front if all((c.min is None or value(t, m) >= c.min) and (c.max is None or value(t, m) <= c.max)
                                    for m, c in rule.constraints.items())]
    if not kept:
        _log.warning("no Pareto trial meets select.constraints %s; choosing among the whole front",
                     {m: c.model_dump(exclude_none=True) for m, c in rule.constraints.items()})
        kept = front
    if rule.metric is not None:
        key = lambda t: sign[rule.metric] * value(t, rule.metric)  # noqa: E731
    else:
        key = lambda t: sum(w * sign[m] * value(t, m) for m, w in (rule.weights or {}).items())  # noqa: E731
    return max(sorted(kept, key=lambda t: t.number), key=key)  # ties: lowest trial number


def pareto_table(study: optuna.Study, metrics: list[str], chosen: int) -> pd.DataFrame:
    rows = [{"trial": t.number, **dict(zip(metrics, t.values)), **{f"param_{k}": v for k, v in t.params.items()},
             "selected": t.number == chosen} for t in study.best_trials]
    return pd.DataFrame(rows).sort_values("trial").reset_index(drop=True)


def counts(study: optuna.Study) -> dict[str, int]:
    out = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] += 1
    return out


def summary(study: optuna.Study, storage: str, metrics: list[str], directions: Sequence[str], n_trials: int,
            best: FrozenTrial, baseline: dict[str, float], rule: SelectRule | None) -> dict[str, Any]:
    return {
        "study_name": study.study_name, "storage": storage, "metrics": metrics, "directions": directions,
        "n_trials_target": n_trials, "trials_by_state": counts(study),
        "best_trial": best.number, "best_params": best.params, "best_values": dict(zip(metrics, best.values)),
        "baseline_values": baseline, "select": rule.model_dump(exclude_none=True) if rule else None,
        "pareto_trials": [t.number for t in study.best_trials] if len(metrics) > 1 else None,
    }


def write_artifacts(study: optuna.Study, info: dict[str, Any], metrics: list[str], out: Path) -> dict[str, Path]:
    """study_summary.json, trials.csv, pareto.csv/md and PNG plots under `out`; returns artifact path -> file."""
    files: dict[str, Path] = {}
    out.mkdir(parents=True, exist_ok=True)
    (out / "study_summary.json").write_text(json.dumps(info, indent=2, default=str))
    files["study_summary.json"] = out / "study_summary.json"
    study.trials_dataframe().to_csv(out / "trials.csv", index=False)
    files["trials.csv"] = out / "trials.csv"
    if len(metrics) > 1:
        table = pareto_table(study, metrics, info["best_trial"])
        table.to_csv(out / "pareto.csv", index=False)
        (out / "pareto.md").write_text(table.to_markdown(index=False) if _has_tabulate() else table.to_string())
        files["pareto.csv"], files["pareto.md"] = out / "pareto.csv", out / "pareto.md"
    for name, draw in _plots(study, metrics).items():
        path = out / "plots" / f"{name}.png"
        if _save_plot(draw, path):
            files[f"plots/{name}.png"] = path
    return files


def _plots(study: optuna.Study, metrics: list[str]) -> dict[str, Any]:
    from optuna.visualization import matplotlib as vis

    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    plots: dict[str, Any] = {}
    targets = [(None, metrics[0])] if len(metrics) == 1 else [
        (lambda t, i=i: t.values[i], m) for i, m in enumerate(metrics)]
    for target, name in targets:
        suffix = "" if target is None else f"_{name}"
        plots[f"optimization_history{suffix}"] = lambda t=target, n=name: vis.plot_optimization_history(
            study, target=t, target_name=n)
        plots[f"slice{suffix}"] = lambda t=target, n=name: vis.plot_slice(study, target=t, target_name=n)
        if n_complete >= 2 and len(study.best_trials[0].params if study.best_trials else {}) >= 1:
            plots[f"param_importances{suffix}"] = lambda t=target, n=name: vis.plot_param_importances(
                study, target=t, target_name=n)
    if len(metrics) == 1 and any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots["intermediate_values"] = lambda: vis.plot_intermediate_values(study)
    if len(metrics) in (2, 3):
        plots["pareto_front"] = lambda: vis.plot_pareto_front(study, target_names=metrics)
    return plots


def _save_plot(draw: Any, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna's ExperimentalWarning for the matplotlib backend
            ax = draw()
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        fig.set_size_inches(max(fig.get_size_inches()[0], 8), max(fig.get_size_inches()[1], 5))
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tight_layout and colorbar axes
            fig.tight_layout()
            fig.savefig(path, dpi=100)
        plt.close(fig)
        return True
    except Exception as exc:  # a plot is nice to have; never fail a study on it
        _log.warning("could not draw %s: %s", path.name, exc)
        plt.close("all")
        return False


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
