"""Lock state of an embedded ClickHouse (chDB) data folder.

chDB 4.4 takes an exclusive `flock` on `<folder>/status` while a process has
the folder open, and writes `PID: <pid>` into that file. The lock goes away
when the process exits, SIGKILL included. The folder is never locked here for
longer than the probe itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path

STATUS_FILE = "status"
PID_PATTERN = re.compile(rb"^PID:\s*(\d+)", re.MULTILINE)


def lock_owner(folder: Path) -> int | None:
    """Return the PID of the process that has FOLDER open, or None when it is free.

    Returns -1 when the folder is locked but its status file names no PID.
    """
    status = folder / STATUS_FILE
    try:
        fd = os.open(status, os.O_RDONLY)
    except FileNotFoundError:
        return None

    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            return _read_pid(status)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(status: Path) -> int:
    try:
        match = PID_PATTERN.search(status.read_bytes())
    except OSError:
        return -1
    return int(match.group(1)) if match else -1
