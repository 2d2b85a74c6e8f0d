"""Full-ranking evaluation against implicit's own `recommend`, on the same fitted ALS and the same users.

Data: the synthetic marketplace (global temporal split), every warm test user evaluated over every item.
Timings (best of --repeat, same process, same run, so the ratios hold on a loaded machine too):

  ours ALS          evaluate_recommender(als): rank (float32 scores, multithreaded top-K, seen items filtered)
                    + every metric of the run (accuracy, novelty, coverage, ...)
  implicit ALS      implicit's AlternatingLeastSquares holding the same factors:
                    model.recommend(users, user_items, N=K, filter_already_liked_items=True), BLAS at one
                    thread under implicit's own threads (what implicit asks for)
                    + the same metric computation (score_lists) on its lists
  ours popularity   evaluate_recommender(popularity): O(users x K), no dense score matrix
  ours random       evaluate_recommender(random)

Goals (issue 14): ours ALS / implicit ALS <= 1.2; ALS / popularity and ALS / random >= 5.
The lists are compared too: implicit breaks ties its own way, so a few may differ where scores tie.

    python benchmarks/ranking.py --users 60000 --items 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from timing import best_of

from recsys.config import config_from_dict
from recsys.evaluation.recommend import evaluate_recommender, score_lists
from recsys.models.catalog import create
from recsys.tasks import get_task

K = 10


def prepare(n_users: int, n_items: int, seed: int):
    cfg = config_from_dict({
        "name": "bench-ranking", "seed": seed,
        "data": {"source": "synthetic", "synthetic": {"n_users": n_users, "n_items": n_items,
                                                      "one_time_share": 0.2, "days": 180}},
        "split": {"method": "temporal", "test_size": 0.2},
        "metrics": {"k": [K]}, "models": [{"name": "popularity"}]})
    ctx = get_task("recommend").prepare(cfg)
    return ctx.state["data"], ctx.state["target"]


def implicit_evaluation(als, data, target):
    """implicit's recommend on an estimator holding our factors, then the same metric computation as ours."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    est = AlternatingLeastSquares(factors=als.user_factors_.shape[1], num_threads=als.num_threads)
    est.user_factors, est.item_factors = als.user_factors_, als.item_factors_
    known = np.flatnonzero(target.user_idx >= 0)
    users = target.user_idx[known]

    def run():
        # implicit's own advice: single-threaded BLAS under its threads (it warns otherwise)
        with threadpool_limits(1, "blas"):
            ids, scores = est.recommend(users, als.seen_[users], N=K, filter_already_liked_items=True)
        ranked = np.full((len(target.user_ids), K), -1, np.int64)
        val = np.full((len(target.user_ids), K), -np.inf)
        ok = scores > -np.finfo(np.float32).max / 2  # implicit pads with -max for filtered items
        ranked[known] = np.where(ok, ids, -1)
        val[known] = np.where(ok, scores, -np.inf)
        cold = np.flatnonzero(target.user_idx < 0)
        if len(cold):
            ranked[cold], val[cold] = als.fallback(len(cold), K)
        return score_lists(ranked, val, data, target, [K], store_lists=False)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ranking.json"))
    args = ap.parse_args()

    t0 = time.perf_counter()
    data, target = prepare(args.users, args.items, args.seed)
    prep_s = time.perf_counter() - t0
    als = create("als", {"factors": args.factors, "iterations": 5, "random_state": 1}).fit(data)
    models = {"popularity": create("popularity").fit(data), "random": create("random").fit(data)}

    times: dict[str, float] = {}
    results = {}
    times["ours_als"], results["ours_als"] = best_of(
        lambda: evaluate_recommender(als, data, target, [K], store_lists=False), args.repeat)
    times["implicit_als"], results["implicit_als"] = best_of(implicit_evaluation(als, data, target), args.repeat)
    for name, model in models.items():
        times[f"ours_{name}"], results[f"ours_{name}"] = best_of(
            lambda m=model: evaluate_recommender(m, data, target, [K], store_lists=False), args.repeat)

    a, b = results["ours_als"].ranked, results["implicit_als"].ranked
    same_lists = float((a == b).all(axis=1).mean())
    ndcg = {name: r.metrics[f"ndcg_at_{K}"] for name, r in results.items()}
    ratios = {"ours_als_over_implicit_als": times["ours_als"] / times["implicit_als"],
              "als_over_popularity": times["ours_als"] / times["ours_popularity"],
              "als_over_random": times["ours_als"] / times["ours_random"]}
    n_eval = len(target.user_ids)
    print(f"{n_eval} evaluated users x {data.n_items} items (K={K}, factors={args.factors}, "
          f"prepare {prep_s:.1f}s, load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'run':<18}{'seconds':>10}{'ndcg@10':>10}")
    for name, sec in times.items():
        print(f"{name:<18}{sec:>10.3f}{ndcg[name]:>10.4f}")
    print(f"ours ALS / implicit ALS  {ratios['ours_als_over_implicit_als']:.2f}  (goal <= 1.2)")
    print(f"ALS / popularity         {ratios['als_over_popularity']:.1f}x  (goal >= 5)")
    print(f"ALS / random             {ratios['als_over_random']:.1f}x  (goal >= 5)")
    print(f"identical ALS lists (ours vs implicit): {same_lists:.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "config": vars(args) | {"evaluated_users": n_eval, "items": int(data.n_items), "k": K},
        "seconds": times, "ratios": ratios, "ndcg_at_10": ndcg, "identical_als_lists": same_lists,
        "machine": {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0], "python": platform.python_version()},
    }, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
