"""SASRec (Kang & McAuley 2018): causal self-attention over each user's time-ordered history predicts the next item.

Torch on the CPU, seeded, `num_threads` honoured during fit. Training follows the paper: every position of a user's
last `max_len` training items predicts the following item, with binary cross-entropy against one sampled negative
(`loss: bce`), or a full softmax over the catalog (`loss: softmax`, often stronger on small catalogs).

`recommend(u)`: the next-item scores after the user's whole (last `max_len`) history.
`similar(i)`:   the next-item scores after a history of the single item i (what people take after i).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from recsys.logging import get_logger
from recsys.models import _torch as T
from recsys.models.base import ModelConfig, ProgressCallback, Recommender, topk
from recsys.models.catalog import register

_log = get_logger(__name__)


def build_net(n_items: int, factors: int, n_blocks: int, n_heads: int, max_len: int, dropout: float):
    import torch
    from torch import nn

    class SASRecNet(nn.Module):
        causal: torch.Tensor  # registered buffer (upper-triangular attention mask)

        def __init__(self) -> None:
            super().__init__()
            self.item_emb = nn.Embedding(n_items + 1, factors, padding_idx=0)  # index 0 pads, item i is i + 1
            self.pos_emb = nn.Embedding(max_len, factors)
            self.drop = nn.Dropout(dropout)
            layer = nn.TransformerEncoderLayer(factors, n_heads, dim_feedforward=factors, dropout=dropout,
                                               batch_first=True, norm_first=True, activation="relu")
            self.blocks = nn.TransformerEncoder(layer, n_blocks, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(factors)
            mask = torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), diagonal=1)
            self.register_buffer("causal", mask, persistent=False)

        def forward(self, seq):  # seq: (b, max_len) item index + 1, left-padded with 0
            pos = torch.arange(seq.shape[1]).unsqueeze(0)
            h = self.item_emb(seq) * (self.item_emb.embedding_dim ** 0.5) + self.pos_emb(pos)
            h = self.drop(h) * (seq > 0).unsqueeze(-1)
            h = self.blocks(h, mask=self.causal[: seq.shape[1], : seq.shape[1]])
            return self.norm(h) * (seq > 0).unsqueeze(-1)

        def item_scores(self, hidden):  # (b, d) -> (b, n_items)
            return hidden @ self.item_emb.weight[1:].T

    return SASRecNet()


def user_sequences(data, max_len: int) -> list[np.ndarray]:
    """Each user's training items ordered by time (ties by item index), as item indices."""
    inter = data.interactions.sort_values(["user_idx", "timestamp", "item_idx"], kind="stable")
    users = inter["user_idx"].to_numpy()
    items = inter["item_idx"].to_numpy()
    bounds = np.searchsorted(users, np.arange(data.n_users + 1))
    return [items[bounds[u]:bounds[u + 1]] for u in range(data.n_users)]


def left_pad(seqs: list[np.ndarray], length: int) -> np.ndarray:
    """(n, length) of item index + 1 (the last `length` items of each sequence), 0 on the left."""
    out = np.zeros((len(seqs), length), np.int64)
    for r, s in enumerate(seqs):
        s = s[-length:]
        if len(s):
            out[r, length - len(s):] = s + 1
    return out


