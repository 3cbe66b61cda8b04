"""Facts about the machine a benchmark ran on: cores, CPU model, memory, load and tool versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Return the first `model name` in /proc/cpuinfo, or "unknown"."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return "unknown"


def memory_total_mib(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Return MemTotal from /proc/meminfo in MiB, or None when it cannot be read."""
    try:
        text = meminfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def load_average() -> tuple[float, float, float]:
    """Return the 1, 5 and 15 minute load averages."""
    return os.getloadavg()


def tool_version(command: list[str]) -> str:
    """Return the first output line of COMMAND (a version query), or "missing"."""
    if shutil.which(command[0]) is None:
        return "missing"
    completed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    output = (completed.stdout or completed.stderr).strip()
    return output.splitlines()[0] if output else "unknown"


def describe() -> dict[str, Any]:
    """Return the machine facts that the results page states."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_total_mib": memory_total_mib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "node": tool_version(["node", "--version"]),
        "java": tool_version(["java", "-version"]),
        "wrk": tool_version(["wrk", "--version"]),
    }
