"""TLS and SASL for every Kafka client streamer opens, translated from the settings in one place.

The faust app (:func:`faust_credentials`), the topic admin, the control-topic consumer and
producer and the simulator's producer (:func:`aiokafka_security`) all take their security from
here, so ``STREAMER_KAFKA_SECURITY_PROTOCOL`` and friends mean the same thing for each of them::

    PLAINTEXT        nothing (the default; for a broker on loopback or a trusted network)
    SSL              TLS: the broker's certificate is checked against STREAMER_KAFKA_SSL_CAFILE
                     (default: the system CAs) and, unless turned off, its host name;
                     STREAMER_KAFKA_SSL_CERTFILE/KEYFILE add a client certificate (mutual TLS)
    SASL_PLAINTEXT   SASL (SCRAM-SHA-256/512) without TLS
    SASL_SSL         both

The password is a :class:`pydantic.SecretStr` until the moment a client is built; nothing here
logs it, and :func:`explain_connection_failure` names the user and the variables, never the
password.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from streamer.errors import StreamerError
from streamer.settings import Settings

PROBE_TIMEOUT_SECONDS = 10.0


class KafkaSecurityError(StreamerError):
    """The Kafka security settings cannot be used, or the broker refused them."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the SSL and SASL_SSL protocols (None for the others)."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    cafile = settings.kafka_ssl_cafile
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=None if cafile is None else str(cafile)
        )
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(
            f"STREAMER_KAFKA_SSL_CAFILE={cafile} is not a PEM file of CA certificates ({exc})"
        ) from None
    if settings.kafka_ssl_certfile is not None:
        keyfile = settings.kafka_ssl_keyfile
        try:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile), None if keyfile is None else str(keyfile)
            )
        except (OSError, ssl.SSLError) as exc:
            raise KafkaSecurityError(
                f"STREAMER_KAFKA_SSL_CERTFILE={settings.kafka_ssl_certfile} / "
                f"STREAMER_KAFKA_SSL_KEYFILE={keyfile} are not a PEM certificate and its "
                f"unencrypted key ({exc})"
            ) from None
    # The chain is always verified; only the name check can be turned off.
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def _password(settings: Settings) -> str | None:
    secret = settings.kafka_sasl_password
    return None if secret is None else secret.get_secret_value()


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if protocol.startswith("SASL_"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = _password(settings)
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """faust's ``broker_credentials`` for the settings (None for PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol.startswith("SASL_"):
        # faust picks SASL_SSL when given a context, SASL_PLAINTEXT otherwise.
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_password(settings),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    return None


def describe(settings: Settings) -> str:
    """The security in use, for logs: protocol, mechanism and user; never the password."""
    protocol = settings.kafka_security_protocol
    parts: list[str] = [protocol]
    if protocol.startswith("SASL_"):
        parts.append(f"{settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}")
    if protocol.endswith("SSL"):
        parts.append(f"CA {settings.kafka_ssl_cafile or 'system'}")
    return ", ".join(parts)


def _first_broker(settings: Settings) -> tuple[str, int]:
    first = settings.kafka_bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host, int(port) if port.isdigit() else 9092


async def explain_connection_failure(settings: Settings) -> tuple[str, bool] | None:
    """Why a client could not connect, as (sentence, permanent), or None if nothing is found.

    Connects once to the first bootstrap broker with the configured security and asks for
    metadata. ``permanent`` is True for refusals that retrying cannot cure (bad credentials, an
    untrusted certificate, a mechanism the broker does not offer): the caller should stop.
    A broker that refuses TCP or is still starting gives None.
    """
    host, port = _first_broker(settings)
    where = f"Kafka at {host}:{port}"
    protocol = settings.kafka_security_protocol
    security = aiokafka_security(settings)
    conn = None
    try:
        conn = await asyncio.wait_for(
            create_conn(
                host, port, request_timeout_ms=int(PROBE_TIMEOUT_SECONDS * 1000), **security
            ),
            PROBE_TIMEOUT_SECONDS,
        )
        await asyncio.wait_for(conn.send(MetadataRequest([])), PROBE_TIMEOUT_SECONDS)
    except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
        return (
            f"{where} refused the SASL credentials of user {settings.kafka_sasl_username!r} "
            f"({settings.kafka_sasl_mechanism}: {_reason(exc)}); check "
            "STREAMER_KAFKA_SASL_USERNAME, STREAMER_KAFKA_SASL_PASSWORD and "
            "STREAMER_KAFKA_SASL_MECHANISM",
            True,
        )
    except UnsupportedSaslMechanismError as exc:
        return (
            f"{where} does not offer SASL mechanism {settings.kafka_sasl_mechanism} "
            f"({_reason(exc)}); set STREAMER_KAFKA_SASL_MECHANISM to one it offers",
            True,
        )
    except ssl.SSLCertVerificationError as exc:
        return (
            f"the TLS certificate of {where} is not trusted ({exc.verify_message}); set "
            "STREAMER_KAFKA_SSL_CAFILE to the CA that signed it (or "
            "STREAMER_KAFKA_SSL_CHECK_HOSTNAME=false if only the host name differs)",
            True,
        )
    except ssl.SSLError as exc:
        return (
            f"the TLS handshake with {where} failed ({exc.reason or exc}); is that listener "
            f"TLS? STREAMER_KAFKA_SECURITY_PROTOCOL is {protocol}",
            True,
        )
    except ConnectionRefusedError:
        return None
    except (OSError, KafkaError) as exc:  # TimeoutError is an OSError
        if protocol.endswith("SSL"):
            hint = "does that listener speak TLS and the chosen SASL?"
        else:
            hint = "the listener may require TLS or SASL (SASL_SSL, SSL ...)"
        return (
            f"{where} accepted a TCP connection but dropped the first request "
            f"({type(exc).__name__}); with STREAMER_KAFKA_SECURITY_PROTOCOL={protocol}: {hint}",
            False,
        )
    finally:
        if conn is not None:
            conn.close()
    return None


def _reason(exc: BaseException) -> str:
    """A broker error's own words, bounded (no stack, no secrets: brokers never echo them)."""
    text = " ".join(str(arg) for arg in exc.args if isinstance(arg, str)) or type(exc).__name__
    return text[:300]