@register
class SASRec(Recommender):
    """After fit: `net_` (torch module, eval mode), `sequences_` (time-ordered train items per user)."""

    name = "sasrec"
    tasks = ("recommend", "similar")

    config: Config

    class Config(ModelConfig):
        factors: int = Field(50, ge=4, le=1024, description="embedding / hidden size (paper: 50)")
        n_blocks: int = Field(2, ge=1, le=8, description="self-attention blocks (paper: 2)")
        n_heads: int = Field(1, ge=1, le=16, description="attention heads; must divide factors (paper: 1)")
        max_len: int = Field(50, ge=2, le=1000, description="longest history attended (paper: 50 on sparse data)")
        dropout: float = Field(0.2, ge=0, lt=1, description="dropout rate (paper: 0.2 to 0.5)")
        learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam step size (paper: 0.001)")
        batch_size: int = Field(128, ge=1, le=100_000, description="users per batch (paper: 128)")
        epochs: int = Field(50, ge=1, le=2000, description="passes over the users")
        loss: Literal["bce", "softmax"] = Field("bce", description="bce with one sampled negative (paper) or a "
                                                                   "full softmax over items")
        random_state: int = Field(42, description="seed of initialisation, dropout and negative sampling")
        num_threads: int = Field(1, ge=0, description="torch threads while fitting; 0 = torch's default")

    net_: Any = None  # _SASRecNet once fitted
    sequences_: list[np.ndarray]

    def _fit(self, data, callback: ProgressCallback | None) -> None:
        import torch

        c = self.config
        if c.factors % c.n_heads:
            from recsys.errors import ConfigError

            raise ConfigError(f"sasrec: n_heads={c.n_heads} must divide factors={c.factors}")
        n_items = self.seen_.shape[1]
        self.sequences_ = user_sequences(data, c.max_len)
        rows = [u for u, s in enumerate(self.sequences_) if len(s) >= 2]
        seqs = left_pad([self.sequences_[u] for u in rows], c.max_len + 1)
        inputs, targets = torch.from_numpy(seqs[:, :-1]), torch.from_numpy(seqs[:, 1:])
        rng = np.random.default_rng(c.random_state)
        with T.torch_session(c.num_threads, c.random_state) as gen:
            torch.manual_seed(c.random_state)  # nn.Dropout inside the encoder draws from torch's global generator
            net = build_net(n_items, c.factors, c.n_blocks, c.n_heads, c.max_len, c.dropout)
            T.seed_module(net, c.random_state)
            opt = torch.optim.Adam(net.parameters(), lr=c.learning_rate, betas=(0.9, 0.98))
            for epoch in T.epochs(c.epochs, "sasrec"):
                net.train()
                total, count = 0.0, 0
                for batch in np.array_split(rng.permutation(len(rows)), max(1, int(np.ceil(len(rows) / c.batch_size)))):
                    b = torch.from_numpy(batch)
                    x, y = inputs[b], targets[b]
                    h = net(x)
                    valid = y > 0
                    if c.loss == "softmax":
                        logits = net.item_scores(h[valid])
                        loss = torch.nn.functional.cross_entropy(logits, y[valid] - 1)
                    else:
                        neg = torch.randint(1, n_items + 1, y.shape, generator=gen)
                        pos_logit = (h * net.item_emb(y)).sum(-1)[valid]
                        neg_logit = (h * net.item_emb(neg)).sum(-1)[valid]
                        loss = (torch.nn.functional.softplus(-pos_logit).mean()
                                + torch.nn.functional.softplus(neg_logit).mean())
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * int(valid.sum())
                    count += int(valid.sum())
                net.eval()
                self.net_ = net
                if callback is not None:
                    callback(epoch, {"loss": total / max(count, 1), "partial_model": lambda: self})
            net.eval()
        self.net_ = net

    def _next_scores(self, seqs: list[np.ndarray]) -> np.ndarray:
        import torch

        self._check_fitted("net_")
        out = np.empty((len(seqs), self.seen_.shape[1]))
        for start in range(0, len(seqs), 512):
            x = torch.from_numpy(left_pad(seqs[start:start + 512], self.config.max_len))
            with torch.no_grad():
                h = self.net_(x)[:, -1]
                out[start:start + len(x)] = self.net_.item_scores(h).numpy()
        return out

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted("net_")
        return self._next_scores([self.sequences_[u] for u in user_idx])

    def similar(self, item_idx: np.ndarray, k: int):
        """Items most likely to come next after item i alone, i itself excluded."""
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        item_idx = np.asarray(item_idx, dtype=np.int64)
        scores = self._next_scores([np.array([i]) for i in item_idx])
        scores[np.arange(len(item_idx)), item_idx] = -np.inf
        return topk(scores, k)

    def _state(self):
        lengths = np.array([len(s) for s in self.sequences_], np.int64)
        flat = np.concatenate(self.sequences_) if len(self.sequences_) else np.empty(0, np.int64)
        return {**T.state_arrays(self.net_), "seq_lengths": lengths, "seq_items": flat.astype(np.int64)}

    def _set_state(self, state) -> None:
        c = self.config
        self.net_ = build_net(self.seen_.shape[1], c.factors, c.n_blocks, c.n_heads, c.max_len, c.dropout)
        T.load_state_arrays(self.net_, state)
        bounds = np.concatenate([[0], np.cumsum(state["seq_lengths"])])
        items = state["seq_items"]
        self.sequences_ = [items[bounds[u]:bounds[u + 1]] for u in range(len(bounds) - 1)]
