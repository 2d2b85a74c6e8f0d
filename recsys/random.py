"""Seed handling: every random function takes `random_state` and converts it once here."""

from __future__ import annotations

import numpy as np

RandomState = int | np.random.Generator | None


def rng(random_state: RandomState) -> np.random.Generator:
    """Return a numpy Generator from an int seed, a Generator, or None (fresh entropy)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def derive_seed(random_state: RandomState, *keys: int | str) -> int:
    """A child seed that is a deterministic function of a parent seed and some keys."""
    base = random_state if isinstance(random_state, int) else 0
    h = np.random.SeedSequence([base, *[abs(hash_str(k)) for k in keys]])
    return int(h.generate_state(1)[0])


def hash_str(value: int | str) -> int:
    if isinstance(value, int):
        return value
    import zlib

    return zlib.crc32(value.encode())
