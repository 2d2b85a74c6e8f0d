"""Everything knowable before a model is fitted, checked in one place (`recsys run`, `recsys tune`, MLproject).

`check_config` runs before any run is started or data loaded: the metric names the config refers to, the
registered-model name, the promotion policy when `experiment.auto_promote` is on. `check_context` runs once the
data is prepared and before the first fit: enough users and items to evaluate, K within the catalogue.
Each failure is one `ConfigError` / `DataError` naming the key, the value and the fix.
"""

from __future__ import annotations

import difflib
from typing import Any

from recsys.config.schema import ExperimentConfig
from recsys.errors import ConfigError, DataError


def check_config(cfg: ExperimentConfig, task: Any) -> None:
    """Metric names, registry name and policy; raises before anything is fitted or logged."""
    known = set(task.metric_names(cfg))
    refs: list[tuple[str, str]] = [("metrics.primary", cfg.metrics.primary)]
    if cfg.selection.metric:
        refs.append(("selection.metric", cfg.selection.metric))
    refs += [(f"evaluation.tests.metrics.{i}", m) for i, m in enumerate(cfg.evaluation.tests.metrics)]
    for i, entry in enumerate(cfg.models):
        metrics = [entry.metric] if isinstance(entry.metric, str) else list(entry.metric or [])
        refs += [(f"models.{i}.metric", m) for m in metrics]
    if cfg.registry.enabled and cfg.experiment.auto_promote:
        from recsys.config.policy import load_policy

        policy = load_policy(cfg.registry.policy)  # a missing or invalid policy file: before any fit
        if policy.primary_metric:
            refs.append((f"{cfg.registry.policy}: primary_metric", policy.primary_metric))
        refs += [(f"{cfg.registry.policy}: guardrails.{i}.metric", g.metric) for i, g in enumerate(policy.guardrails)]
    for key, name in refs:
        _known_metric(key, name, known, cfg.task)
    if cfg.registry.enabled:
        check_model_name(cfg.registered_model_name)


def _known_metric(key: str, name: str, known: set[str], task: str) -> None:
    if name in known:
        return
    hint = difflib.get_close_matches(name, sorted(known), n=1)
    raise ConfigError(f"`{key}` is {name!r}, which task {task!r} does not compute"
                      + (f"; did you mean {hint[0]!r}?" if hint else "")
                      + f" (computed: {', '.join(sorted(known))})")


def check_model_name(name: str) -> None:
    """MLflow's rules for registered-model names, checked before fitting (registry.model_name)."""
    bad = [c for c in ("/", ":", "\\", "\n", "\t") if c in name]
    if not name.strip() or bad or name.strip() in (".", "..") or name != name.strip():
        raise ConfigError(f"registry.model_name {name!r} is not a valid registered-model name (no '/', ':', '\\', "
                          "control characters or surrounding spaces); e.g. recsys-quickstart")


def check_context(ctx: Any) -> None:
    """After the data is prepared, before the first fit: a dataset one can learn from and evaluate on."""
    cfg = ctx.cfg
    state = getattr(ctx, "state", None) or {}
    data, target = state.get("data"), state.get("target")
    if data is None or not hasattr(data, "matrix"):
        return
    n_users, n_items = data.matrix.shape
    if n_users < 2:
        raise DataError(f"the training data has {n_users} user(s); collaborative models need at least 2 users "
                        "with interactions (check the data, its filters and the split)")
    if n_items < 2:
        raise DataError(f"the training data has {n_items} item(s); a ranking needs at least 2 items "
                        "(check the data, its filters and the split)")
    # recommend-style targets list their evaluated users; the audience target (products) has no user_ids
    if target is not None and hasattr(target, "user_ids") and len(target.user_ids) == 0:
        raise DataError("no test user can be evaluated (none of them has a relevant test item known to training); "
                        "use more data, another split.method or split.unknown_users: keep")
    if cfg.task == "recommend" and max(cfg.metrics.k) > n_items:
        raise ConfigError(f"metrics.k={max(cfg.metrics.k)} is larger than the catalogue ({n_items} items in "
                          f"training): every list would hold the whole catalogue; use metrics.k values <= {n_items}")
