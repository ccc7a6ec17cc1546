"""A second local Kafka with only a SASL_SSL listener (SCRAM users, a test CA), for security tests.

Certificates and passwords are made fresh for each run in a temporary directory (never committed):
a CA, a broker certificate for 127.0.0.1 signed by it, and a second CA that signed nothing (to
prove an untrusted broker is refused). SCRAM users are written into the metadata log when the
storage is formatted (``kafka-storage format --add-scram``), so there is no window in which the
broker runs without them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamer.kafka_security import aiokafka_security
from streamer.localkafka.broker import LocalKafka, LocalKafkaError
from streamer.settings import Settings, load_settings
from tests.support.kafka import TEST_PORT
from tests.support.settings import KAFKA_LIBS_DIR, REPO, worker_settings
from tests.support.topics import Record, read_topic

# Beside the plain test broker (TEST_PORT, TEST_PORT + 1), in the same per-session port block.
SECURE_PORT = int(os.environ.get("STREAMER_TEST_SECURE_KAFKA_PORT", str(TEST_PORT + 6)))
SECURE_CONTROLLER_PORT = SECURE_PORT + 1
SECURE_STATE_DIR = REPO / ".streamer" / f"test-secure-{SECURE_PORT}"
USER = "streamer"
BROKER_USER = "broker"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


@dataclass(frozen=True)
class Certificates:
    ca: Path  # signed the broker's certificate
    other_ca: Path  # signed nothing the broker holds
    broker_pem: Path  # broker key (PKCS#8) and certificate, for ssl.keystore.type=PEM


def run_openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(
            "openssl is needed to make the test CA; install it (Debian: sudo apt-get install -y "
            "openssl)",
            pytrace=False,
        )
    proc = subprocess.run(
        [openssl, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if proc.returncode != 0:
        pytest.fail(f"openssl {' '.join(args[:2])} failed:\n{proc.stderr[-2000:]}", pytrace=False)


def make_certificates(directory: Path) -> Certificates:
    """A CA, a broker certificate for 127.0.0.1/localhost signed by it, and an unrelated CA."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        run_openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN=streamer test {name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem",
            cwd=directory,
        )  # fmt: skip
    run_openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "broker.key", "-out", "broker.csr",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run_openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.crt",
        cwd=directory,
    )  # fmt: skip
    broker_pem = directory / "broker.pem"
    broker_pem.write_text(
        (directory / "broker.key").read_text() + (directory / "broker.crt").read_text()
    )
    return Certificates(directory / "ca.pem", directory / "other-ca.pem", broker_pem)


def broker_overrides(
    host: str, port: int, controller_port: int, certs: Certificates, broker_password: str
) -> dict[str, str]:
    """server.properties over the template: one SASL_SSL listener for clients and the broker."""
    jaas = f'{SCRAM_LOGIN} required username="{BROKER_USER}" password="{broker_password}";'
    return {
        "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{port}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": jaas,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs.broker_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certs.ca),
        "ssl.endpoint.identification.algorithm": "https",
    }


@dataclass
class SecureKafka:
    __test__ = False

    bootstrap: str
    broker: LocalKafka
    certs: Certificates
    password: str  # of USER, for SCRAM-SHA-256 and SCRAM-SHA-512
    state_dir: Path

    def settings(self, **overrides: object) -> Settings:
        """Worker settings for this broker over SASL_SSL, with app id and topics unique to the
        caller (:func:`tests.support.settings.worker_settings`)."""
        security: dict[str, object] = {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-256",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": self.password,
            "kafka_ssl_cafile": self.certs.ca,
        }
        return worker_settings(
            self.bootstrap,
            SECURE_CONTROLLER_PORT,
            self.state_dir,
            app_prefix="secure",
            **{**security, **overrides},
        )

    def stop(self) -> None:
        self.broker.stop()


def start_secure_kafka(cert_dir: Path) -> SecureKafka:
    """Start the SASL_SSL broker on SECURE_PORT with a fresh log dir and fresh secrets."""
    certs = make_certificates(cert_dir)
    password = "pw-" + secrets.token_hex(12)
    broker_password = "pw-" + secrets.token_hex(12)
    host = "127.0.0.1"
    settings = load_settings(
        state_dir=SECURE_STATE_DIR,
        kafka_bootstrap=f"{host}:{SECURE_PORT}",
        kafka_controller_port=SECURE_CONTROLLER_PORT,
        kafka_libs_dir=KAFKA_LIBS_DIR,
        topic_partitions=4,
    )
    broker = LocalKafka(
        settings,
        config_overrides=broker_overrides(
            host, SECURE_PORT, SECURE_CONTROLLER_PORT, certs, broker_password
        ),
        scram_credentials=[
            f"SCRAM-SHA-512=[name={BROKER_USER},password={broker_password}]",
            f"SCRAM-SHA-256=[name={USER},password={password}]",
            f"SCRAM-SHA-512=[name={USER},password={password}]",
        ],
    )
    if broker.status().running:
        broker.stop()
    shutil.rmtree(SECURE_STATE_DIR, ignore_errors=True)
    try:
        broker.start()
    except LocalKafkaError as exc:
        pytest.fail(
            f"the SASL_SSL test Kafka did not start: {exc}\n"
            "Run ./scripts/test.sh (it installs Java, Maven and the Kafka jars) or "
            "`streamer kafka install`; set STREAMER_TEST_SECURE_KAFKA_PORT if the port is taken.",
            pytrace=False,
        )
    return SecureKafka(
        bootstrap=f"{host}:{SECURE_PORT}",
        broker=broker,
        certs=certs,
        password=password,
        state_dir=SECURE_STATE_DIR,
    )


async def read_secure(
    settings: Settings, topic: str, *, until: Callable[[list[Record]], bool], timeout_seconds: float
) -> list[Record]:
    """Read ``topic`` from the beginning with the settings' security until ``until`` holds."""
    return await read_topic(
        settings.kafka_bootstrap,
        topic,
        until=until,
        timeout_seconds=timeout_seconds,
        client_options=aiokafka_security(settings),
    )
