"""API keys of the HTTP data routes: loaded once at start, compared in constant time.

Keys come from ``STREAMER_API_KEYS`` (comma-separated) and ``STREAMER_API_KEYS_FILE`` (one per
line, ``#`` comments), each ``name:key`` or a bare key (named ``key-1``, ``key-2``... in load
order). A client sends ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The name labels
the per-key request counter; the key itself is never logged, shown or put in a metric.

A worker that binds beyond loopback without a key refuses to start (:func:`load_api_keys`):
household load is personal data.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from streamer.settings import Settings, SettingsError

#: Shortest key accepted: a key a person could guess is no key.
MIN_KEY_CHARS: Final = 16
_MAX_NAME_CHARS: Final = 64


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    secret: bytes

    def __repr__(self) -> str:  # never the secret
        return f"ApiKey(name={self.name!r})"


class ApiKeys:
    """The configured keys; empty means the data routes are open (loopback only)."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = keys

    @property
    def required(self) -> bool:
        return bool(self._keys)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self._keys)

    def identify(self, headers: Mapping[str, str]) -> str | None:
        """The name of the key the request carries, or None (no key, or not a known one).

        Every configured key is compared, each with :func:`hmac.compare_digest`, so the time
        taken does not tell which key or how much of it matched.
        """
        offered = presented_key(headers)
        if offered is None:
            return None
        found: str | None = None
        for key in self._keys:
            if hmac.compare_digest(offered, key.secret):
                found = key.name
        return found

    def __repr__(self) -> str:
        return f"ApiKeys(names={self.names!r})"


def presented_key(headers: Mapping[str, str]) -> bytes | None:
    """The key in ``Authorization: Bearer ...`` or ``X-API-Key``, as bytes (None if absent)."""
    authorization = headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip().encode("utf-8", "surrogateescape")
        return None
    direct = headers.get("X-API-Key")
    if direct is not None and direct.strip():
        return direct.strip().encode("utf-8", "surrogateescape")
    return None


def parse_keys(text: str, source: str, separator: str, start: int = 1) -> list[ApiKey]:
    """Keys from ``text`` split on ``separator``; ``source`` names the setting in errors."""
    keys: list[ApiKey] = []
    for raw in text.split(separator):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, colon, secret = entry.partition(":")
        if not colon:
            name, secret = f"key-{start + len(keys)}", entry
        name, secret = name.strip(), secret.strip()
        if (
            not name
            or len(name) > _MAX_NAME_CHARS
            or not name.replace("-", "").replace("_", "").isalnum()
        ):
            raise SettingsError(
                f"{source}: a key name must be 1-{_MAX_NAME_CHARS} letters, digits, '-' or '_' "
                "(entries are 'name:key'); the entry's key is not shown"
            )
        if len(secret) < MIN_KEY_CHARS:
            raise SettingsError(
                f"{source}: the key named {name!r} is shorter than {MIN_KEY_CHARS} characters; "
                "use a random one, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        keys.append(ApiKey(name, secret.encode("utf-8")))
    return keys


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the HTTP server off the network."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def load_api_keys(settings: Settings, *, refuse_open: bool = True) -> ApiKeys:
    """The keys of ``settings``; with ``refuse_open``, refuses a worker that would serve data
    beyond loopback without keys."""
    keys: list[ApiKey] = []
    if settings.api_keys is not None:
        keys += parse_keys(settings.api_keys.get_secret_value(), "STREAMER_API_KEYS", ",")
    if settings.api_keys_file is not None:
        try:
            text = settings.api_keys_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"STREAMER_API_KEYS_FILE={settings.api_keys_file} cannot be read "
                f"({exc.__class__.__name__})"
            ) from None
        keys += parse_keys(text, "STREAMER_API_KEYS_FILE", "\n", start=len(keys) + 1)
    names = [key.name for key in keys]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise SettingsError(f"API key names must be unique; repeated: {', '.join(duplicated)}")
    if refuse_open and not keys and not is_loopback(settings.web_host):
        raise SettingsError(
            f"STREAMER_WEB_HOST={settings.web_host} serves household data beyond this machine; "
            "set STREAMER_API_KEYS (name:key, comma-separated) or STREAMER_API_KEYS_FILE, or "
            "bind STREAMER_WEB_HOST=127.0.0.1"
        )
    return ApiKeys(tuple(keys))
