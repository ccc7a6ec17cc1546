"""API keys: parsed from settings, compared in constant time, required beyond loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from multidict import CIMultiDict

from streamer.serving.auth import ApiKeys, is_loopback, load_api_keys, parse_keys
from streamer.settings import SettingsError
from tests.support.settings import make_settings as settings

KEY_A = "a" * 24
KEY_B = "b-very-secret-key-000"


def test_named_and_bare_keys_are_parsed_and_identified() -> None:
    keys = ApiKeys(tuple(parse_keys(f"ops:{KEY_A}, {KEY_B}", "STREAMER_API_KEYS", ",")))
    assert keys.required and keys.names == ("ops", "key-2")
    assert keys.identify({"Authorization": f"Bearer {KEY_A}"}) == "ops"
    # aiohttp's headers are case-insensitive, and so is the scheme
    assert keys.identify(CIMultiDict({"authorization": f"bearer {KEY_B}"})) == "key-2"
    assert keys.identify({"X-API-Key": KEY_B}) == "key-2"
    assert keys.identify({"Authorization": f"Bearer {KEY_A}x"}) is None
    assert keys.identify({"Authorization": f"Basic {KEY_A}"}) is None
    assert keys.identify({}) is None
    assert KEY_A not in repr(keys) and KEY_A not in repr(keys._keys)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ops:short", "shorter than 16"),
        (f"bad name:{KEY_A}", "key name"),
        (f":{KEY_A}", "key name"),
    ],
)
def test_bad_keys_stop_the_worker_without_showing_the_key(text: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_keys(text, "STREAMER_API_KEYS", ",")
    assert words in str(caught.value) and "STREAMER_API_KEYS" in str(caught.value)
    assert KEY_A not in str(caught.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("worker-1", False),
        ("::", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_without_keys_is_refused_at_start() -> None:
    with pytest.raises(SettingsError) as caught:
        load_api_keys(settings(web_host="0.0.0.0"))
    message = str(caught.value)
    assert "STREAMER_WEB_HOST=0.0.0.0" in message and "STREAMER_API_KEYS" in message
    assert not load_api_keys(settings()).required  # loopback: open, as before
    # a command that serves nothing (simulate, rollout...) is not refused
    assert not load_api_keys(settings(web_host="0.0.0.0"), refuse_open=False).required
    keys = load_api_keys(settings(web_host="0.0.0.0", api_keys=f"ops:{KEY_A}"))
    assert keys.names == ("ops",)


def test_keys_file_with_comments_adds_to_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# operators\nops:{KEY_A}\n\n{KEY_B}\n", encoding="utf-8")
    keys = load_api_keys(settings(api_keys=f"grafana:{'g' * 20}", api_keys_file=path))
    assert keys.names == ("grafana", "ops", "key-3")
    assert keys.identify({"X-API-Key": KEY_B}) == "key-3"
    with pytest.raises(SettingsError, match="unique"):
        load_api_keys(settings(api_keys=f"ops:{'g' * 20}", api_keys_file=path))


def test_a_missing_keys_file_or_half_a_tls_pair_is_a_settings_error(tmp_path: Path) -> None:
    from streamer.settings import load_settings

    with pytest.raises(SettingsError, match="STREAMER_API_KEYS_FILE"):
        load_settings(api_keys_file=tmp_path / "absent")
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(SettingsError, match="go together"):
        load_settings(web_tls_certfile=cert)
