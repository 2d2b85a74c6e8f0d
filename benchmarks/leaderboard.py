"""The leaderboard: every recommender of configs/zoo.yaml, tuned with the same Optuna budget, on three datasets.

For each dataset (the synthetic quickstart marketplace, ml-100k, ml-latest-small) the experiment of configs/zoo.yaml
runs once through `recsys.experiment.run_experiment`: every entry with a shipped `search` space is tuned with Optuna
on a validation part carved from the training part only (the same `--trials` COMPLETE + PRUNED trials for every
model, a fresh SQLite study per run), refitted with the chosen parameters and scored on the test part once.
Entries without a search space (random, popularity: nothing to tune) run with their defaults.

Protocol configs (configs/protocol-*.yaml) reproduce a published result's protocol; their rows are run without
tuning (the published parameters) and printed beside the published number (PUBLISHED below, copied from the cited
source with its commit).

    python benchmarks/leaderboard.py                          # all; writes results/leaderboard.json, docs/benchmarks.md
    python benchmarks/leaderboard.py --datasets ml-100k --models ease,bpr --trials 4 --no-protocols
    python benchmarks/leaderboard.py --render                 # re-render docs/benchmarks.md from the JSON only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from recsys.experiment import experiment_config_from_dict, run_experiment
from recsys.tuning import tune_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
K = 10
ZOO = ROOT / "configs" / "zoo.yaml"
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
DATASETS = ("synthetic", "ml-100k", "ml-latest-small")
METRICS = ("ndcg_at_10", "recall_at_10", "precision_at_10", "map_at_10", "catalog_coverage_at_10")

# Published numbers, copied from the source named in `source` (never typed from memory).
PUBLISHED: dict[str, dict[str, Any]] = {
    "cornac-bpr": {
        "config": "configs/protocol-cornac-bpr.yaml",
        "source": "Cornac README, 'Getting started: your first Cornac experiment' (PreferredAI/cornac, README.md at "
                  "commit 018d18195a5f2f20b64f32308ca46c7a31b48c2f)",
        "url": "https://github.com/PreferredAI/cornac#getting-started-your-first-cornac-experiment",
        "protocol": "ml-100k, RatioSplit(test_size=0.2, rating_threshold=4.0, seed=123) (a random 80/20 split of "
                    "all ratings; test items rated >= 4 are relevant), BPR(k=10, max_iter=200, learning_rate=0.001, "
                    "lambda_reg=0.01, seed=123), user-based NDCG@10 / Recall@10 / Precision@10",
        "model": "bpr",
        "metrics": {"ndcg_at_10": 0.0975, "recall_at_10": 0.0891, "precision_at_10": 0.0727},
    },
    "msrec-bpr": {
        "config": "configs/protocol-msrec-ml100k.yaml",
        "source": "Microsoft Recommenders README, 'Algorithm Comparison' table, Movielens 100k "
                  "(recommenders-team/recommenders, README.md at commit 005dcd06bd32ab996c7e4c9892ebbfcab80adb1a); "
                  "parameters from examples/06_benchmarks/movielens.ipynb "
                  "(commit 6b017020ceff730e628790ec7a4deb81146e4316)",
        "url": "https://github.com/recommenders-team/recommenders#algorithm-comparison",
        "protocol": "ml-100k, python_stratified_split(ratio=0.75, min_rating=1, filter_by='item', seed 42): a 75/25 "
                    "random split of every item's ratings; every test rating is relevant; Cornac BPR(k=200, "
                    "max_iter=15, learning_rate=0.075, lambda_reg=1e-3); seen items removed; k=10",
        "model": "bpr",
        "metrics": {"ndcg_at_10": 0.441997, "precision_at_10": 0.388229, "recall_at_10": 0.212522,
                    "map_at_10": 0.132478},
    },
    "msrec-sar": {
        "config": "configs/protocol-msrec-ml100k.yaml",
        "source": "Microsoft Recommenders README, 'Algorithm Comparison' table, Movielens 100k (commit "
                  "005dcd06bd32ab996c7e4c9892ebbfcab80adb1a)",
        "url": "https://github.com/recommenders-team/recommenders#algorithm-comparison",
        "protocol": "as msrec-bpr; SAR (jaccard item similarity, time decay 30 days) has no counterpart here, so the "
                    "closest neighbourhood models (item_knn, rp3beta, ease) are shown beside it",
        "model": None,
        "metrics": {"ndcg_at_10": 0.382461, "precision_at_10": 0.330753, "recall_at_10": 0.176385,
                    "map_at_10": 0.110591},
    },
}


def dataset_config(name: str) -> dict[str, Any]:
    """configs/zoo.yaml with the data (and, for synthetic, the split) of the named dataset."""
    raw = yaml.safe_load(ZOO.read_text())
    if name == "synthetic":
        quick = yaml.safe_load(QUICKSTART.read_text())
        raw["data"] = quick["data"]
        raw["split"] = {**quick["split"], "validation_size": raw["split"].get("validation_size", 0.2)}
    elif name in ("ml-100k", "ml-latest-small"):
        raw["data"]["movielens"]["name"] = name
    else:
        raise SystemExit(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    raw["name"] = f"leaderboard-{name}"
    raw["registry"] = {**raw.get("registry", {}), "enabled": False}
    return raw


class RecordingTuner:
    """The `run_experiment` tuner hook: tune_model with one trial budget for all, keeping each study's outcome."""

    def __init__(self, storage: str, n_trials: int) -> None:
        self.storage, self.n_trials = storage, n_trials
        self.outcomes: dict[str, dict[str, Any]] = {}

    def __call__(self, task, ctx, entry, tracker, model_run_id):
        t0 = time.perf_counter()
        res = tune_model(task, ctx, entry, tracker, model_run_id, storage=self.storage, n_trials=self.n_trials)
        self.outcomes[entry.run_name] = {
            "seconds": time.perf_counter() - t0, "study": res.study_name,
            "trial_seconds": trial_seconds(self.storage, res.study_name),
            "trials": res.trials_by_state, "best_trial": res.best_trial,
            "best_params": res.best_params, "validation": res.best_values, "validation_defaults": res.baseline_values,
            "selected": res.selected}
        return res.entry


