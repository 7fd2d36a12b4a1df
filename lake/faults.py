"""Fault points: named steps at which the fault-matrix tests kill the process, to prove that a
crash exactly there loses and doubles nothing.

Inert unless the environment variable ``TICKLAKE_FAULT`` names the point (read at the call, never
at import); then the process sends itself SIGKILL, as a power cut or the OOM killer would.
"""

from __future__ import annotations

import os
import signal

ENV = "TICKLAKE_FAULT"


def fault_point(name: str) -> None:
    """Die here (SIGKILL) when ``TICKLAKE_FAULT`` equals `name`, e.g. ``compact.after_data_write``."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
