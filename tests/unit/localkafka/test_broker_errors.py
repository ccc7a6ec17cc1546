"""The local broker's failures are one sentence saying what to do (no broker needed)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from streamer.localkafka.broker import LocalKafka, LocalKafkaError
from streamer.settings import load_settings


def broker(tmp_path: Path, port: int = 1) -> LocalKafka:
    return LocalKafka(
        load_settings(
            state_dir=tmp_path,
            kafka_bootstrap=f"127.0.0.1:{port}",
            kafka_libs_dir=tmp_path / "libs",
        )
    )


@pytest.mark.parametrize(
    ("tool", "hint"), [("mvn", "apt-get install -y maven"), ("java", "openjdk-17")]
)
def test_missing_tool_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tool: str, hint: str
) -> None:
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == tool else real_which(name))
    with pytest.raises(LocalKafkaError, match=hint):
        broker(tmp_path).install()


def test_port_in_use_names_the_port_and_the_variable(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(LocalKafkaError, match=f"port {port}.*STREAMER_KAFKA_BOOTSTRAP"):
            broker(tmp_path, port).start()


def test_bad_bootstrap_is_explained(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match="host:port"):
        LocalKafka(load_settings(state_dir=tmp_path, kafka_bootstrap="localhost"))


def test_status_of_a_broker_never_started(tmp_path: Path) -> None:
    status = broker(tmp_path).status()
    assert not status.running and status.pid is None
    assert "not running" in status.describe()


def test_stop_when_not_running_is_harmless(tmp_path: Path) -> None:
    assert broker(tmp_path).stop() is False
