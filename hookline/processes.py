"""Child processes that do not outlive the process that started them."""

from __future__ import annotations

import ctypes
import signal
import sys

# prctl option from <linux/prctl.h>: the signal the kernel sends a child when
# its parent thread exits.
PR_SET_PDEATHSIG = 1


def terminate_with_parent() -> None:
    """Ask the kernel to send SIGTERM to this process when its parent exits.

    Pass as `preexec_fn` to subprocess.Popen. Children started in a session of
    their own miss the terminal's SIGHUP, and a parent killed with SIGKILL
    cannot stop them, so without this they would keep their ports and data
    folders. Does nothing outside Linux.

    NOTE: the kernel ties this to the thread that started the child, so start
    children from a thread that lives as long as they should, such as the
    main thread.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
