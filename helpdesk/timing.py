"""Phases of a request's time, for its ``Server-Timing`` header (helpdesk/asgi_handler.py).

Code on the request's thread adds the seconds a phase took (``phase_add("push", seconds)``); the handler reports
each phase beside ``app`` and ``wait``. Per thread, and each request runs its middleware and view on a thread of
its own (Django's thread-sensitive context under ASGI), so requests do not mix; outside a request nothing reads
what is added, and the next request on that thread starts afresh (``phases_take``)."""

import threading

_local = threading.local()


def phase_add(name: str, seconds: float) -> None:
    phases = getattr(_local, "phases", None)
    if phases is None:
        phases = _local.phases = {}
    phases[name] = phases.get(name, 0.0) + seconds


def phases_take() -> dict[str, float]:
    """The phases recorded on this thread since the last call, and a fresh start."""
    phases = getattr(_local, "phases", None) or {}
    _local.phases = {}
    return phases
