"""Every process of the platform exits within seconds of SIGTERM, broker or not.

Each process stops gracefully on SIGTERM/SIGINT (nameko's runner, the relay's
loop, the SFU's rooms). A graceful stop can hang: nameko's runner waits for a
broker that is gone, a publisher waits for confirms that will never come. So the
first stop signal also arms a deadline: ``SFERA_STOP_GRACE`` seconds (default 5)
later the kernel ends the process (SIGALRM with its default action, which needs
no Python code to run, so it works even when the interpreter is stuck in C or
eventlet's hub never gets back to us).
"""

from __future__ import annotations

import logging
import os
import signal

DEFAULT_GRACE = 5.0

log = logging.getLogger("shared.shutdown")


def grace() -> float:
    value = os.environ.get("SFERA_STOP_GRACE", "")
    return float(value) if value else DEFAULT_GRACE


def exit_within(seconds: float | None = None) -> float:
    """Arm the deadline (once; a second call keeps the first deadline); returns the seconds armed."""
    seconds = grace() if seconds is None else seconds
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    if remaining:
        return remaining
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    log.info("stopping", extra={"forced_exit_in_s": seconds})
    return seconds
