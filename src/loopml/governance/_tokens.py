"""API token secrets: made once, stored as a salted hash, checked in constant time.

A token reads ``lml_<id>_<secret>``: the id is public (shown in lists, audit
entries, error messages) and finds the row; the secret is 256 random bits,
shown once and never stored. Because the secret has full entropy a salted
sha256 is enough (no password stretching needed); the salt keeps equal
secrets, were one ever repeated, from sharing a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = ["PREFIX", "hash_secret", "new_token", "parse_token", "verify_secret"]

PREFIX = "lml"
_ID_BYTES = 8
_SECRET_BYTES = 32
_TOKEN_RE = re.compile(r"^lml_([0-9a-f]{16})_([A-Za-z0-9_-]{20,128})$")
#: Hashed against when the id is unknown, so an unknown id costs what a known one does.
_DUMMY_SALT = "0" * 32
_DUMMY_HASH = "0" * 64


def new_token() -> tuple[str, str, str, str]:
    """A fresh ``(token_id, full_token, salt, secret_hash)``."""
    token_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    salt = secrets.token_hex(16)
    return token_id, f"{PREFIX}_{token_id}_{secret}", salt, hash_secret(salt, secret)


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(salt.encode() + b"\x00" + secret.encode()).hexdigest()


def parse_token(text: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, else ``None``."""
    match = _TOKEN_RE.match(text.strip())
    return (match.group(1), match.group(2)) if match else None


def verify_secret(secret: str, salt: str | None, stored_hash: str | None) -> bool:
    """Constant-time check; with no row (``None``) it still hashes, then fails."""
    if salt is None or stored_hash is None:
        hmac.compare_digest(hash_secret(_DUMMY_SALT, secret), _DUMMY_HASH)
        return False
    return hmac.compare_digest(hash_secret(salt, secret), stored_hash)
