"""The quickstart end to end on the synthetic marketplace at growing sizes: seconds and peak RSS per stage.

Each size runs in its own process (so its peak RSS is its own): the quickstart model set (random, popularity,
item_knn, als) through `run_experiment` with a real MLflow tracker on a temporary SQLite store. Stages:

  generate, validate, split, build (TrainData + evaluation target)   timed around the library functions
  fit <model>, evaluate <model>                                       the run's own fit_seconds / evaluate_seconds
  mlflow logging                                                      time inside the tracker's methods
  other                                                               the rest of the wall time (plots, selection)

Peak RSS is read after every stage (ru_maxrss: the peak so far). With two or more sizes, the growth exponent of
each stage is the least-squares slope of log(seconds) against log(interactions) and against log(users x items).
Each size also times our ALS evaluation against implicit's `recommend` + our metrics on the same fitted model
and users (benchmarks/ranking.py), in the same process.

    nice -n 10 python benchmarks/scale.py --sizes 0.4M 2M      # 6M and 20M take much longer
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
SIZES = {"quickstart": (3_000, 1_000, 25), "0.4M": (20_000, 4_000, 25), "2M": (50_000, 10_000, 50), "6M": (90_000, 18_000, 80),
         "20M": (138_000, 27_000, 180)}
MODELS = [{"name": "random"}, {"name": "popularity"},
          {"name": "item_knn", "params": {"k_neighbors": 100, "similarity": "cosine"}},
          {"name": "als", "params": {"factors": 64, "regularization": 0.01, "iterations": 15, "random_state": 42}}]
TRACKER_METHODS = ("log_context", "log_model_result", "log_comparison", "log_decision", "register_best")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Stages:
    """Seconds and peak RSS per named stage, accumulated."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.rss: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.rss[name] = peak_rss_mb()

    def wrap(self, owner, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)

        setattr(owner, attr, timed)


def timed_tracker(uri: str, stages: Stages):
    """A real MlflowTracker whose own work (not the model work inside its run contexts) is timed."""
    from recsys.tracking import MlflowTracker

    tracker = MlflowTracker(uri)
    for attr in TRACKER_METHODS:
        stages.wrap(tracker, attr, "mlflow logging")
    for attr in ("experiment_run", "model_run"):
        opener = getattr(tracker, attr)

        @contextlib.contextmanager
        def timed_run(*args, _open=opener, **kwargs):
            t0 = time.perf_counter()
            cm = _open(*args, **kwargs)
            value = cm.__enter__()
            stages.add("mlflow logging", time.perf_counter() - t0)
            try:
                yield value
            except BaseException:
                if not cm.__exit__(*sys.exc_info()):
                    raise
            else:
                t1 = time.perf_counter()
                cm.__exit__(None, None, None)
                stages.add("mlflow logging", time.perf_counter() - t1)

        setattr(tracker, attr, timed_run)
    return tracker


def run_one(size: str) -> dict:
    import recsys.tasks.recommend as task_module
    from recsys.config import config_from_dict
    from recsys.data import sources, synthetic
    from recsys.data.tables import TrainData
    from recsys.experiment import run_experiment

    sys.path.insert(0, str(Path(__file__).parent))
    from ranking import implicit_evaluation
    from timing import best_of

    users, items, mean = SIZES[size]
    stages = Stages()
    stages.wrap(synthetic, "generate", "generate")
    stages.wrap(sources, "validate_interactions", "validate")
    stages.wrap(task_module, "split_dataset", "split")
    build = TrainData.build.__func__
    TrainData.build = classmethod(lambda cls, *a, **kw: _timed(stages, "build", build, cls, *a, **kw))
    stages.wrap(task_module, "build_target", "build")
    cfg = config_from_dict({
        "name": f"scale-{size}", "seed": 42,
        "data": {"source": "synthetic", "synthetic": {"n_users": users, "n_items": items, "one_time_share": 0.2,
                                                      "days": 180, "mean_interactions": mean}},
        "split": {"method": "temporal", "test_size": 0.2}, "metrics": {"k": [10], "primary": "ndcg_at_10"},
        "models": MODELS, "registry": {"enabled": False}})
    with tempfile.TemporaryDirectory(prefix="recsys-scale-") as tmp:
        tracker = timed_tracker(f"sqlite:///{tmp}/mlflow.db", stages)
        t0 = time.perf_counter()
        res = run_experiment(cfg, tracker=tracker, workdir=Path(tmp) / "work")
        wall = time.perf_counter() - t0
    for r in res.results:
        stages.seconds[f"fit {r.entry.run_name}"] = r.seconds["fit_seconds"]
        stages.seconds[f"evaluate {r.entry.run_name}"] = r.seconds["evaluate_seconds"]
    stages.seconds["other"] = wall - sum(stages.seconds.values())
    data, target = res.context.state["data"], res.context.state["target"]
    als = next(r.model for r in res.results if r.entry.name == "als")
    from recsys.evaluation.recommend import evaluate_recommender

    ours, _ = best_of(lambda: evaluate_recommender(als, data, target, [10], store_lists=False), 1)
    peer, _ = best_of(implicit_evaluation(als, data, target), 1)
    return {"size": size, "users": int(data.n_users), "items": int(data.n_items),
            "interactions": len(res.context.state["dataset"].interactions),
            "train_interactions": int(data.matrix.nnz), "evaluated_users": len(target.user_ids),
            "wall_seconds": wall, "seconds": stages.seconds, "peak_rss_mb_after": stages.rss,
            "peak_rss_mb": peak_rss_mb(), "als_eval_over_implicit": ours / peer,
            "als_eval_seconds": ours, "implicit_recommend_plus_metrics_seconds": peer,
            "logging_share": stages.seconds.get("mlflow logging", 0.0) / wall}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["0.4M", "2M"], choices=list(SIZES))
    ap.add_argument("--one", choices=list(SIZES), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale.json"))
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    rows = []
    env = {**os.environ, "RECSYS_PROGRESS": "0"}
    for size in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", size], capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            sys.exit(f"size {size} failed:\n{proc.stderr[-4000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"\n{size}: {r['users']} users x {r['items']} items, {r['interactions']} interactions, "
              f"wall {r['wall_seconds']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MiB, "
              f"mlflow logging {100 * r['logging_share']:.1f}% of wall, "
              f"ALS eval / implicit recommend+metrics {r['als_eval_over_implicit']:.2f}")
        print(f"  {'stage':<22}{'seconds':>9}{'peak RSS MiB':>14}")
        for stage, sec in r["seconds"].items():
            print(f"  {stage:<22}{sec:>9.2f}{r['peak_rss_mb_after'].get(stage, float('nan')):>14.0f}")
    growth = exponents(rows) if len(rows) >= 2 else {}
    if growth:
        print(f"\ngrowth exponent per stage ({' -> '.join(args.sizes)})")
        for stage, g in growth.items():
            print(f"  {stage:<22} vs interactions {g['vs_interactions']:5.2f}   vs users x items "
                  f"{g['vs_users_x_items']:5.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sizes": rows, "growth_exponents": growth,
                               "machine": {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]}},
                              indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
