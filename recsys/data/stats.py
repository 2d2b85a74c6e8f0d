"""`describe`: the numbers that say whether collaborative filtering is feasible at all."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.split import Split


def describe(interactions: pd.DataFrame, split: Split | None = None) -> dict:
    n_users = int(interactions["user_id"].nunique())
    n_items = int(interactions["item_id"].nunique())
    n = int(len(interactions))
    per_user = interactions.groupby("user_id").size()
    q = per_user.quantile([0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    stats = {
        "users": n_users,
        "items": n_items,
        "interactions": n,
        "density": n / max(1, n_users * n_items),
        "interactions_per_user": ({f"p{int(k * 100)}": float(v) for k, v in q.items()}
                                  | {"mean": float(per_user.mean())}),
        "one_time_user_share": float((per_user == 1).mean()),
        "events": {str(k): int(v) for k, v in interactions["event"].value_counts().items()},
        "period": {"start": pd.Timestamp(int(interactions["timestamp"].min()), unit="s").isoformat(),
                   "end": pd.Timestamp(int(interactions["timestamp"].max()), unit="s").isoformat()},
    }
    if split is not None:
        train_users = pd.Index(split.train["user_id"].unique())
        test_users = pd.Index(split.test["user_id"].unique())
        both = int(test_users.isin(train_users).sum())  # users in train and test (both sides are unique ids)
        test_items = pd.Index(split.test["item_id"].unique())
        unseen_items = ~test_items.isin(split.train["item_id"].unique())
        stats["split"] = {
            "method": split.method,
            "train_interactions": int(len(split.train)),
            "test_interactions": int(len(split.test)),
            # retention: share of training users who come back in the test period
            "retention_train_to_test": both / max(1, len(train_users)),
            "test_users_seen_in_train": both / max(1, len(test_users)),
            "test_items_unseen_in_train": float(np.mean(unseen_items)) if len(test_items) else 0.0,
            "audit": split.audit,
        }
    return stats


# thresholds of the feasibility verdict (shares in [0, 1]); each reason states the ones it was judged by
ONE_TIME_HIGH = 0.8  # above: most users have no history to learn from (not feasible); above half of it: caveat
RETENTION_LOW = 0.05  # below: few training users come back in the test period (caveat); below a fifth: not feasible
COLD_HIGH = 0.5  # above: most test users are unknown to training (not feasible); above half of it: caveat
THRESHOLDS = {
    "one_time_user_share": {"not_feasible_above": ONE_TIME_HIGH, "caveat_above": ONE_TIME_HIGH / 2},
    "retention_train_to_test": {"not_feasible_below": RETENTION_LOW / 5, "caveat_below": RETENTION_LOW},
    "cold_user_share": {"not_feasible_above": COLD_HIGH, "caveat_above": COLD_HIGH / 2},
    "cold_item_share": {"caveat_above": COLD_HIGH / 2},
}


def _pct(v: float) -> str:
    return f"{v * 100:.4g}%"


def feasibility(stats: dict) -> dict:
    """Is collaborative filtering feasible here? A verdict from one-time share, retention and cold share.

    `stats` is `describe` output. Returns {"verdict": "feasible" | "feasible with caveats" | "not feasible",
    "feasible": bool, "reasons": [sentences, problems first, each with its thresholds], "numbers": {name: value},
    "thresholds": THRESHOLDS}; missing statistics are skipped, never guessed. `recsys data describe` and
    report.html both show this one verdict.
    """
    split = stats.get("split") or {}
    numbers: dict[str, float] = {}
    if "one_time_user_share" in stats:
        numbers["one_time_user_share"] = float(stats["one_time_user_share"])
    if "retention_train_to_test" in split:
        numbers["retention_train_to_test"] = float(split["retention_train_to_test"])
    if "test_users_seen_in_train" in split:
        numbers["cold_user_share"] = 1.0 - float(split["test_users_seen_in_train"])
    if "test_items_unseen_in_train" in split:
        numbers["cold_item_share"] = float(split["test_items_unseen_in_train"])
    problems: list[str] = []
    caveats: list[str] = []
    fine: list[str] = []

    def judge(bad: bool, caveat: bool, text: str, why: str, rule: str) -> None:
        (problems if bad else caveats if caveat else fine).append(
            f"{text}{f' ({why})' if (bad or caveat) and why else ''} [{rule}]")

    ot = numbers.get("one_time_user_share")
    if ot is not None:
        judge(ot > ONE_TIME_HIGH, ot > ONE_TIME_HIGH / 2,
              f"one-time users: {_pct(ot)} of users have a single interaction",
              "many users have no history to learn from; an engagement or popularity baseline is the floor",
              f"not feasible above {_pct(ONE_TIME_HIGH)}, caveat above {_pct(ONE_TIME_HIGH / 2)}")
    ret = numbers.get("retention_train_to_test")
    if ret is not None:
        judge(ret < RETENTION_LOW / 5, ret < RETENTION_LOW,
              f"retention: {_pct(ret)} of training users come back in the test period",
              "the evaluated users are a small engaged minority",
              f"not feasible below {_pct(RETENTION_LOW / 5)}, caveat below {_pct(RETENTION_LOW)}")
    cold = numbers.get("cold_user_share")
    if cold is not None:
        judge(cold > COLD_HIGH, cold > COLD_HIGH / 2,
              f"cold users: {_pct(cold)} of test users are unknown to training", "served by the fallback only",
              f"not feasible above {_pct(COLD_HIGH)}, caveat above {_pct(COLD_HIGH / 2)}")
    cold_items = numbers.get("cold_item_share")
    if cold_items is not None:
        judge(False, cold_items > COLD_HIGH / 2,
              f"cold items: {_pct(cold_items)} of test items are new to training",
              "only content models can recommend them", f"caveat above {_pct(COLD_HIGH / 2)}")
    if problems:
        verdict = "not feasible"
    elif caveats:
        verdict = "feasible with caveats"
    else:
        verdict = "feasible"
    return {"verdict": verdict, "feasible": not problems, "reasons": problems + caveats + fine, "numbers": numbers,
            "thresholds": THRESHOLDS}


def describe_text(stats: dict, verdict: dict | None = None) -> str:
    """A readable summary of `describe` output with the feasibility verdict (4 significant digits)."""
    verdict = verdict or feasibility(stats)

    def g(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = [f"is collaborative filtering feasible here? {verdict['verdict'].upper()}"]
    lines += [f"  - {r}" for r in verdict["reasons"]]
    lines.append("")
    lines.append(f"users {g(stats.get('users'))}, items {g(stats.get('items'))}, interactions "
                 f"{g(stats.get('interactions'))}, density {g(stats.get('density'))}")
    ipu = stats.get("interactions_per_user") or {}
    if ipu:
        lines.append("interactions per user: " + ", ".join(f"{k} {g(v)}" for k, v in ipu.items()))
    period = stats.get("period") or {}
    if period:
        lines.append(f"period: {period.get('start')} .. {period.get('end')}")
    events = stats.get("events") or {}
    if events:
        lines.append("events: " + ", ".join(f"{k} {g(v)}" for k, v in events.items()))
    split = stats.get("split") or {}
    if split:
        lines.append(f"split {split.get('method')}: {g(split.get('train_interactions'))} train / "
                     f"{g(split.get('test_interactions'))} test interactions")
        for key in ("retention_train_to_test", "test_users_seen_in_train", "test_items_unseen_in_train"):
            if key in split:
                lines.append(f"  {key}: {g(split[key])}")
        audit = split.get("audit") or {}
        if "leak_share" in audit:
            lines.append(f"  leak_share: {g(audit['leak_share'])}")
    lines.append("")
    lines.append("(--json prints every number at full precision)")
    return "\n".join(lines)
