"""The quickstart end to end on the synthetic marketplace at growing sizes: seconds and peak RSS per stage.

Each size runs in its own process (so its peak RSS is its own): the quickstart model set (random, popularity,
item_knn, als) through `run_experiment` with a real MLflow tracker on a temporary SQLite store. Stages:

  generate, validate, split, build (TrainData + evaluation target)   timed around the library functions
                                                                      (validate: load_dataset less generate)
  fit <model>, evaluate <model>                                       the run's own fit_seconds / evaluate_seconds
  mlflow logging                                                      time inside the tracker's methods
  other                                                               the rest of the wall time (plots, selection)

`detail_seconds` splits "mlflow logging" by tracker method (and run open / close) and names four parts of
"other": the per-model plots, the decision report (comparison chart, report.html), the confidence intervals and
the paired tests with the decision.

Peak RSS is read after every stage (ru_maxrss: the peak so far); the data path's own memory is its peak (after
generate, validate, split, build) less the RSS before it, against the canonical interaction table's size (issue 14:
at most 3x). The 1-minute load average is recorded before and after each size (the machine is shared). `--max-users
20M=50000` evaluates a seeded sample of that many users at that size (`metrics.max_users`; marked in the table).
With two or more sizes, the growth exponent of
each stage is the least-squares slope of log(seconds) against log(interactions) and against log(users x items).
Each size also times our ALS evaluation against implicit's `recommend` + our metrics on the same fitted model
and users (benchmarks/ranking.py), in the same process, best of 3 each, alternating, and the evaluate stage
(ranking, metrics, slices) of random, popularity and ALS again, best of 3 each: ALS over random and over
popularity (issue 14: at least 5x).

    python benchmarks/scale.py                       # 0.4M, 2M, 6M, 20M (the 20M size alone takes minutes)
    python benchmarks/scale.py --sizes 0.4M 2M       # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# (users, items, mean interactions of a returning user); actual interaction counts are measured, not assumed
SIZES = {"quickstart": (3_000, 1_000, 25), "0.4M": (20_000, 4_000, 25), "2M": (50_000, 10_000, 50),
         "6M": (90_000, 18_000, 80), "20M": (138_000, 27_000, 180)}
MODELS = [{"name": "random"}, {"name": "popularity"},
          {"name": "item_knn", "params": {"k_neighbors": 100, "similarity": "cosine"}},
          {"name": "als", "params": {"factors": 64, "regularization": 0.01, "iterations": 15, "random_state": 42}}]
TRACKER_METHODS = ("log_context", "log_model_result", "log_selected_model", "log_comparison", "log_decision",
                   "register_best")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    """Resident set size now (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Stages:
    """Seconds and peak RSS per named stage, accumulated."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.rss: dict[str, float] = {}
        self.detail: dict[str, float] = {}  # "mlflow logging" by tracker method; "other" parts (plots, intervals)

    def add(self, name: str | None, seconds: float, detail: str | None = None) -> None:
        """Add to stage `name` (None: to no stage) and to the part `detail`."""
        if name is not None:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.rss[name] = peak_rss_mb()
        if detail:
            self.detail[detail] = self.detail.get(detail, 0.0) + seconds

    def wrap(self, owner, attr: str, name: str | None, detail: str | None = None) -> None:
        """Time `owner.attr` as stage `name` (None: only as `detail`, a part of "other")."""
        fn = getattr(owner, attr)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0, detail)

        setattr(owner, attr, timed)


def timed_tracker(uri: str, stages: Stages):
    """A real MlflowTracker whose own work (not the model work inside its run contexts) is timed."""
    from recsys.tracking import MlflowTracker

    tracker = MlflowTracker(uri)
    for attr in TRACKER_METHODS:
        stages.wrap(tracker, attr, "mlflow logging", f"logging: {attr}")
    stages.wrap(tracker, "render_decision", None, "other: decision report")  # matplotlib + HTML, no MLflow
    for attr in ("experiment_run", "model_run"):
        opener = getattr(tracker, attr)

        @contextlib.contextmanager
        def timed_run(*args, _open=opener, _attr=attr, **kwargs):
            t0 = time.perf_counter()
            cm = _open(*args, **kwargs)
            value = cm.__enter__()
            stages.add("mlflow logging", time.perf_counter() - t0, f"logging: {_attr} open")
            try:
                yield value
            except BaseException:
                if not cm.__exit__(*sys.exc_info()):
                    raise
            else:
                t1 = time.perf_counter()
                cm.__exit__(None, None, None)
                stages.add("mlflow logging", time.perf_counter() - t1, f"logging: {_attr} close")

        setattr(tracker, attr, timed_run)
    return tracker


def run_one(size: str, max_users: int | None = None, log_models: str = "all") -> dict:
    import recsys.tasks.recommend as task_module
    from recsys.config import config_from_dict
    from recsys.data import synthetic
    from recsys.data.tables import TrainData
    from recsys.experiment import run_experiment

    sys.path.insert(0, str(Path(__file__).parent))
    from ranking import implicit_evaluation
    from timing import best_of

    users, items, mean = SIZES[size]
    stages = Stages()
    stages.wrap(synthetic, "generate", "generate")
    # validate = load_dataset less generate: a wrapper around validate_interactions would hold the raw table (its
    # argument) through validation, which frees each raw column as it replaces it, and add the raw table to the
    # measured peak (it did until 2026-12-08: 3.39x the table at 20M, 2.5x without the wrapper)
    load = task_module.load_dataset

    def timed_load(*args, **kwargs):
        generated, t0 = stages.seconds.get("generate", 0.0), time.perf_counter()
        try:
            return load(*args, **kwargs)
        finally:
            stages.add("validate", time.perf_counter() - t0 - (stages.seconds.get("generate", 0.0) - generated))

    task_module.load_dataset = timed_load
    stages.wrap(task_module, "split_dataset", "split")
    build = TrainData.build.__func__
    TrainData.build = classmethod(lambda cls, *a, **kw: _timed(stages, "build", build, cls, *a, **kw))
    stages.wrap(task_module, "build_target", "build")
    import recsys.experiment as experiment_module

    for fn in ("plot_recommend_diagnostics", "plot_slices"):  # parts of "other", reported apart
        stages.wrap(task_module, fn, None, "other: per-model plots")
    stages.wrap(experiment_module, "metric_intervals", None, "other: confidence intervals")
    stages.wrap(experiment_module, "decide_models", None, "other: paired tests and decision")
    cfg = config_from_dict({
        "name": f"scale-{size}", "seed": 42,
        "data": {"source": "synthetic", "synthetic": {"n_users": users, "n_items": items, "one_time_share": 0.2,
                                                      "days": 180, "mean_interactions": mean}},
        "split": {"method": "temporal", "test_size": 0.2},
        "metrics": {"k": [10], "primary": "ndcg_at_10", "max_users": max_users},
        "models": MODELS, "registry": {"enabled": False}, "tracking": {"log_models": log_models}})
    with tempfile.TemporaryDirectory(prefix="recsys-scale-") as tmp:
        tracker = timed_tracker(f"sqlite:///{tmp}/mlflow.db", stages)
        rss_before = rss_mb()
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        res = run_experiment(cfg, tracker=tracker, workdir=Path(tmp) / "work")
        wall = time.perf_counter() - t0
    for r in res.results:
        stages.seconds[f"fit {r.entry.run_name}"] = r.seconds["fit_seconds"]
        stages.seconds[f"evaluate {r.entry.run_name}"] = r.seconds["evaluate_seconds"]
    stages.seconds["other"] = wall - sum(stages.seconds.values())
    data, target = res.context.state["data"], res.context.state["target"]
    table_mb = float(res.context.state["dataset"].interactions.memory_usage(deep=True).sum() / 2**20)
    data_peak = stages.rss.get("build", float("nan"))
    als = next(r.model for r in res.results if r.entry.name == "als")
    from recsys.evaluation.recommend import evaluate_recommender

    # best of 3 each, alternating (ours, implicit, ours, ...): single timings moved the ratio by 0.3 between two
    # 20M runs on one idle machine (1.12 and 1.24)
    peer_fn, ours_s, peer_s = implicit_evaluation(als, data, target), [], []
    for _ in range(3):
        ours_s.append(best_of(lambda: evaluate_recommender(als, data, target, [10], store_lists=False), 1)[0])
        peer_s.append(best_of(peer_fn, 1)[0])
    ours, peer = min(ours_s), min(peer_s)
    # the run's evaluate stage (the task's own `evaluate`) of random, popularity and ALS again, best of 3 each, in
    # this process: the single timings in the run are a tenth of a second at the small sizes, where machine noise
    # decides the ratio
    from recsys.tasks import get_task

    task = get_task("recommend")
    by_name = {r.entry.name: r for r in res.results}
    evaluate_best = {name: best_of(lambda r=by_name[name]: task.evaluate(res.context, r.entry, r.model), 3)[0]
                     for name in ("random", "popularity", "als")}
    return {"size": size, "users": int(data.n_users), "items": int(data.n_items),
            "interactions": len(res.context.state["dataset"].interactions),
            "train_interactions": int(data.matrix.nnz), "evaluated_users": len(target.user_ids),
            "wall_seconds": wall, "seconds": stages.seconds, "detail_seconds": stages.detail,
            "peak_rss_mb_after": stages.rss,
            "peak_rss_mb": peak_rss_mb(), "als_eval_over_implicit": ours / peer,
            "als_eval_seconds": ours, "implicit_recommend_plus_metrics_seconds": peer,
            "evaluate_best_of_3_seconds": evaluate_best,
            "als_evaluate_over_random": evaluate_best["als"] / evaluate_best["random"],
            "als_evaluate_over_popularity": evaluate_best["als"] / evaluate_best["popularity"],
            "logging_share": stages.seconds.get("mlflow logging", 0.0) / wall,
            "max_users": max_users, "log_models": log_models, "interaction_table_mb": table_mb,
            "rss_before_data_mb": rss_before,
            "data_path_peak_mb": data_peak, "data_path_memory_over_table": (data_peak - rss_before) / table_mb,
            "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]}


def _timed(stages: Stages, name: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        stages.add(name, time.perf_counter() - t0)


def exponents(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Least-squares slope of log seconds vs log interactions and vs log(users x items), per stage."""
    out: dict[str, dict[str, float]] = {}
    x_int = np.log([r["interactions"] for r in rows])
    x_ui = np.log([r["users"] * r["items"] for r in rows])
    for stage in rows[0]["seconds"]:
        y = np.array([max(r["seconds"].get(stage, 0.0), 1e-6) for r in rows])
        out[stage] = {"vs_interactions": float(np.polyfit(x_int, np.log(y), 1)[0]),
                      "vs_users_x_items": float(np.polyfit(x_ui, np.log(y), 1)[0])}
    return out


def parse_caps(items: list[str]) -> dict[str, int]:
    caps = {}
    for item in items:
        size, _, n = item.partition("=")
        if size not in SIZES or not n.isdigit() or int(n) <= 0:
            sys.exit(f"--max-users {item!r}: expected SIZE=N with SIZE one of {list(SIZES)} and N > 0, e.g. 20M=50000")
        caps[size] = int(n)
    return caps


def markdown_table(rows: list[dict], growth: dict[str, dict[str, float]]) -> str:
    """The per-stage table as README markdown (seconds; peak RSS, shares and ratios below)."""
    head = ["stage (s)"] + [f"{r['size']} ({r['interactions'] / 1e6:.2f}M)" for r in rows]
    if growth:
        head += ["growth vs interactions", "vs users x items"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for stage in rows[0]["seconds"]:
        cells = [stage] + [f"{r['seconds'].get(stage, float('nan')):.2f}" for r in rows]
        if growth:
            cells += [f"{growth[stage]['vs_interactions']:.2f}", f"{growth[stage]['vs_users_x_items']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    pad = [""] * (2 if growth else 0)
    extra = [("wall", lambda r: f"{r['wall_seconds']:.1f}"),
             ("peak RSS MiB", lambda r: f"{r['peak_rss_mb']:.0f}"),
             ("data path MiB / table MiB", lambda r: f"{r['data_path_peak_mb'] - r['rss_before_data_mb']:.0f} / "
                                                     f"{r['interaction_table_mb']:.0f} "
                                                     f"({r['data_path_memory_over_table']:.2f}x)"),
             ("mlflow logging share", lambda r: f"{100 * r['logging_share']:.1f}%"),
             ("ALS eval / implicit", lambda r: f"{r['als_eval_over_implicit']:.2f}"),
             ("ALS evaluate / random, / popularity (best of 3)",
              lambda r: f"{r['als_evaluate_over_random']:.1f}x / {r['als_evaluate_over_popularity']:.1f}x"
              if "als_evaluate_over_random" in r else "-"),
             ("users x items", lambda r: f"{r['users']} x {r['items']}"),
             ("evaluated users", lambda r: f"{r['evaluated_users']}" + (" (sample, metrics.max_users)"
                                                                         if r["max_users"] else "")),
             ("load (1 min) before / after", lambda r: f"{r['load_1min_before']:.1f} / {r['load_1min_after']:.1f}")]
    for name, cell in extra:
        lines.append("| " + " | ".join([name] + [cell(r) for r in rows] + pad) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["0.4M", "2M", "6M", "20M"], choices=list(SIZES))
    ap.add_argument("--max-users", nargs="*", default=[], metavar="SIZE=N",
                    help="metrics.max_users at a size: evaluate a seeded sample of N users there (e.g. 20M=50000)")
    ap.add_argument("--merge", metavar="JSON", help="also take the sizes saved in this earlier scale.json that are "
                    "not run now (each row keeps its own load average); the table and exponents cover all of them")
    ap.add_argument("--log-models", default="all", choices=["all", "selected", "none"],
                    help="tracking.log_models of the experiment (default all: a pyfunc model per model run)")
    ap.add_argument("--one", choices=list(SIZES), help=argparse.SUPPRESS)
    ap.add_argument("--one-max-users", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale.json"))
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.one_max_users, args.log_models)))
        return
    caps = parse_caps(args.max_users)
    rows = []
    env = {**os.environ, "RECSYS_PROGRESS": "0"}
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", size, "--log-models", args.log_models]
        cmd += ["--one-max-users", str(caps[size])] if size in caps else []
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            sys.exit(f"size {size} failed:\n{proc.stderr[-4000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"\n{size}: {r['users']} users x {r['items']} items, {r['interactions']} interactions, "
              f"wall {r['wall_seconds']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MiB, "
              f"mlflow logging {100 * r['logging_share']:.1f}% of wall, "
              f"ALS eval / implicit recommend+metrics {r['als_eval_over_implicit']:.2f}, "
              f"ALS evaluate / random {r['als_evaluate_over_random']:.1f}x, / popularity "
              f"{r['als_evaluate_over_popularity']:.1f}x (best of 3), "
              f"data path {r['data_path_peak_mb'] - r['rss_before_data_mb']:.0f} MiB over a "
              f"{r['interaction_table_mb']:.0f} MiB table ({r['data_path_memory_over_table']:.2f}x), "
              f"load {r['load_1min_before']:.1f} -> {r['load_1min_after']:.1f}"
              + (f", {r['evaluated_users']} users sampled (metrics.max_users)" if r["max_users"] else ""))
        print(f"  {'stage':<22}{'seconds':>9}{'peak RSS MiB':>14}")
        for stage, sec in r["seconds"].items():
            print(f"  {stage:<22}{sec:>9.2f}{r['peak_rss_mb_after'].get(stage, float('nan')):>14.0f}")
        for part, sec in sorted(r.get("detail_seconds", {}).items()):
            print(f"    {part:<40}{sec:>9.2f}")
    if args.merge:
        earlier = [r for r in json.loads(Path(args.merge).read_text())["sizes"] if r["size"] not in args.sizes]
        print(f"\nmerged from {args.merge}: {[r['size'] for r in earlier]}")
        rows = sorted(rows + earlier, key=lambda r: r["interactions"])
    growth = exponents(rows) if len(rows) >= 2 else {}
    if growth:
        print(f"\ngrowth exponent per stage ({' -> '.join(r['size'] for r in rows)})")
        for stage, g in growth.items():
            print(f"  {stage:<22} vs interactions {g['vs_interactions']:5.2f}   vs users x items "
                  f"{g['vs_users_x_items']:5.2f}")
    print("\n" + markdown_table(rows, growth))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sizes": rows, "growth_exponents": growth,
                               "machine": {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]}},
                              indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
