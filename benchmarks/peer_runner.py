"""Runs ONE peer library's algorithm inside that library's own virtual environment (not ours).

Called by benchmarks/peers.py as `<peer venv python> benchmarks/peer_runner.py <job.json>`; imports nothing from recsys.
The job names the library, algorithm, params, the exported train rows (parquet: user_id, item_id, timestamp, weight),
the users to recommend for and where to write the top-k lists (user_id, item_id, rank) and timings (json).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd


def rectools_model(algo: str, p: dict):
    from rectools import models as M

    if algo == "ease":
        return M.EASEModel(regularization=p["regularization"], num_threads=1)
    if algo == "popularity":
        return M.PopularModel(popularity="n_users")
    if algo == "item_knn":
        from implicit.nearest_neighbours import CosineRecommender

        return M.ImplicitItemKNNWrapperModel(CosineRecommender(K=p["k_neighbors"], num_threads=1))
    if algo == "als":
        from implicit.als import AlternatingLeastSquares

        return M.ImplicitALSWrapperModel(AlternatingLeastSquares(
            factors=p["factors"], regularization=p["regularization"], alpha=p["alpha"], iterations=p["iterations"],
            random_state=p["random_state"], num_threads=1))
    if algo == "bpr":
        from implicit.bpr import BayesianPersonalizedRanking

        return M.ImplicitBPRWrapperModel(BayesianPersonalizedRanking(
            factors=p["factors"], learning_rate=p["learning_rate"], regularization=p["regularization"],
            iterations=p["iterations"], random_state=p["random_state"], num_threads=1))
    if algo == "sasrec":
        return M.SASRecModel(n_blocks=p["n_blocks"], n_heads=p["n_heads"], n_factors=p["factors"],
                             session_max_len=p["max_len"], dropout_rate=p["dropout"], lr=p["learning_rate"],
                             batch_size=p["batch_size"], epochs=p["epochs"], loss=p["loss"], deterministic=True,
                             item_net_block_types=(M.nn.item_net.IdEmbeddingsItemNet,),
                             get_trainer_func=None)
    raise SystemExit(f"rectools: unknown algorithm {algo!r}")


def run_rectools(job: dict, train: pd.DataFrame, users: np.ndarray) -> tuple[pd.DataFrame, float, float]:
    import torch
    from rectools import Columns
    from rectools.dataset import Dataset

    torch.set_num_threads(1)
    if job["algo"] == "sasrec":
        import pytorch_lightning as pl

        pl.seed_everything(job["params"].get("random_state", 42), workers=True)
    df = pd.DataFrame({Columns.User: train["user_id"], Columns.Item: train["item_id"],
                       Columns.Weight: train["weight"].astype(float),
                       Columns.Datetime: pd.to_datetime(train["timestamp"], unit="s")
                       if np.issubdtype(train["timestamp"].dtype, np.number) else train["timestamp"]})
    model = rectools_model(job["algo"], job["params"])
    t0 = time.perf_counter()
    ds = Dataset.construct(df)
    model.fit(ds)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    reco = model.recommend(users=users, dataset=ds, k=job["k"], filter_viewed=True)
    rec_s = time.perf_counter() - t1
    out = reco.rename(columns={Columns.User: "user_id", Columns.Item: "item_id", Columns.Rank: "rank"})
    return out[["user_id", "item_id", "rank"]], fit_s, rec_s


def run_lenskit(job: dict, train: pd.DataFrame, users: np.ndarray) -> tuple[pd.DataFrame, float, float]:
    from lenskit.batch import recommend
    from lenskit.data import from_interactions_df
    from lenskit.pipeline import topn_pipeline

    algo, p = job["algo"], job["params"]
    if algo == "item_knn":
        from lenskit.knn import ItemKNNScorer

        scorer = ItemKNNScorer(max_nbrs=p["k_neighbors"], feedback="implicit", save_nbrs=p["k_neighbors"])
    elif algo == "als":
        from lenskit.als import ImplicitMFScorer

        scorer = ImplicitMFScorer(embedding_size=p["factors"], epochs=p["iterations"],
                                  regularization=p["regularization"], weight=p["alpha"], use_ratings=False)
    elif algo == "popularity":
        from lenskit.basic import PopScorer

        scorer = PopScorer()
    else:
        raise SystemExit(f"lenskit: unknown algorithm {algo!r}")
    df = train[["user_id", "item_id"]].drop_duplicates().copy()  # implicit feedback: one row per pair
    t0 = time.perf_counter()
    ds = from_interactions_df(df, user_col="user_id", item_col="item_id")
    pipe = topn_pipeline(scorer)
    pipe.train(ds)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    recs = recommend(pipe, list(users), n=job["k"], n_jobs=1)
    rec_s = time.perf_counter() - t1
    out = recs.to_df()
    out = out.rename(columns={"user_id": "user_id", "item_id": "item_id"})
    if "rank" not in out.columns:
        out["rank"] = out.groupby("user_id").cumcount() + 1
    return out[["user_id", "item_id", "rank"]], fit_s, rec_s


def main() -> None:
    job = json.load(open(sys.argv[1]))
    train = pd.read_parquet(job["train"])
    users = pd.read_parquet(job["users"])["user_id"].to_numpy()
    run = {"rectools": run_rectools, "lenskit": run_lenskit}[job["lib"]]
    recs, fit_s, rec_s = run(job, train, users)
    recs.to_parquet(job["out"], index=False)
    import importlib.metadata as md

    json.dump({"fit_seconds": fit_s, "recommend_seconds": rec_s, "version": md.version(job["lib"])},
              open(job["out"] + ".json", "w"))


if __name__ == "__main__":
    main()
