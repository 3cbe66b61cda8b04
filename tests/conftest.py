"""Shared pytest fixtures and markers for Hookline's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hookline.broker import LocalBroker, find_free_ports


def pytest_configure(config: pytest.Config) -> None:
    # A conftest module holds one pytest_configure, so every part registers its markers here.
    config.addinivalue_line(
        "markers", "integration: runs against real services, such as a local Kafka broker"
    )


# --- Kafka broker ---------------------------------------------------------------------------
# One real single-node broker (hookline.broker.LocalBroker) for the whole test session, on
# free loopback ports and in a temporary folder. Tests that stop or kill a broker start their
# own LocalBroker instead of this one, and each test uses a topic of its own.

KAFKA_READY_TIMEOUT_SECONDS = 120.0


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """Start a Kafka broker for the test session and stop it at the end."""
    port, controller_port = find_free_ports(2)
    broker = LocalBroker(
        data_dir=tmp_path_factory.mktemp("kafka"), port=port, controller_port=controller_port
    )
    broker.start()
    try:
        broker.wait_ready(KAFKA_READY_TIMEOUT_SECONDS)
        yield broker
    finally:
        broker.stop()


# --- end of Kafka broker --------------------------------------------------------------------
