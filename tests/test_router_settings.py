"""Unit tests of the router's commit interval setting: parsing and the Faust setting it feeds."""

from __future__ import annotations

import pytest

from hookline.config import ConfigError, parse_config
from streams.app import _app_settings


def test_commit_interval_default_reaches_faust():
    config = parse_config({})

    settings = _app_settings(config, "memory://")

    assert settings["broker_commit_interval"] == config.router.commit_interval_seconds


def test_commit_interval_from_config():
    config = parse_config({"router": {"commit_interval_seconds": 0.05}})

    assert _app_settings(config, "memory://")["broker_commit_interval"] == 0.05


@pytest.mark.parametrize("value", [0, -1.0, "fast", True])
def test_commit_interval_invalid(value):
    with pytest.raises(ConfigError, match="router.commit_interval_seconds"):
        parse_config({"router": {"commit_interval_seconds": value}})
