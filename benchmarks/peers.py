"""Our recommenders side by side with peer libraries on the identical platform split.

For each dataset (the synthetic quickstart, ml-100k, ml-latest-small from $RECSYS_SHARED_DATA) the platform's own split
is exported once (the exact training rows our models see, and the evaluated test users); every peer runs in ITS OWN
virtual environment (never a dependency of recsys) through benchmarks/peer_runner.py with the same hyper-parameters;
both sides' top-10 lists are scored by our evaluator and by ranx (they must agree), with our bootstrap CI.

    python benchmarks/peers.py                       # all datasets and pairs; writes benchmarks/results/peers.json
    python benchmarks/peers.py --datasets ml-100k --pairs ease,als
    python benchmarks/peers.py --pairs sasrec --merge  # re-run some rows, keep the others already in the file

Peer environments (paths overridable): RECSYS_PEER_RECTOOLS=/work/peervenv-rectools/bin/python
(`pip install torch==2.13.0 "numpy<2" "rectools[torch]" "pyarrow<19" ranx`: pyarrow 19+ needs numpy 2, and SASRec
needs the torch extra's pytorch-lightning), RECSYS_PEER_LENSKIT=/work/peervenv-lenskit/bin/python
(`pip install torch==2.13.0 lenskit pyarrow ranx`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.evaluation import metrics as M
from recsys.evaluation.statistics import bootstrap_interval
from recsys.experiment import load_experiment_config
from recsys.models.catalog import create
from recsys.tasks import get_task

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
K = 10
PEERS = {"rectools": os.environ.get("RECSYS_PEER_RECTOOLS", "/work/peervenv-rectools/bin/python"),
         "lenskit": os.environ.get("RECSYS_PEER_LENSKIT", "/work/peervenv-lenskit/bin/python")}
DATASETS = {  # name -> (config, overrides)
    "ml-100k": ("configs/movielens.yaml", ["data.movielens.name=ml-100k"]),
    "ml-latest-small": ("configs/movielens.yaml", []),
    "synthetic": ("configs/quickstart.yaml", []),
}
SASREC = {"factors": 64, "n_blocks": 2, "n_heads": 1, "max_len": 50, "dropout": 0.2, "learning_rate": 0.001,
          "batch_size": 128, "epochs": 20, "loss": "softmax", "random_state": 42}
# pair -> (our model name, our params, peer algorithm params, peers); the same hyper-parameters on both sides
PAIRS = {
    "popularity": ("popularity", {}, {}, ["rectools", "lenskit"]),
    "ease": ("ease", {"regularization": 500.0, "num_threads": 1}, {"regularization": 500.0}, ["rectools"]),
    "item_knn": ("item_knn", {"k_neighbors": 100, "similarity": "cosine", "num_threads": 1}, {"k_neighbors": 100},
                 ["rectools", "lenskit"]),
    "als": ("als", {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15, "random_state": 42,
                    "num_threads": 1},
            {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15, "random_state": 42},
            ["rectools", "lenskit"]),
    "bpr": ("bpr", {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100,
                    "random_state": 42, "num_threads": 1},
            {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100, "random_state": 42},
            ["rectools"]),
    "sasrec": ("sasrec", {k: v for k, v in SASREC.items() if k != "n_heads"} | {"num_threads": 1}, SASREC,
               ["rectools"]),
}
# where a peer defines the algorithm on different input, ours runs with the same definition (and says so in params):
# LensKit's item-KNN (feedback="implicit") counts each (user, item) once, whatever its weight or repeats; ours and
# RecTools' (implicit's CosineRecommender) use the summed interaction weights unless `binary: true`
SAME_DEFINITION = {("item_knn", "lenskit"): {"binary": True}}


def our_params(pair: str, lib: str) -> dict:
    return PAIRS[pair][1] | SAME_DEFINITION.get((pair, lib), {})


def export_split(name: str, workdir: Path):
    """Prepare the platform context for a dataset; write train rows and evaluated users as parquet."""
    cfg_path, overrides = DATASETS[name]
    cfg = load_experiment_config(ROOT / cfg_path, overrides)
    ctx = get_task("recommend").prepare(cfg)
    data, target = ctx.state["data"], ctx.state["target"]
    known = target.user_idx >= 0
    train = data.interactions[["user_id", "item_id", "timestamp", "weight"]].copy()
    train["user_id"], train["item_id"] = train["user_id"].astype(str), train["item_id"].astype(str)
    if not np.issubdtype(train["timestamp"].dtype, np.number):
        train["timestamp"] = pd.to_datetime(train["timestamp"]).astype("int64") // 10**9 \
            if not isinstance(train["timestamp"].dtype, pd.DatetimeTZDtype) else train["timestamp"].astype("int64")
    d = workdir / name
    d.mkdir(parents=True, exist_ok=True)
    train.to_parquet(d / "train.parquet", index=False)
    pd.DataFrame({"user_id": target.user_ids[known].astype(str)}).to_parquet(d / "users.parquet", index=False)
    return data, target, known, d


def ranked_from_frame(recs: pd.DataFrame, data, target, known: np.ndarray) -> np.ndarray:
    """(n_eval_users, K) item indices from a (user_id, item_id, rank) frame, -1 where a list is short."""
    ranked = np.full((len(target.user_ids), K), -1, np.int64)
    row_of = pd.Series(np.arange(len(target.user_ids)), index=target.user_ids.astype(str))
    recs = recs[recs["rank"] <= K]
    rows = row_of.reindex(recs["user_id"].astype(str)).to_numpy()
    ok = ~np.isnan(rows)
    # items the peer knows are a subset of ours (same train rows); map their ids to our indices
    item_ids = data.items.ids.astype(str)
    item_idx = pd.Series(np.arange(len(item_ids)), index=item_ids).reindex(recs["item_id"].astype(str)).to_numpy()
    ok &= ~np.isnan(item_idx)
    ranked[rows[ok].astype(int), recs["rank"].to_numpy()[ok].astype(int) - 1] = item_idx[ok].astype(int)
    return ranked


def score(ranked: np.ndarray, target, known: np.ndarray, seed: int = 0) -> dict:
    """Our evaluator, with a bootstrap CI, and ranx on the same lists (known users only, like the peers)."""
    from ranx import Qrels, Run, evaluate

    ranked, relevant, n_rel = ranked[known], target.relevant[known], target.n_relevant[known]
    per = M.accuracy_metrics(M.hits_matrix(ranked, relevant), n_rel, [K])
    out = {}
    for m in ("ndcg", "recall"):
        v = per[f"{m}_at_{K}"]
        lo, hi = bootstrap_interval(v, 1000, 0.95, seed)
        out[f"{m}_at_{K}"] = {"mean": float(v.mean()), "ci95": [lo, hi]}
    qrels, run = {}, {}
    for r in range(len(ranked)):
        q = f"q{r}"
        qrels[q] = {str(i): 1 for i in relevant[r].indices}
        run[q] = {str(i): float(K - j) for j, i in enumerate(ranked[r]) if i >= 0} or {"none": 0.0}
    rx = evaluate(Qrels(qrels), Run(run), [f"ndcg@{K}", f"recall@{K}"], make_comparable=True)
    out["ranx"] = {f"ndcg_at_{K}": float(rx[f"ndcg@{K}"]), f"recall_at_{K}": float(rx[f"recall@{K}"])}
    return out


def run_ours(pair: str, params: dict, data, target, known: np.ndarray) -> dict:
    name = PAIRS[pair][0]
    t0 = time.perf_counter()
    model = create(name, params).fit(data)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ranked = np.full((len(target.user_ids), K), -1, np.int64)
    idx, _ = model.recommend(target.user_idx[known], K)
    ranked[np.flatnonzero(known), : idx.shape[1]] = idx
    rec_s = time.perf_counter() - t1
    return {"ranked": ranked, "fit_seconds": fit_s, "recommend_seconds": rec_s}


def run_peer(lib: str, pair: str, d: Path, data, target, known: np.ndarray, timeout: float) -> dict:
    job = {"lib": lib, "algo": pair, "params": PAIRS[pair][2], "k": K, "train": str(d / "train.parquet"),
           "users": str(d / "users.parquet"), "out": str(d / f"{lib}-{pair}.parquet")}
    job_path = d / f"{lib}-{pair}.json"
    job_path.write_text(json.dumps(job))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([PEERS[lib], str(HERE / "peer_runner.py"), str(job_path)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} {pair} failed: {proc.stderr[-2000:]}")
    timing = json.loads(Path(job["out"] + ".json").read_text())
    ranked = ranked_from_frame(pd.read_parquet(job["out"]), data, target, known)
    return {"ranked": ranked, **timing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--pairs", default=",".join(PAIRS))
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--out", default=str(HERE / "results" / "peers.json"))
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows of --out that this run does not measure (same dataset, pair and peer)")
    args = ap.parse_args()
    os.environ.setdefault("RECSYS_DATA_HOME", os.environ.get("RECSYS_SHARED_DATA", str(ROOT.parent / "shared/data")))
    os.environ.setdefault("RECSYS_PROGRESS", "0")
    peers = set(args.peers.split(","))
    results: list[dict] = []
    kept = json.loads(Path(args.out).read_text())["results"] if args.merge and Path(args.out).exists() else []
    with tempfile.TemporaryDirectory(prefix="recsys-peers-") as tmp:
        for ds in args.datasets.split(","):
            data, target, known, d = export_split(ds, Path(tmp))
            print(f"== {ds}: {data.n_users} users, {data.n_items} items, {int(known.sum())} evaluated users",
                  flush=True)
            for pair in args.pairs.split(","):
                ours_runs: dict[str, tuple[dict, dict]] = {}  # our params (json) -> (run, scores)
                for lib in [p for p in PAIRS[pair][3] if p in peers]:
                    params = our_params(pair, lib)
                    key = json.dumps(params, sort_keys=True)
                    if key not in ours_runs:
                        run = run_ours(pair, params, data, target, known)
                        ours_runs[key] = (run, score(run["ranked"], target, known))
                    ours, ours_scores = ours_runs[key]
                    try:
                        peer = run_peer(lib, pair, d, data, target, known, args.timeout)
                    except Exception as exc:  # noqa: BLE001 - a peer failing is reported, not fatal
                        print(f"   {pair:10s} {lib:9s} FAILED: {str(exc)[-300:]}", flush=True)
                        results.append({"dataset": ds, "pair": pair, "peer": lib, "error": str(exc)[-1000:]})
                        continue
                    peer_scores = score(peer["ranked"], target, known)
                    o, p = ours_scores["ndcg_at_10"], peer_scores["ndcg_at_10"]
                    verdict = ("above" if o["mean"] > p["mean"] else
                               "within CI" if o["mean"] >= p["ci95"][0] else "BELOW")
                    row = {"dataset": ds, "pair": pair, "peer": lib, "peer_version": peer.get("version"),
                           "params": params, "users": int(known.sum()),
                           "ours": {**ours_scores, "fit_seconds": ours["fit_seconds"],
                                    "recommend_seconds": ours["recommend_seconds"]},
                           "peer_result": {**peer_scores, "fit_seconds": peer["fit_seconds"],
                                           "recommend_seconds": peer["recommend_seconds"]},
                           "ndcg_ratio": o["mean"] / p["mean"] if p["mean"] else None,
                           "recall_ratio": (ours_scores["recall_at_10"]["mean"] / peer_scores["recall_at_10"]["mean"]
                                            if peer_scores["recall_at_10"]["mean"] else None),
                           "fit_time_ratio": ours["fit_seconds"] / max(peer["fit_seconds"], 1e-9),
                           "ndcg_verdict": verdict}
                    results.append(row)
                    save(args.out, merged(kept, results))
                    print(f"   {pair:10s} {lib:9s} ndcg@10 ours {o['mean']:.4f} [{o['ci95'][0]:.4f},{o['ci95'][1]:.4f}]"
                          f" peer {p['mean']:.4f} [{p['ci95'][0]:.4f},{p['ci95'][1]:.4f}] ratio {row['ndcg_ratio']:.3f}"
                          f"  recall ours {ours_scores['recall_at_10']['mean']:.4f} peer "
                          f"{peer_scores['recall_at_10']['mean']:.4f}  fit s ours {ours['fit_seconds']:.1f} peer "
                          f"{peer['fit_seconds']:.1f}  {verdict}", flush=True)
    save(args.out, merged(kept, results))
    print(f"saved {args.out}")


def merged(kept: list[dict], new: list[dict]) -> list[dict]:
    """`kept` rows not measured again, then the new ones, in dataset / pair / peer order of DATASETS and PAIRS."""
    def key(r: dict) -> tuple:
        return r["dataset"], r["pair"], r["peer"]

    fresh = {key(r) for r in new}
    rows = [r for r in kept if key(r) not in fresh] + new
    order = {d: i for i, d in enumerate(DATASETS)}, {p: i for i, p in enumerate(PAIRS)}
    return sorted(rows, key=lambda r: (order[0].get(r["dataset"], 99), order[1].get(r["pair"], 99), r["peer"]))


def save(out: str, results: list[dict]) -> None:
    """Written after every pair, so a long run that is stopped keeps what it measured."""
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(), "k": K,
            "note": "shared 2-core machine: timings are pessimistic; metrics are over known test users (both sides)"}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
