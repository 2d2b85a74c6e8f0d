"""Seeded synthetic hits of five known behavioural types (the ground truth comes back as `true_type`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.sessions.config import SESSION_TYPES, SyntheticSessionsConfig
from recsys.random import RandomState
from recsys.random import rng as make_rng

# per type: (min pages, extra pages ~ Poisson, share of product pages, mean seconds per hit,
#            cart adds (min, Poisson extra), P(checkout), purchase)
TYPE_PARAMS = {
    "bounce": (1, 0.0, 0.3, 10.0, (0, 0.0), 0.0, False),
    "browse": (3, 2.5, 0.15, 25.0, (0, 0.0), 0.0, False),
    "research": (10, 6.0, 0.75, 70.0, (0, 0.0), 0.0, False),
    "cart_abandon": (4, 3.0, 0.6, 35.0, (1, 0.5), 0.3, False),
    "purchase": (5, 4.0, 0.5, 40.0, (1, 0.7), 1.0, True),
}
CONTENT_PAGES = np.array(["/home", "/search", "/category/apparel", "/category/bags", "/category/office",
                          "/category/drinkware", "/sale", "/help", "/about", "/blog"])


def generate_hits(cfg: SyntheticSessionsConfig, random_state: RandomState = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded canonical hits of `n_sessions` visits; returns (hits, truth[session_id, true_type]).

    Example:
        >>> hits, truth = generate_hits(SyntheticSessionsConfig(n_sessions=100), 0)
    """
    r = make_rng(random_state)
    n = cfg.n_sessions
    start = int(pd.Timestamp(cfg.start, tz="UTC").timestamp())
    period = cfg.days * 86400
    t0 = np.sort(r.integers(0, period, size=n))
    later = t0 >= int(period * (1 - cfg.later_share))
    kinds = np.empty(n, dtype=np.int64)
    for mask, mix in ((~later, cfg.mix), (later, cfg.later_mix or cfg.mix)):
        p = np.array([mix.get(t, 0.0) for t in SESSION_TYPES])
        kinds[mask] = r.choice(len(SESSION_TYPES), size=int(mask.sum()), p=p / p.sum())
    users = r.integers(0, cfg.n_users, size=n)
    params = [TYPE_PARAMS[t] for t in SESSION_TYPES]
    min_p, lam_p, p_prod, dwell, cart_min, cart_lam, p_chk, buys = _columns(params)
    k = kinds
    n_pages = min_p[k] + r.poisson(lam_p[k])
    n_cart = cart_min[k] + r.poisson(cart_lam[k])
    n_chk = (r.random(n) < p_chk[k]).astype(np.int64)
    n_buy = buys[k].astype(np.int64)
    n_hits = n_pages + n_cart + n_chk + n_buy
    sess = np.repeat(np.arange(n), n_hits)
    pos = np.arange(len(sess)) - np.repeat(np.cumsum(n_hits) - n_hits, n_hits)  # 0-based position in visit
    # layout of a visit: pages, then cart adds, then checkout, then purchase
    b1 = n_pages[sess]
    b2 = b1 + n_cart[sess]
    b3 = b2 + n_chk[sess]
    is_product = r.random(len(sess)) < p_prod[k][sess]
    event = np.where(pos < b1, np.where(is_product, "product_view", "pageview"),
                     np.where(pos < b2, "add_to_cart", np.where(pos < b3, "checkout", "purchase")))
    product = r.integers(0, 300, size=len(sess))
    page = np.where(event == "product_view", np.char.add("/product/", product.astype(str)),
                    CONTENT_PAGES[r.integers(0, len(CONTENT_PAGES), size=len(sess))])
    page = np.where(event == "add_to_cart", "/cart", page)
    page = np.where(event == "checkout", "/checkout", page)
    page = np.where(event == "purchase", "/confirmation", page)
    gaps = r.exponential(dwell[k][sess])
    gaps[pos == 0] = 0.0
    csum = np.cumsum(gaps)
    offs = csum - np.repeat(csum[np.cumsum(n_hits) - n_hits], n_hits)
    ts = start + t0[sess] + offs.astype(np.int64)
    revenue = np.where(event == "purchase", np.round(r.lognormal(np.log(60.0), 0.6, size=len(sess)), 2), 0.0)
    ids = np.array([f"s{i:07d}" for i in range(n)])
    hits = pd.DataFrame({
        "session_id": ids[sess], "user_id": np.char.add("u", users[sess].astype(str)), "hit_number": pos + 1,
        "timestamp": ts.astype(np.int64), "page": page, "event": event, "revenue": revenue,
    })
    truth = pd.DataFrame({"session_id": ids, "true_type": np.array(SESSION_TYPES)[kinds]})
    return hits, truth


def _columns(params: list[tuple]) -> tuple[np.ndarray, ...]:
    min_p = np.array([x[0] for x in params])
    lam_p = np.array([x[1] for x in params])
    p_prod = np.array([x[2] for x in params])
    dwell = np.array([x[3] for x in params])
    cart_min = np.array([x[4][0] for x in params])
    cart_lam = np.array([x[4][1] for x in params])
    p_chk = np.array([x[5] for x in params])
    buys = np.array([x[6] for x in params])
    return min_p, lam_p, p_prod, dwell, cart_min, cart_lam, p_chk, buys
