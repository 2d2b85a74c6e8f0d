"""A seeded synthetic marketplace: power-law users, latent category tastes, Zipf item popularity,
typed events over a period, new items arriving over time. Ground truth (tastes) is returned in `extras`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.config.schema import SyntheticConfig
from recsys.random import RandomState
from recsys.random import rng as make_rng

CATEGORIES = [
    ("electronics", ["headphones", "speaker", "charger", "tablet", "camera", "monitor", "keyboard", "router"]),
    ("books", ["novel", "cookbook", "biography", "atlas", "thriller", "poetry", "textbook", "comic"]),
    ("garden", ["shovel", "planter", "hose", "seeds", "rake", "lantern", "bench", "fertiliser"]),
    ("kitchen", ["kettle", "skillet", "blender", "knife", "teapot", "grater", "toaster", "mixer"]),
    ("sports", ["football", "racket", "yoga mat", "dumbbell", "bicycle helmet", "tent", "skates", "gloves"]),
    ("toys", ["puzzle", "doll", "robot kit", "board game", "kite", "blocks", "train set", "plush bear"]),
    ("beauty", ["lipstick", "perfume", "face cream", "shampoo", "nail polish", "serum", "brush set", "soap"]),
    ("fashion", ["sneakers", "jacket", "scarf", "handbag", "jeans", "sunglasses", "watch", "dress"]),
    ("music", ["guitar", "vinyl record", "ukulele", "drum pad", "microphone", "violin", "amplifier", "flute"]),
    ("pets", ["dog leash", "cat tree", "aquarium", "bird feeder", "pet bed", "chew toy", "litter box", "collar"]),
    ("office", ["stapler", "notebook", "desk lamp", "fountain pen", "planner", "shredder", "binder", "whiteboard"]),
    ("automotive",
     ["car charger", "dash cam", "seat cover", "tyre gauge", "jump starter", "wax", "floor mats", "wiper"]),
    ("health", ["vitamins", "thermometer", "massager", "first aid kit", "scale", "pill box", "heat pad", "inhaler"]),
    ("home", ["curtains", "rug", "cushion", "vase", "mirror", "clock", "candle", "blanket"]),
    ("baby", ["stroller", "bottle", "crib", "diapers", "rattle", "baby monitor", "high chair", "bib"]),
    ("games", ["console", "controller", "headset", "game card", "joystick", "vr glasses", "racing wheel", "arcade"]),
    ("crafts", ["yarn", "paint set", "canvas", "sewing kit", "clay", "beads", "glue gun", "sketchbook"]),
    ("travel",
     ["suitcase", "backpack", "neck pillow", "adapter", "passport wallet", "luggage tag", "duffel", "packing cubes"]),
    ("grocery", ["coffee beans", "green tea", "olive oil", "chocolate", "pasta", "honey", "spices", "granola"]),
    ("tools", ["drill", "hammer", "screwdriver set", "saw", "wrench", "tape measure", "level", "sander"]),
]
ADJECTIVES = ["classic", "premium", "compact", "deluxe", "eco", "smart", "vintage", "portable", "pro", "mini",
              "wireless", "handmade", "organic", "ultra", "family", "travel"]
EVENTS = np.array(["view", "search", "wishlist", "cart", "purchase", "rating"])
EVENT_P = np.array([0.50, 0.10, 0.08, 0.12, 0.15, 0.05])
N_NOUNS = 8
assert all(len(nouns) == N_NOUNS for _, nouns in CATEGORIES)
CATEGORY_CHUNK = 1 << 19  # interactions per block when drawing categories: bounds the (rows x categories) buffer


def category_names(n: int) -> list[str]:
    base = [c for c, _ in CATEGORIES]
    return [base[i] if i < len(base) else f"{base[i % len(base)]}-{i // len(base)}" for i in range(n)]


def generate_items(cfg: SyntheticConfig, random_state: RandomState) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Items with titles/categories; returns (items, category index per item, popularity weight per item)."""
    r = make_rng(random_state)
    cats = category_names(cfg.n_categories)
    cat_of = r.integers(0, cfg.n_categories, size=cfg.n_items)
    words = [CATEGORIES[c % len(CATEGORIES)][1] for c in range(cfg.n_categories)]
    # one draw of integers(8) per item: the same stream as one call per item (every category has 8 nouns)
    noun = np.array(words, dtype=object)[cat_of, r.integers(N_NOUNS, size=cfg.n_items)].astype(str)
    adj = np.array(ADJECTIVES)[r.integers(len(ADJECTIVES), size=cfg.n_items)]
    titles = [f"{a.title()} {n} {i:04d}" for i, (a, n) in enumerate(zip(adj, noun))]
    texts = [f"{a} {n} for {cats[c]} lovers; category {cats[c]}" for a, n, c in zip(adj, noun, cat_of)]
    # popularity: Zipf within each category, random rank order
    pop = np.empty(cfg.n_items)
    for c in range(cfg.n_categories):
        idx = np.flatnonzero(cat_of == c)
        ranks = r.permutation(len(idx)) + 1
        pop[idx] = 1.0 / ranks ** cfg.popularity_exponent
    items = pd.DataFrame({
        "item_id": [f"i{i:05d}" for i in range(cfg.n_items)],
        "title": titles,
        "text": texts,
        "category": [cats[c] for c in cat_of],
    })
    return items, cat_of, pop


