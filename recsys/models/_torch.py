"""Shared plumbing for the torch models (CPU): seeding, thread limits, npz state, epoch progress.

torch is imported lazily (inside functions) so listing the catalog does not pay for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from recsys.logging import progress_enabled


@contextlib.contextmanager
def torch_session(num_threads: int, seed: int) -> Iterator[Any]:
    """Inside: torch limited to `num_threads` intra-op threads (0 = leave as is), deterministic algorithms, and a
    torch.Generator seeded with `seed` (yielded). The previous thread count and determinism flag are restored."""
    import torch

    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    try:
        if num_threads > 0:
            torch.set_num_threads(num_threads)
        torch.use_deterministic_algorithms(True)
        gen = torch.Generator().manual_seed(int(seed))
        yield gen
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)


def seed_module(module: Any, seed: int) -> None:
    """Initialise a module's parameters from `seed` without touching torch's global RNG."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if p.dim() >= 2:
                bound = float(np.sqrt(6.0 / (p.shape[0] + p.shape[1])))  # Xavier uniform
                p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)
            elif name.endswith("weight"):  # LayerNorm scale
                p.fill_(1.0)
            else:
                p.zero_()


def state_arrays(module: Any) -> dict[str, np.ndarray]:
    """A module's state_dict as numpy arrays (npz-ready; keys prefixed `w:`)."""
    return {f"w:{k}": v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_state_arrays(module: Any, state: dict[str, np.ndarray]) -> None:
    import torch

    sd = {k[2:]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("w:")}
    module.load_state_dict(sd)
    module.eval()


def epochs(n: int, desc: str):
    """Epoch range with a progress bar on a TTY (off when RECSYS_PROGRESS=0 or not a TTY)."""
    from tqdm.auto import tqdm

    return tqdm(range(n), desc=desc, disable=not progress_enabled(), leave=False)


def ndcg_at_k(scores: np.ndarray, relevant: list[np.ndarray], k: int) -> float:
    """Mean binary NDCG@k of dense scores (n, n_items) against each row's relevant item indices."""
    from recsys.models.base import topk

    idx, _ = topk(scores, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    vals = []
    for row, rel in zip(idx, relevant):
        if len(rel) == 0:
            continue
        hit = np.isin(row, rel)
        ideal = discounts[: min(len(rel), k)].sum()
        vals.append(float((hit * discounts[: len(row)]).sum() / ideal))
    return float(np.mean(vals)) if vals else 0.0
