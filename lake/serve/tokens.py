"""Bearer tokens and their roles: who may read the lake and who may also write ticks into it.

Tokens come from ``TICKLAKE_SERVE_TOKENS`` (``read:TOKEN,write:TOKEN``) or from a file of one
``ROLE SHA256-OF-TOKEN`` a line, so the server never needs the tokens themselves on disk. Only
SHA-256 digests are kept in memory and compared, in constant time; a token is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ticklake.errors import ConfigError

READ = "read"
WRITE = "write"
ROLES = (READ, WRITE)
ENV = "TICKLAKE_SERVE_TOKENS"
_GRANTS = {READ: {READ}, WRITE: {READ, WRITE}}  # a write token may also read
_SCHEMES = ("bearer", "token")


def digest(token: str) -> str:
    """The SHA-256 (hex) a tokens file holds for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Tokens:
    """The digests of the tokens the server admits, each with its role."""

    roles: tuple[tuple[str, str], ...]  # (sha256 hex, role)

    @classmethod
    def parse_env(cls, text: str) -> Tokens:
        """``read:TOKEN,write:TOKEN`` (the value of ``TICKLAKE_SERVE_TOKENS``); errors never quote a token."""
        pairs = []
        for n, item in enumerate((p.strip() for p in text.split(",")), start=1):
            if not item:
                continue
            role, sep, token = item.partition(":")
            if not sep or role.strip() not in ROLES or not token:
                raise ConfigError(f"{ENV}: entry {n} must be ROLE:TOKEN with ROLE one of {', '.join(ROLES)}")
            pairs.append((digest(token), role.strip()))
        return cls._checked(pairs, ENV)

    @classmethod
    def from_file(cls, path: Path) -> Tokens:
        """A file of ``ROLE SHA256`` lines (``#`` starts a comment)."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the tokens file ({e.__class__.__name__})") from e
        pairs = []
        for n, line in enumerate(text.splitlines(), start=1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) != 2 or words[0] not in ROLES or not _is_digest(words[1]):
                raise ConfigError(f"{path}:{n}: must be 'ROLE SHA256' with ROLE one of {', '.join(ROLES)} and 64 hex digits")
            pairs.append((words[1].lower(), words[0]))
        return cls._checked(pairs, str(path))

    @classmethod
    def load(cls, path: Path | None = None, environ: Mapping[str, str] | None = None) -> Tokens:
        """The tokens file if given, else ``TICKLAKE_SERVE_TOKENS``; neither is a ConfigError (a server admits nobody)."""
        if path is not None:
            return cls.from_file(path)
        value = (os.environ if environ is None else environ).get(ENV, "")
        if not value.strip():
            raise ConfigError(f"no tokens: set {ENV}=read:TOKEN,write:TOKEN or pass --tokens FILE (lines 'ROLE SHA256')")
        return cls.parse_env(value)

    @classmethod
    def _checked(cls, pairs: Iterable[tuple[str, str]], where: str) -> Tokens:
        found = tuple(pairs)
        if not found:
            raise ConfigError(f"{where}: no tokens")
        return cls(found)

    def role_of(self, header: str | None) -> str | None:
        """The role of an ``Authorization`` value (``Bearer T`` or ``Token T``), or None: no token, or not a known one."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() not in _SCHEMES or not token.strip():
            return None
        wanted = digest(token.strip())
        role = None
        for known, r in self.roles:  # every digest is compared, so timing does not tell which matched
            if hmac.compare_digest(known, wanted) and (role is None or r == WRITE):
                role = r
        return role

    @staticmethod
    def may(role: str | None, need: str) -> bool:
        """Whether `role` grants `need` (READ or WRITE)."""
        return role is not None and need in _GRANTS[role]


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)
