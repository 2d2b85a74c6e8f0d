"""Tiny deterministic datasets with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.tables import TrainData


def checkerboard(n_users: int = 40, n_items: int = 40, n_groups: int = 2, held_out: int = 1,
                 seed: int = 0) -> tuple[TrainData, pd.DataFrame]:
    """Users and items split into `n_groups` blocks; each user interacts with the items of its block.

    For each user, `held_out` items of its own block are removed from training and returned as the test
    rows: a model that learns the structure ranks them above every item of other blocks.
    Returns (train data, test interactions).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        g = u % n_groups
        block = [i for i in range(n_items) if i % n_groups == g]
        rng.shuffle(block)
        for j, i in enumerate(block):
            rows.append((f"u{u:03d}", f"i{i:03d}", 1_600_000_000 + j, "view", 1.0, j < held_out))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "weight", "test"])
    train = df[~df["test"]].drop(columns="test")
    test = df[df["test"]].drop(columns="test")
    items = pd.DataFrame({"item_id": [f"i{i:03d}" for i in range(n_items)],
                          "title": [f"item {i}" for i in range(n_items)],
                          "text": ["" for _ in range(n_items)],
                          "category": [f"c{i % n_groups}" for i in range(n_items)]})
    return TrainData.build(train, items), test.reset_index(drop=True)
