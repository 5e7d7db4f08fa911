"""The child processes of `up` and of `serve --processes N`: each in a session of its own (so
Ctrl-C in a terminal reaches only the parent, which then stops them in order) and, on Linux,
sent SIGTERM by the kernel when the parent dies however it dies, SIGKILL included, so that
none is left holding the port or draining the queue with nobody watching."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

PR_SET_PDEATHSIG = 1


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(argv, **kwargs)` in a new session, stopped when this process dies."""
    return subprocess.Popen(list(argv), start_new_session=True,
                            preexec_fn=_die_with(os.getpid()), **kwargs)


def _die_with(parent: int) -> Callable[[], None] | None:
    """What the child runs between fork and exec: ask for SIGTERM at the parent's death, and
    exit at once if the parent died before the request was made. The C function is looked up
    here, in the parent, so that the forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def request() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return request
