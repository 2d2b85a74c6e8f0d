"""The small experiment a data scientist runs first: ALS + item-KNN on ml-latest-small, end to end, on an existing
MLflow store, beside RecTools and LensKit doing the same fits + recommendations on the same split.

Ours is the whole command, `recsys run` (configs/movielens.yaml with only its item_knn and als entries, same
params, registration as challenger included) in a fresh process: imports, config validation, loading, split,
fit, evaluation with bootstrap CIs and tests, plots, report and every MLflow round trip. The store is created by
a first, untimed run. Each peer (its own virtual environment, benchmarks/peer_runner.py, one thread like ours)
fits both models on the exported training rows of the same split and recommends 10 items to the same users; its
time is fit + recommend as the library reports it, plus our NDCG on its lists (measured here), and the process
wall (interpreter start, imports and reading the rows included) is shown too. Runs alternate ours / peers
`--repeat` times; the best wall of each is kept, with its CPU seconds (user + sys: on a shared machine the wall
includes waiting for a core).

    RECSYS_DATA_HOME=../shared/data python benchmarks/small_experiment.py     # -> results/small_experiment.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from peers import PEERS, export_split, run_peer  # noqa: E402

from recsys.evaluation import metrics as M  # noqa: E402

MODELS = ("item_knn", "als")
LIBS = ("rectools", "lenskit")
K = 10


def small_config(path: Path) -> dict:
    """configs/movielens.yaml with only the item_knn and als entries (their params, no tuning)."""
    cfg = yaml.safe_load((ROOT / "configs/movielens.yaml").read_text())
    cfg["models"] = [{"name": m["name"], "params": m.get("params", {})} for m in cfg["models"] if m["name"] in MODELS]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed_process(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s, stdout) of one process; raises with its stderr when it fails."""
    c0, t0 = cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    wall, cpu = time.perf_counter() - t0, cpu_children() - c0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return wall, cpu, proc.stdout


