"""Count XLA compilations, through jax.monitoring's compile events."""

import contextlib

import jax

_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compilations():
    """Yield a list that receives one entry per XLA compilation in the block."""
    seen = []

    def listener(event, duration, **kwargs):
        if event == _EVENT:
            seen.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
