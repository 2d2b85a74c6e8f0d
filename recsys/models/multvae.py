"""Mult-VAE (Liang, Krishnan, Hoffman, Jebara 2018): a variational autoencoder over each user's item row with a
multinomial likelihood, dropout on the input and a linearly annealed KL weight (capped at `anneal_cap`).

Torch on the CPU, seeded (same seed and threads -> same weights), `num_threads` honoured during fit. Each epoch calls
the progress callback with `partial_model` (tuning scores it on validation and prunes). With
`early_stopping_patience` > 0, a seeded `validation_share` of users has 20% of its items held out inside fit; training
stops when their NDCG@10 has not improved for that many epochs and the best epoch's weights are kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from recsys.logging import get_logger
from recsys.models import _torch as T
from recsys.models.base import ModelConfig, ProgressCallback, Recommender
from recsys.models.catalog import register

_log = get_logger(__name__)


def build_net(n_items: int, hidden: int, latent: int, dropout: float):
    import torch
    from torch import nn

    class MultVAENet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Linear(n_items, hidden)
            self.mu = nn.Linear(hidden, latent)
            self.logvar = nn.Linear(hidden, latent)
            self.dec1 = nn.Linear(latent, hidden)
            self.dec2 = nn.Linear(hidden, n_items)
            self.drop = nn.Dropout(dropout)

        def forward(self, x, gen=None):
            x = nn.functional.normalize(x, dim=1)
            if self.training and self.drop.p > 0:  # dropout drawn from our generator (seeded)
                keep = (torch.rand(x.shape, generator=gen) >= self.drop.p).to(x.dtype)
                x = x * keep / (1 - self.drop.p)
            h = torch.tanh(self.enc(x))
            mu, logvar = self.mu(h), self.logvar(h)
            if self.training:
                z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
            else:
                z = mu
            return self.dec2(torch.tanh(self.dec1(z))), mu, logvar

    return MultVAENet()


@register
class MultVAE(Recommender):
    """After fit: `net_` (torch module, eval mode), `fit_info_` (epochs run, best epoch, validation NDCG@10)."""

    name = "multvae"
    tasks = ("recommend",)

    config: Config

    class Config(ModelConfig):
        hidden: int = Field(600, ge=8, le=4096, description="hidden layer width (paper: 600)")
        latent: int = Field(200, ge=2, le=2048, description="latent dimensions (paper: 200)")
        dropout: float = Field(0.5, ge=0, lt=1, description="dropout on the input row (paper: 0.5)")
        learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam step size")
        weight_decay: float = Field(0.0, ge=0, description="L2 penalty (Adam weight decay)")
        batch_size: int = Field(500, ge=1, le=100_000, description="users per batch (paper: 500)")
        epochs: int = Field(100, ge=1, le=2000, description="maximum epochs")
        anneal_cap: float = Field(0.2, ge=0, le=1, description="KL weight cap beta (paper: 0.2)")
        total_anneal_steps: int = Field(20000, ge=1, description="batches over which beta rises linearly to the cap")
        early_stopping_patience: int = Field(10, ge=0, description="epochs without validation gain before stopping; "
                                                                   "0 = train all epochs on every user")
        validation_share: float = Field(0.1, gt=0, lt=1, description="share of users held out for early stopping")
        random_state: int = Field(42, description="seed of initialisation, dropout, sampling and the holdout")
        num_threads: int = Field(1, ge=0, description="torch threads while fitting; 0 = torch's default")

    net_: Any = None  # _MultVAENet once fitted
    fit_info_: dict

    def _fit(self, data, callback: ProgressCallback | None) -> None:
        import torch

        c = self.config
        x = self.seen_.copy()
        x.data[:] = 1.0
        n_items = x.shape[1]
        rng = np.random.default_rng(c.random_state)
        val_users, val_relevant, train_x = np.empty(0, np.int64), [], x
        if c.early_stopping_patience > 0:
            val_users, val_relevant, train_x = holdout(x, c.validation_share, rng)
        rows = np.flatnonzero(np.diff(train_x.indptr) > 0)
        with T.torch_session(c.num_threads, c.random_state) as gen:
            net = build_net(n_items, c.hidden, c.latent, c.dropout)
            T.seed_module(net, c.random_state)
            opt = torch.optim.Adam(net.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay)
            step, best, best_epoch, best_state, since = 0, -np.inf, -1, None, 0
            epoch = -1
            for epoch in T.epochs(c.epochs, "multvae"):
                net.train()
                order = rows[rng.permutation(len(rows))]
                total = 0.0
                for start in range(0, len(order), c.batch_size):
                    batch = torch.from_numpy(train_x[order[start:start + c.batch_size]].toarray())
                    logits, mu, logvar = net(batch, gen)
                    beta = min(c.anneal_cap, step / c.total_anneal_steps)
                    nll = -(torch.log_softmax(logits, dim=1) * batch).sum(dim=1).mean()
                    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
                    loss = nll + beta * kl
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    step += 1
                    total += float(loss.detach()) * len(batch)
                net.eval()
                self.net_ = net
                info: dict = {"loss": total / max(len(order), 1), "beta": beta,
                              "partial_model": lambda: self}
                if len(val_users):
                    with torch.no_grad():
                        scores = self._forward(train_x[val_users])
                    scores[train_x[val_users].toarray() > 0] = -np.inf
                    val = T.ndcg_at_k(scores, val_relevant, 10)
                    info["val_ndcg_at_10"] = val
                    if val > best:
                        best, best_epoch, since = val, epoch, 0
                        best_state = {k: v.clone() for k, v in net.state_dict().items()}
                    else:
                        since += 1
                if callback is not None:
                    callback(epoch, info)
                if len(val_users) and since >= c.early_stopping_patience:
                    _log.info("multvae: early stop at epoch %d (best %d, val ndcg@10 %.4f)", epoch, best_epoch, best)
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
            net.eval()
        self.net_ = net
        self.fit_info_ = {"epochs_run": epoch + 1, "best_epoch": best_epoch,
                          "val_ndcg_at_10": float(best) if np.isfinite(best) else float("nan")}

    def _forward(self, rows) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits, _, _ = self.net_(torch.from_numpy(rows.toarray().astype(np.float32)))
        return logits.numpy().astype(np.float64)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted("net_")
        x = self.seen_[user_idx].copy()
        x.data[:] = 1.0
        return self._forward(x)

    def _state(self):
        return T.state_arrays(self.net_)

    def _set_state(self, state) -> None:
        c = self.config
        n_items = self.seen_.shape[1]
        self.net_ = build_net(n_items, c.hidden, c.latent, c.dropout)
        T.load_state_arrays(self.net_, state)


def holdout(x, share: float, rng: np.random.Generator):
    """Pick `share` of users with >= 5 items and hide 20% of each one's items: (users, hidden items, reduced x)."""
    counts = np.diff(x.indptr)
    eligible = np.flatnonzero(counts >= 5)
    n_val = round(share * len(eligible))
    users = np.sort(rng.choice(eligible, size=n_val, replace=False)) if n_val else np.empty(0, np.int64)
    x = x.tolil(copy=True)
    relevant = []
    for u in users:
        items = np.asarray(x.rows[u])
        hide = rng.choice(items, size=max(1, int(0.2 * len(items))), replace=False)
        relevant.append(np.sort(hide))
        for i in hide:
            x[u, i] = 0
    x = x.tocsr()
    x.eliminate_zeros()
    return users, relevant, x.astype(np.float32)
