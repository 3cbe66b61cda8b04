"""Tests of bench.processes with real child processes."""

import os
import subprocess
import sys

import pytest

from bench.processes import Service, ServiceSet, child_pids, rss_bytes, run_bounded

# A parent that starts a child and sleeps, so a stop must reach both.
PARENT_WITH_CHILD = (
    "import subprocess, sys, time;"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    "time.sleep(60)"
)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # kill(0) succeeds on a zombie too, so the state letter in /proc shows whether it exited.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid):
    """Return True once PID has exited; SIGKILL takes effect asynchronously."""
    for _ in range(100):
        if not _alive(pid):
            return True
        subprocess.run(["sleep", "0.05"], check=True)
    return False


def _wait_for_child(pid):
    for _ in range(100):
        children = child_pids(pid)
        if children:
            return children
        subprocess.run(["sleep", "0.05"], check=True)
    raise AssertionError(f"process {pid} started no child")


def test_service_stop_reaches_children(tmp_path):
    service = Service("parent", [sys.executable, "-c", PARENT_WITH_CHILD], tmp_path / "p.log")
    service.start()
    children = _wait_for_child(service.pid)
    assert service.rss_bytes() > 0
    service.stop(timeout=5)
    assert not service.running()
    assert all(_gone(child) for child in children)


def test_service_set_stops_on_exception(tmp_path):
    service = Service("sleeper", ["sleep", "60"], tmp_path / "s.log")
    with pytest.raises(RuntimeError, match="boom"), ServiceSet() as services:
        services.start(service)
        raise RuntimeError("boom")
    assert not service.running()


def test_check_running_reports_exit(tmp_path):
    service = Service("quick", [sys.executable, "-c", "print('bye')"], tmp_path / "q.log")
    service.start()
    service.process.wait()
    with pytest.raises(RuntimeError, match="quick exited with code 0"):
        service.check_running()


def test_run_bounded_kills_on_timeout():
    with pytest.raises(subprocess.TimeoutExpired):
        run_bounded(["sleep", "30"], timeout=0.5)


def test_run_bounded_calls_tick():
    ticks = []
    completed = run_bounded(
        ["sleep", "0.35"], timeout=10, on_tick=lambda: ticks.append(1), tick_seconds=0.1
    )
    assert completed.returncode == 0
    assert ticks


def test_rss_of_missing_process_is_zero():
    assert rss_bytes(2**22 + 12345) == 0
