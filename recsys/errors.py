"""Exception classes. Every message states the rule that was broken, the value, and the fix."""

from __future__ import annotations


class RecsysError(Exception):
    """Base class of every error the platform raises on purpose (the CLI prints these as one line)."""


class ConfigError(RecsysError, ValueError):
    """An experiment config (or override) is invalid: names the key, the value and what is allowed."""


class DataError(RecsysError, ValueError):
    """Input data breaks a rule: names the file, the column and how many rows offend."""


class NotFittedError(RecsysError, RuntimeError):
    """A model was used before `fit` (or `load`)."""


class PromotionError(RecsysError):
    """A registry operation was refused (e.g. the candidate does not load or predict)."""