def our_stages(uri: str) -> dict[str, float]:
    """fit_seconds / evaluate_seconds of the latest experiment's model runs (what the runs logged)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("movielens")
    parent = client.search_runs([exp.experiment_id], "tags.role = 'experiment'", order_by=["start_time DESC"],
                                max_results=1)[0]
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    out = {}
    for run in children:
        label = run.data.tags.get("label", run.info.run_name)
        out[f"fit {label}"] = run.data.metrics.get("fit_seconds", float("nan"))
        out[f"evaluate {label}"] = run.data.metrics.get("evaluate_seconds", float("nan"))
    out["metrics"] = {run.data.tags.get("label", ""): run.data.metrics.get("ndcg_at_10") for run in children}
    return out


def peer_ndcg(recs_ranked: np.ndarray, target, known: np.ndarray) -> tuple[float, float]:
    """(mean NDCG@10 over the peer's users, seconds our metric code took)."""
    t0 = time.perf_counter()
    per = M.accuracy_metrics(M.hits_matrix(recs_ranked[known], target.relevant[known]), target.n_relevant[known], [K])
    return float(per[f"ndcg_at_{K}"].mean()), time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--out", default=str(HERE / "results" / "small_experiment.json"))
    args = ap.parse_args()
    os.environ.setdefault("RECSYS_DATA_HOME", os.environ.get("RECSYS_SHARED_DATA", str(ROOT.parent / "shared/data")))
    os.environ.setdefault("RECSYS_PROGRESS", "0")
    libs = [lib for lib in args.libs.split(",") if lib]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="recsys-small-") as tmp:
        work = Path(tmp)
        cfg_path = work / "movielens_als_knn.yaml"
        small_config(cfg_path)
        uri = f"sqlite:///{work / 'mlflow.db'}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri}
        for k in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            env.pop(k, None)
        cmd = [sys.executable, "-m", "recsys.cli", "--log-level", "WARNING", "run", str(cfg_path)]
        first_wall, first_cpu, _ = timed_process(cmd, work, env)  # creates the store (schema) and the experiment
        print(f"first run (creates the store): {first_wall:.2f} s wall, {first_cpu:.2f} s CPU", flush=True)
        data, target, known, d = export_split("ml-latest-small", work / "split")
        ours: list[dict] = []
        peers: dict[str, list[dict]] = {lib: [] for lib in libs}
        for rep in range(args.repeat):
            wall, cpu, _ = timed_process(cmd, work, env)
            ours.append({"wall_seconds": wall, "cpu_seconds": cpu, **our_stages(uri)})
            print(f"[{rep + 1}/{args.repeat}] ours: recsys run {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
            for lib in libs:
                row: dict = {"models": {}}
                for model in MODELS:
                    c0, t0 = cpu_children(), time.perf_counter()
                    peer = run_peer(lib, model, d, data, target, known, timeout=1800)
                    proc_wall, proc_cpu = time.perf_counter() - t0, cpu_children() - c0
                    ndcg, metric_s = peer_ndcg(peer["ranked"], target, known)
                    row["models"][model] = {"fit_seconds": peer["fit_seconds"],
                                            "recommend_seconds": peer["recommend_seconds"],
                                            "metric_seconds": metric_s, "process_wall_seconds": proc_wall,
                                            "process_cpu_seconds": proc_cpu, "ndcg_at_10": ndcg,
                                            "version": peer.get("version")}
                ms = row["models"].values()
                row["fit_recommend_ndcg_seconds"] = sum(m["fit_seconds"] + m["recommend_seconds"] + m["metric_seconds"]
                                                        for m in ms)
                row["process_wall_seconds"] = sum(m["process_wall_seconds"] for m in ms)
                row["process_cpu_seconds"] = sum(m["process_cpu_seconds"] for m in ms)
                peers[lib].append(row)
                print(f"[{rep + 1}/{args.repeat}] {lib}: fit + recommend + ndcg "
                      f"{row['fit_recommend_ndcg_seconds']:.2f} s (processes {row['process_wall_seconds']:.2f} s wall, "
                      f"{row['process_cpu_seconds']:.2f} s CPU)",
                      flush=True)
    best = min(ours, key=lambda r: r["wall_seconds"])
    summary = {"ours": best, "first_run": {"wall_seconds": first_wall, "cpu_seconds": first_cpu},
               "evaluated_users": int(known.sum()), "peers": {}}
    print(f"\nml-latest-small, ALS + item-KNN, {int(known.sum())} evaluated users (best of {args.repeat}; "
          f"load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    stages = {k: v for k, v in best.items() if k.startswith(("fit ", "evaluate "))}
    print(f"  recsys run (whole command, existing store): {best['wall_seconds']:.2f} s wall, "
          f"{best['cpu_seconds']:.2f} s CPU; of which fit + evaluate {sum(stages.values()):.2f} s ("
          + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()) + ")")
    for lib, rows in peers.items():
        b = min(rows, key=lambda r: r["fit_recommend_ndcg_seconds"])
        ratio = best["wall_seconds"] / b["fit_recommend_ndcg_seconds"]
        proc_ratio = best["wall_seconds"] / b["process_wall_seconds"]
        summary["peers"][lib] = {**b, "ours_wall_over_peer": ratio, "ours_wall_over_peer_processes": proc_ratio,
                                 "ours_cpu_over_peer_processes_cpu": best["cpu_seconds"] / b["process_cpu_seconds"]}
        print(f"  {lib:9s} fit + recommend + ndcg {b['fit_recommend_ndcg_seconds']:.2f} s  -> ours / {lib} "
              f"{ratio:.2f}x;  {lib} processes (start, imports, data included) {b['process_wall_seconds']:.2f} s wall, "
              f"{b['process_cpu_seconds']:.2f} s CPU -> ours / processes {proc_ratio:.2f}x wall, "
              f"{summary['peers'][lib]['ours_cpu_over_peer_processes_cpu']:.2f}x CPU")
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average_before": load_before, "load_average_after": os.getloadavg(), "repeat": args.repeat,
            "peers": {lib: PEERS[lib] for lib in libs}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "summary": summary, "ours_runs": ours, "peer_runs": peers},
                                         indent=2, default=float))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