def trial_seconds(storage: str, study: str) -> float:
    """Wall seconds of the study's finished trials, summed (the same whether the study ran in one go or resumed)."""
    import optuna

    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    return float(sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                     if t.datetime_complete is not None and t.datetime_start is not None))


def annotate(block: dict[str, Any], storage: str) -> None:
    """Fill `study` / `trial_seconds` of a dataset block's tuned rows from the storage its studies live in."""
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    by_label: dict[str, tuple[int, str]] = {}
    for summary in optuna.get_all_study_summaries(storage):
        label = summary.study_name.split(".")[1]
        n = len(optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(states=done))
        if n > by_label.get(label, (-1, ""))[0]:
            by_label[label] = (n, summary.study_name)
    for row in block["rows"]:
        t = row.get("tuning")
        if t and row["model"] in by_label:
            t["study"] = by_label[row["model"]][1]
            t["trial_seconds"] = trial_seconds(storage, t["study"])


def run_one(raw: dict[str, Any], models: list[str] | None, n_trials: int, tune: bool,
            storage: str | None = None) -> dict[str, Any]:
    raw = dict(raw)
    if models:
        raw["models"] = [m for m in raw["models"] if m["name"] in models or m.get("label") in models]
    cfg = experiment_config_from_dict(raw)
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="recsys-leaderboard-") as tmp:
        tuner = RecordingTuner(storage or f"sqlite:///{tmp}/optuna.db", n_trials) if tune else None
        tune_models = {e.run_name for e in cfg.models if e.search} if tune else None
        t0 = time.perf_counter()
        result = run_experiment(cfg, tuner=tuner, tune_models=tune_models, workdir=Path(tmp) / "work")
        wall = time.perf_counter() - t0
    ctx = result.context
    rows = []
    for r in result.results:
        label = r.entry.run_name
        m = r.metrics
        row = {"model": label, "name": r.entry.name, "params": r.entry.params,
               "fit_seconds": r.seconds.get("fit_seconds"), "evaluate_seconds": r.seconds.get("evaluate_seconds"),
               "tuned": bool(tuner and label in tuner.outcomes), "tuning": tuner.outcomes.get(label) if tuner else None,
               "tied_with_best": result.decision.is_tied(label) if result.decision else None}
        for k in METRICS:
            if k in m:
                row[k] = m[k]
            if f"{k}_ci_low" in m:
                row[f"{k}_ci95"] = [m[f"{k}_ci_low"], m[f"{k}_ci_high"]]
        rows.append(row)
    rows.sort(key=lambda x: -(x.get("ndcg_at_10") or 0.0))
    return {"experiment_seconds": wall, "selected": result.best.entry.run_name, "split": cfg.split.model_dump(),
            "split_fingerprint": getattr(ctx, "split_fingerprint", None), "load_before": load_before,
            "load_after": _load(), "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}


def run_zoo(cold: bool) -> dict[str, Any]:
    """`recsys run configs/zoo.yaml` as a user runs it (MLflow tracking into a fresh SQLite store), timed.

    cold: a fresh, empty embedding cache (the content model encodes every item text, as on a first run).
    """
    import resource
    import subprocess

    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory(prefix="recsys-zoo-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        if cold:
            env["RECSYS_CACHE_DIR"] = str(Path(tmp) / "embeddings")
        cmd = [sys.executable, "-m", "recsys.cli", "--tracking-uri", uri, "run", str(ZOO)]
        load_before, before = _load(), resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"recsys run configs/zoo.yaml failed ({proc.returncode}): {proc.stderr[-2000:]}")
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name(yaml.safe_load(ZOO.read_text())["name"])
        runs = client.search_runs([exp.experiment_id], "tags.role = 'model'", max_results=100)
        rows = []
        for r in runs:
            m = r.data.metrics
            rows.append({"model": r.info.run_name, "ndcg_at_10": m.get("ndcg_at_10"),
                         "ndcg_at_10_ci95": [m.get("ndcg_at_10_ci_low"), m.get("ndcg_at_10_ci_high")],
                         "recall_at_10": m.get("recall_at_10"), "fit_seconds": m.get("fit_seconds")})
    rows.sort(key=lambda x: -(x["ndcg_at_10"] or 0.0))
    pop = next(r["ndcg_at_10"] for r in rows if r["model"] == "popularity")
    for r in rows:
        r["beats_popularity"] = bool(r["ndcg_at_10"] > pop)
    return {"command": "recsys run configs/zoo.yaml", "embedding_cache": "cold" if cold else "warm",
            "wall_seconds": wall,
            "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "load_before": load_before, "load_after": _load(),
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models": len(rows), "rows": rows}


def run_protocol(path: Path) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text())
    out = run_one(raw, None, 0, tune=False)
    out["config"] = str(path.relative_to(ROOT))
    return out


# markdown -----------------------------------------------------------------------------------------------------
def _f(v: Any, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _ci(row: dict, key: str) -> str:
    ci = row.get(f"{key}_ci95")
    return _f(row.get(key)) + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def _secs(v: Any) -> str:
    return "—" if v is None else (f"{v:.2f}" if v < 10 else f"{v:.0f}")


def _trials(t: dict | None) -> str:
    if not t:
        return "defaults (no search space)"
    s = t["trials"]
    kept = "" if t["selected"] == "best_trial" else "; defaults kept"
    return f"{s.get('COMPLETE', 0)} done, {s.get('PRUNED', 0)} pruned{kept}"


def _zoo_lines(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for z in data.get("zoo", {}).values():
        lines += [f"## The zoo in one experiment ({z['embedding_cache']} embedding cache)", "",
                  f"`{z['command']}` (all {z['models']} recommenders on ml-latest-small, untuned, MLflow tracking "
                  f"into a fresh SQLite store): **{z['wall_seconds'] / 60:.1f} min wall**, {z['cpu_seconds']:.0f} s "
                  f"CPU (user + system), finished {z['finished']}, load average {z['load_before']} before, "
                  f"{z['load_after']} after.", "",
                  "| model | NDCG@10 [95% CI] | Recall@10 | fit s | beats popularity |", "|---|---|---|---|---|"]
        for r in z["rows"]:
            lines.append(f"| {r['model']} | {_ci(r, 'ndcg_at_10')} | {_f(r.get('recall_at_10'))} | "
                         f"{_secs(r.get('fit_seconds'))} | {'yes' if r['beats_popularity'] else 'no'} |")
        lines.append("")
    return lines


def render(data: dict[str, Any]) -> str:
    meta = data["meta"]
    lines = [
        "# Benchmarks: the leaderboard and published protocols",
        "",
        "Generated by `python benchmarks/leaderboard.py` from `benchmarks/results/leaderboard.json` — do not edit by "
        "hand; re-run the script (or `--render` to re-draw this page from the JSON).",
        "",
        f"Measured on {meta['machine']} with {meta['cpus']} cores shared with other engineers' jobs (the load "
        "average before and after each run is given with it: times are pessimistic and vary with the load), "
        f"Python {meta['python']}, git {meta['git']}.",
        "",
    ]
    lines += _zoo_lines(data)
    lines += [
        "## Leaderboard",
        "",
        f"Every recommender of `configs/zoo.yaml` with its shipped search space, tuned with Optuna: **{meta['trials']} "
        "trials per model** (COMPLETE + PRUNED, the same budget for all; TPE sampler seeded from the experiment seed; "
        "the median pruner stops trials of models that report per-epoch validation scores; the trials column "
        "counts them) on a validation part carved from the training "
        "part only; the test part is read once, by the final evaluation of the refitted model. If the best trial does "
        "not beat the entry's default parameters on validation, the defaults are refitted (\"defaults kept\"). "
        "`random` and `popularity` have nothing to tune. The budget is small on purpose so the whole board finishes "
        "on this loaded 2-core machine: read the tuned rows as what 8 trials buy, not as each model's ceiling.",
        "",
        f"NDCG@{K} with its 95% bootstrap CI over test users (the experiment's seeded resamples, the same for every "
        "model), Recall@10 with CI, catalog coverage@10 (share of items recommended to anyone), fit seconds of the "
        "final fit, and tuning seconds (the wall time of the study's trials, summed).",
        "",
    ]
    for ds, block in data["datasets"].items():
        split = block["split"]
        lines += [f"### {ds}", "",
                  f"Split `{split['method']}` test_size {split['test_size']}, validation_size "
                  f"{split['validation_size']}; experiment wall time of the last run (tuning included; a study "
                  "resumed from a kept storage counts only the trials run then: the tuning s column counts all) "
                  f"{block['experiment_seconds']:.0f} s, "
                  f"finished {block['finished']}, load average {block['load_before']} before, {block['load_after']} "
                  f"after; selected: **{block['selected']}** (highest NDCG@10).", "",
                  "| # | model | NDCG@10 [95% CI] | Recall@10 [95% CI] | coverage@10 | fit s | tuning s | trials |",
                  "|---|---|---|---|---|---|---|---|"]
        for i, row in enumerate(block["rows"], 1):
            t = row.get("tuning")
            name = f"**{row['model']}**" if row["model"] == block["selected"] else row["model"]
            lines.append(f"| {i} | {name} | {_ci(row, 'ndcg_at_10')} | {_ci(row, 'recall_at_10')} | "
                         f"{_f(row.get('catalog_coverage_at_10'), 3)} | {_secs(row.get('fit_seconds'))} | "
                         f"{_secs(t.get('trial_seconds') if t else None)} | {_trials(t)} |")
        lines += ["", "<details><summary>chosen parameters</summary>", ""]
        for row in block["rows"]:
            t = row.get("tuning")
            if t:
                best = ", ".join(f"{k}={_short(v)}" for k, v in t["best_params"].items())
                lines.append(f"- `{row['model']}`: {best} (validation NDCG@10 "
                             f"{_f(t['validation'].get('ndcg_at_10'))}, defaults "
                             f"{_f(t['validation_defaults'].get('ndcg_at_10'))}; {t['selected']})")
        lines += ["", "</details>", ""]
    if data.get("protocols"):
        lines += ["## Published protocols, reproduced", "",
                  "Each config below reproduces a published run's protocol as far as the platform can (its dataset, "
                  "split kind and sizes, K, parameters), runs untuned with the published parameters, and is scored "
                  "by our evaluator. Their number is copied from the cited source; where the protocols differ, the "
                  "difference is stated, and rows that are not the same algorithm are labelled as such.", ""]
        for key, pub in PUBLISHED.items():
            block = data["protocols"].get(pub["config"])
            if block is None:
                continue
            lines += [f"### {key}: {pub['source']}", "", f"<{pub['url']}>", "", f"Their protocol: {pub['protocol']}.",
                      "", f"Ours: `{pub['config']}` — {block.get('note', '')}", "",
                      "| model | | NDCG@10 [95% CI] | Δ NDCG@10 vs published | Recall@10 [95% CI] | Precision@10 | "
                      "MAP@10 |", "|---|---|---|---|---|---|---|"]
            p = pub["metrics"]
            lines.append(f"| {pub['model'] or 'SAR'} | **published** | {_f(p.get('ndcg_at_10'))} | | "
                         f"{_f(p.get('recall_at_10'))} | {_f(p.get('precision_at_10'))} | {_f(p.get('map_at_10'))} |")
            shown = [r for r in block["rows"] if (pub["model"] is None and r["name"] != "bpr")
                     or r["name"] == pub["model"] or r["name"] == "popularity"]
            for r in shown:
                tag = "ours" if r["name"] == pub["model"] else "ours (other model)"
                delta = r["ndcg_at_10"] - p["ndcg_at_10"]
                lines.append(f"| {r['model']} | {tag} | {_ci(r, 'ndcg_at_10')} | {delta:+.4f} | "
                             f"{_ci(r, 'recall_at_10')} | {_f(r.get('precision_at_10'))} | {_f(r.get('map_at_10'))} |")
            lines.append("")
        lines += ["MAP is not compared: ours divides each user's average precision by min(|relevant|, 10) "
                  "(docs/metrics.md), and libraries differ in this denominator (Microsoft Recommenders' MAP has "
                  "changed definition across versions). NDCG@10, Recall@10 and Precision@10 are the comparable "
                  "columns. The levels differ beyond the CIs in both directions (ours above Cornac's, our BPR below "
                  "Microsoft Recommenders' Cornac BPR, while our EASE is above it): the split rows differ (our "
                  "generator, not theirs) and so do the BPR implementations (implicit's here, Cornac's there); the "
                  "protocol differences each config states are the known ones, and no single cause was isolated.", ""]
    return "\n".join(lines) + "\n"


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _git() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--models", default="", help="comma-separated entry names (default: every zoo entry)")
    ap.add_argument("--trials", type=int, default=8, help="Optuna trials per tuned model (the same for all)")
    ap.add_argument("--no-protocols", action="store_true", help="skip the configs/protocol-*.yaml runs")
    ap.add_argument("--zoo", choices=["warm", "cold"], help="also time `recsys run configs/zoo.yaml` (warm: the "
                    "embedding cache as it is; cold: a fresh empty one)")
    ap.add_argument("--storage", help="Optuna storage URL (default: a fresh SQLite file per run); a kept one "
                    "resumes its studies, running only the missing trials")
    ap.add_argument("--render", action="store_true", help="only re-render the markdown from the JSON")
    ap.add_argument("--annotate", default="", help="with --render: DATASET=STORAGE_URL,... fills the trial seconds "
                    "of each tuned row from the Optuna storage the dataset's studies were run in")
    ap.add_argument("--merge", default="", help="with --render: comma-separated JSON files of other runs to merge in")
    ap.add_argument("--out", default=str(HERE / "results" / "leaderboard.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    os.environ.setdefault("RECSYS_DATA_HOME", os.environ.get("RECSYS_SHARED_DATA", str(ROOT.parent / "shared/data")))
    os.environ.setdefault("RECSYS_PROGRESS", "0")
    out = Path(args.out)
    if args.render:
        data = json.loads(out.read_text())
        for extra in [Path(p) for p in args.merge.split(",") if p]:  # runs made apart (e.g. in parallel)
            more = json.loads(extra.read_text())
            data["datasets"].update(more.get("datasets", {}))
            data.setdefault("zoo", {}).update(more.get("zoo", {}))
        for item in [a for a in args.annotate.split(",") if a]:
            ds, url = item.split("=", 1)
            annotate(data["datasets"][ds], url)
            data["protocols"].update(more.get("protocols", {}))
        _save(out, data)
        Path(args.doc).write_text(render(data))
        print(f"rendered {args.doc} from {out}")
        return 0
    data: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    data.setdefault("datasets", {})
    data.setdefault("protocols", {})
    if data.get("meta", {}).get("trials", args.trials) != args.trials and args.datasets:
        raise SystemExit(f"{out} holds a board tuned with {data['meta']['trials']} trials; use --trials "
                         f"{data['meta']['trials']} (the same budget for all) or another --out")
    data["meta"] = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                    "k": K, "trials": args.trials, "git": _git()}
    models = [m for m in args.models.split(",") if m] or None
    if args.zoo:
        print(f"== recsys run configs/zoo.yaml ({args.zoo} embedding cache)", flush=True)
        z = run_zoo(args.zoo == "cold")
        data.setdefault("zoo", {})[args.zoo] = z
        for r in z["rows"]:
            print(f"   {r['model']:12s} ndcg@10 {_ci(r, 'ndcg_at_10')}  fit {_secs(r['fit_seconds'])} s", flush=True)
        print(f"   wall {z['wall_seconds']:.0f} s, cpu {z['cpu_seconds']:.0f} s, load {z['load_before']} -> "
              f"{z['load_after']}", flush=True)
        _save(out, data)
    for ds in [d for d in args.datasets.split(",") if d]:
        print(f"== {ds}: tuning every zoo entry with {args.trials} trials", flush=True)
        block = run_one(dataset_config(ds), models, args.trials, tune=True, storage=args.storage)
        data["datasets"][ds] = block
        for r in block["rows"]:
            print(f"   {r['model']:12s} ndcg@10 {_ci(r, 'ndcg_at_10')}  recall@10 {_f(r.get('recall_at_10'))}  "
                  f"coverage {_f(r.get('catalog_coverage_at_10'), 3)}  fit {_secs(r.get('fit_seconds'))} s  "
                  f"{_trials(r.get('tuning'))}", flush=True)
        print(f"   experiment {block['experiment_seconds']:.0f} s", flush=True)
        _save(out, data)
    if not args.no_protocols:
        for path in sorted((ROOT / "configs").glob("protocol-*.yaml")):
            print(f"== protocol {path.name}", flush=True)
            block = run_protocol(path)
            block["note"] = (yaml.safe_load(path.read_text()).get("description") or "")
            data["protocols"][block["config"]] = block
            for r in block["rows"]:
                print(f"   {r['model']:12s} ndcg@10 {_ci(r, 'ndcg_at_10')}  recall@10 {_f(r.get('recall_at_10'))}  "
                      f"precision@10 {_f(r.get('precision_at_10'))}", flush=True)
            _save(out, data)
    _save(out, data)
    Path(args.doc).write_text(render(data))
    print(f"saved {out} and {args.doc}")
    return 0


def _save(out: Path, data: dict[str, Any]) -> None:
    """Written after every dataset, so a run that is stopped keeps what it measured."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
