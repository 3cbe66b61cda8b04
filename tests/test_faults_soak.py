"""Soak test: ten minutes of load with a fault every minute; deselected unless `-m soak`.

    .venv/bin/python -m pytest -m soak -s

$HOOKLINE_SOAK_MINUTES changes the duration and $HOOKLINE_FAULT_RESULTS names a
file that collects the result line as JSON. `tests/soak.py` runs the same
from the command line with more options.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fault_checks import assert_nothing_lost, report
from soak import run_soak

SOAK_MINUTES = float(os.environ.get("HOOKLINE_SOAK_MINUTES", "10"))
# Signing, start-up and the final read of every topic and row come on top of the load.
SETUP_AND_CHECK_SECONDS = 900

pytestmark = [pytest.mark.integration, pytest.mark.soak]


@pytest.mark.timeout(int(SOAK_MINUTES * 60) + SETUP_AND_CHECK_SECONDS)
async def test_soak_with_repeated_faults(tmp_path: Path) -> None:
    result = await run_soak(tmp_path, SOAK_MINUTES, rate=120.0, fault_interval=60.0)

    report(result)
    assert result.details["faults"], "the run ended before its first fault"
    assert_nothing_lost(result)
