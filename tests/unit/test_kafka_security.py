"""Kafka security settings: one translation for every client, checked at start, secrets masked.

No broker here (tests/integration/test_security.py runs a SASL_SSL one).
"""

from __future__ import annotations

import ssl
from importlib import resources
from pathlib import Path

import faust
import pytest
from faust.types.auth import AuthProtocol

from streamer.kafka_security import (
    KafkaSecurityError,
    aiokafka_security,
    describe,
    faust_credentials,
    ssl_context,
)
from streamer.localkafka.broker import LocalKafka, override_properties
from streamer.settings import Settings, SettingsError, load_settings
from tests.support.secure_kafka import Certificates, make_certificates

PASSWORD = "s3cret-Pa55word-xyz"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def sasl(certs: Certificates | None = None, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "kafka_security_protocol": "SASL_SSL" if certs else "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-256",
        "kafka_sasl_username": "alice",
        "kafka_sasl_password": PASSWORD,
    }
    if certs is not None:
        base["kafka_ssl_cafile"] = certs.ca
    base.update(overrides)
    return load_settings(**base)


def test_defaults_are_plaintext_and_a_loopback_http_api() -> None:
    settings = load_settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.web_host == "127.0.0.1"
    assert aiokafka_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    assert ssl_context(settings) is None


def test_sasl_ssl_gives_every_client_the_same_security(certs: Certificates) -> None:
    settings = sasl(certs)
    kwargs = aiokafka_security(settings)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert kwargs["sasl_plain_username"] == "alice"
    assert kwargs["sasl_plain_password"] == PASSWORD
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname

    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.username == "alice" and credentials.password == PASSWORD
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert PASSWORD not in repr(credentials)


def test_sasl_plaintext_and_ssl_only(certs: Certificates) -> None:
    plain = sasl(kafka_sasl_mechanism="SCRAM-SHA-512")
    assert "ssl_context" not in aiokafka_security(plain)
    credentials = faust_credentials(plain)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials.mechanism.value == "SCRAM-SHA-512"

    tls = load_settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=certs.ca,
        kafka_ssl_certfile=certs.broker_pem,  # any certificate with its key: mutual TLS
        kafka_ssl_check_hostname=False,
    )
    kwargs = aiokafka_security(tls)
    assert set(kwargs) == {"security_protocol", "ssl_context"}
    assert kwargs["ssl_context"].check_hostname is False
    assert kwargs["ssl_context"].verify_mode is ssl.CERT_REQUIRED  # the chain is still checked
    assert isinstance(faust_credentials(tls), faust.SSLCredentials)


def test_the_password_is_masked_everywhere_but_the_child_environment(
    certs: Certificates,
) -> None:
    settings = sasl(certs)
    for shown in (repr(settings), str(settings), settings.model_dump_json(), describe(settings)):
        assert PASSWORD not in shown
    assert "SCRAM-SHA-256 as 'alice'" in describe(settings)
    assert str(settings.kafka_sasl_password) == "**********"
    # to_env hands the settings to a child process, which must be able to connect
    assert settings.to_env()["STREAMER_KAFKA_SASL_PASSWORD"] == PASSWORD
    assert load_settings(**_from_env(settings.to_env())) == settings


def _from_env(env: dict[str, str]) -> dict[str, object]:
    return {name.removeprefix("STREAMER_").lower(): value for name, value in env.items()}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL"},
            "SASL_SSL needs STREAMER_KAFKA_SASL_USERNAME and STREAMER_KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "alice"},
            "needs STREAMER_KAFKA_SASL_USERNAME and STREAMER_KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_sasl_username": "alice", "kafka_sasl_password": "x"},
            "does not use SASL; set it to SASL_SSL",
        ),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "alice",
                "kafka_sasl_password": "x",
            },
            "PLAIN would send the password unencrypted",
        ),
        ({"kafka_ssl_cafile": "/etc/hostname"}, "STREAMER_KAFKA_SSL_CAFILE is set but"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/no/such/ca.pem"},
            "STREAMER_KAFKA_SSL_CAFILE=/no/such/ca.pem is not a readable file",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "/etc/hostname"},
            "STREAMER_KAFKA_SSL_KEYFILE is set without STREAMER_KAFKA_SSL_CERTFILE",
        ),
        ({"kafka_security_protocol": "TLS"}, "STREAMER_KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "STREAMER_KAFKA_SASL_MECHANISM"),
        ({"max_message_bytes": 600_000}, "STREAMER_MAX_MESSAGE_BYTES"),
    ],
)
def test_inconsistent_settings_stop_at_start_naming_the_variable(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(**overrides)


def test_a_bad_ca_file_is_one_sentence(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    settings = load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=not_pem)
    with pytest.raises(KafkaSecurityError, match=r"STREAMER_KAFKA_SSL_CAFILE=.*not a PEM file"):
        aiokafka_security(settings)


def test_the_app_gets_the_credentials(certs: Certificates, tmp_path: Path) -> None:
    from streamer.app import create_app

    settings = sasl(certs, state_dir=tmp_path, forecaster="seasonal_naive_week")
    app, _runtime = create_app(settings)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    plain_app, _ = create_app(load_settings(state_dir=tmp_path, forecaster="seasonal_naive_week"))
    assert plain_app.conf.broker_credentials is None


# --- the local broker's config overrides (used by the SASL_SSL test broker) ----------------------
def test_override_properties_replaces_and_appends() -> None:
    text = "# comment=keep\na=1\nlisteners=PLAINTEXT://x:1\nb=2\n"
    out = override_properties(text, {"listeners": "SASL_SSL://x:1", "c": "3"})
    assert out == "# comment=keep\na=1\nlisteners=SASL_SSL://x:1\nb=2\nc=3\n"


def test_default_broker_config_is_the_template(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:19999")
    broker = LocalKafka(settings)
    broker.home.mkdir(parents=True)
    broker._write_config()
    template = resources.files("streamer.localkafka").joinpath("server.properties").read_text()
    assert broker.config_file.read_text() == template.format(
        host="127.0.0.1",
        port=19999,
        controller_port=settings.kafka_controller_port,
        data_dir=broker.data_dir.resolve(),
        partitions=settings.topic_partitions,
    )
    assert broker.scram_credentials == ()
