"""Passwords out of URLs before they reach params, config.json, logs or error messages (pure string functions)."""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^/@\s]*@")
_ENV_ONLY = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ***; a `${VAR}` reference is no secret and is kept, so a
    logged config still says where the password comes from (and runs again)."""
    return _PASSWORD.sub(lambda m: m.group(0) if _ENV_ONLY.fullmatch(m.group(0)[len(m.group(1)):-1])
                         else f"{m.group(1)}***@", url)


def mask_text(text: str) -> str:
    """Any URL passwords inside a message masked (driver errors may quote the connection string)."""
    return _PASSWORD.sub(r"\1***@", text)