def generate(cfg: SyntheticConfig, random_state: RandomState = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Return (raw interactions with canonical columns, items, ground truth dict).

    Interactions: user_id, item_id, timestamp (unix s), event. Deterministic for a given seed.
    """
    r = make_rng(random_state)
    items, cat_of, pop = generate_items(cfg, r)
    start = int(pd.Timestamp(cfg.start, tz="UTC").timestamp())
    period = cfg.days * 86400
    # item release times: most at the start, `new_item_share` arrive uniformly during the period
    release = np.zeros(cfg.n_items, dtype=np.int64)
    new = r.random(cfg.n_items) < cfg.new_item_share
    release[new] = r.integers(0, int(period * 0.95), size=int(new.sum()))
    # users: one-time share, others power-law activity with the configured mean
    n_users = cfg.n_users
    one_time = r.random(n_users) < cfg.one_time_share
    a = cfg.activity_alpha
    raw = (r.pareto(a, size=n_users) + 1.0) * (a - 1) / a  # mean 1
    counts = np.maximum(2, np.round(raw * cfg.mean_interactions)).astype(np.int64)
    counts = np.minimum(counts, max(2, cfg.n_items // 3))
    counts[one_time] = 1
    tastes = r.dirichlet(np.full(cfg.n_categories, cfg.taste_concentration), size=n_users)
    # each user is active over a sub-window of the period
    span = np.where(one_time, 0, r.uniform(0.3, 1.0, size=n_users) * period).astype(np.int64)
    first = r.integers(0, np.maximum(1, period - span))
    user = np.repeat(np.arange(n_users), counts)
    ts_off = first[user] + (r.random(len(user)) * span[user]).astype(np.int64)
    # category by taste (inverse CDF), item by popularity among items released before the event
    cum = np.cumsum(tastes, axis=1)
    u = r.random(len(user))
    cat = np.empty(len(user), dtype=np.int64)
    for s in range(0, len(user), CATEGORY_CHUNK):  # blocks: a (rows x categories) comparison of all rows is GBs
        block = slice(s, s + CATEGORY_CHUNK)
        cat[block] = (u[block, None] > cum[user[block]]).sum(axis=1)
    np.minimum(cat, cfg.n_categories - 1, out=cat)
    del u
    item = np.full(len(user), -1, dtype=np.int64)
    by_cat = [np.flatnonzero(cat_of == c) for c in range(cfg.n_categories)]
    for c in range(cfg.n_categories):
        rows = np.flatnonzero(cat == c)
        members = by_cat[c]
        if len(members) == 0:
            continue
        p = pop[members] / pop[members].sum()
        pending = rows
        for _ in range(6):
            if len(pending) == 0:
                break
            pick = members[r.choice(len(members), size=len(pending), p=p)]
            ok = release[pick] <= ts_off[pending]
            item[pending[ok]] = pick[ok]
            pending = pending[~ok]
        if len(pending):  # fall back to the most popular launch item of the category
            launch = members[release[members] == 0]
            fallback = launch[np.argmax(pop[launch])] if len(launch) else members[np.argmin(release[members])]
            item[pending] = fallback
            ts_off[pending] = np.maximum(ts_off[pending], release[fallback])
    events = r.choice(len(EVENTS), size=len(user), p=EVENT_P)
    successors = None
    if cfg.sequential_strength > 0:  # drawn after everything else, so strength 0 keeps the data bit-identical
        successors = item_successors(cat_of, pop, release, r)
        item = apply_sequences(user, ts_off, item, successors, release, cfg.sequential_strength, r)
    # id columns gathered from the small per-user / per-item / per-event string arrays (never a string per row
    # built in Python or numpy)
    user_names = pd.Series(np.char.add("u", np.char.zfill(np.arange(n_users).astype(str), 6)), dtype="str")
    df = pd.DataFrame({
        "user_id": _take(user_names, user),
        "item_id": _take(items["item_id"].astype("str"), item),
        "timestamp": start + ts_off,
        "event": _take(pd.Series(EVENTS, dtype="str"), events),
    })
    truth = {"tastes": tastes, "item_category": cat_of, "release": start + release, "one_time": one_time}
    if successors is not None:
        truth["successors"] = successors
    return df, items, truth


def _take(values: pd.Series, idx: np.ndarray) -> pd.Series:
    """values[idx] as a column (one gather, no per-row objects)."""
    return values.take(idx).reset_index(drop=True)


N_SUCCESSORS = 2  # items that may follow each item in a sequence


def item_successors(cat_of: np.ndarray, pop: np.ndarray, release: np.ndarray, r: np.random.Generator) -> np.ndarray:
    """(n_items, N_SUCCESSORS) items that tend to follow each item: same category, drawn by popularity."""
    n = len(cat_of)
    out = np.empty((n, N_SUCCESSORS), np.int64)
    for c in np.unique(cat_of):
        members = np.flatnonzero(cat_of == c)
        for i in members:
            others = members[members != i] if len(members) > 1 else members
            p = pop[others] / pop[others].sum()
            out[i] = others[r.choice(len(others), size=N_SUCCESSORS, replace=len(others) < N_SUCCESSORS, p=p)]
    return out


def apply_sequences(user: np.ndarray, ts: np.ndarray, item: np.ndarray, successors: np.ndarray, release: np.ndarray,
                    strength: float, r: np.random.Generator) -> np.ndarray:
    """Walk each user's interactions in time order; with probability `strength` replace the next item by a successor
    of the previous one (when it is already released). Returns the new item array."""
    item = item.copy()
    order = np.lexsort((np.arange(len(user)), ts, user))
    u_sorted = user[order]
    first = np.r_[True, u_sorted[1:] != u_sorted[:-1]]
    rank = np.arange(len(order)) - np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    for k in range(1, int(rank.max()) + 1 if len(rank) else 0):
        pos = np.flatnonzero(rank == k)
        rows, prev_rows = order[pos], order[pos - 1]
        take = r.random(len(rows)) < strength
        pick = successors[item[prev_rows], r.integers(0, successors.shape[1], size=len(rows))]
        ok = take & (release[pick] <= ts[rows])
        item[rows[ok]] = pick[ok]
    return item
