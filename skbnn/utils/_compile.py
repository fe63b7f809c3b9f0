"""Keep a long-lived process clear of the kernel's limit on memory mappings.

XLA:CPU maps the machine code of every compiled program into memory with
about ten separate mappings, and JAX keeps every compiled program alive in
its caches. Linux allows a process ``vm.max_map_count`` mappings (65,530 by
default); a process that compiles a few thousand programs, as scikit-learn's
estimator checks or a search over many architectures and data shapes do,
reaches it, and the next compilation dies with a segmentation fault instead
of an error.

:func:`release_compiled_programs` runs at the top of every ``fit``: when the
process holds more than half its allowance of mappings, it drops JAX's
compiled programs (``jax.clear_caches()``), which unmaps them. Later calls
compile again, on demand; nothing else changes. Where ``/proc`` is missing
(macOS, Windows) it does nothing.
"""

import gc
import logging

import jax

__all__ = ["release_compiled_programs"]

logger = logging.getLogger(__name__)

_MAPS = "/proc/self/maps"
_LIMIT = "/proc/sys/vm/max_map_count"

#: Drop compiled programs above this share of ``vm.max_map_count``.
SHARE = 0.5
#: After a release, wait for this many new mappings before the next one, so a
#: process whose own (non-JAX) mappings sit above the threshold is not made to
#: recompile at every fit.
MIN_GROWTH = 4096

_state = {"limit": None, "floor": None}  # floor: mappings left after the last release


def _count_mappings():
    try:
        with open(_MAPS, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return None


def _map_limit():
    if _state["limit"] is None:
        try:
            with open(_LIMIT) as f:
                _state["limit"] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            _state["limit"] = 0  # unknown: never release
    return _state["limit"]


def release_compiled_programs(share=SHARE):
    """Drop JAX's compiled programs when this process holds many memory mappings.

    Returns True when it released them.
    """
    limit = _map_limit()
    if not limit:
        return False
    count = _count_mappings()
    if count is None or count < share * limit:
        return False
    if _state["floor"] is not None and count < _state["floor"] + MIN_GROWTH:
        return False
    jax.clear_caches()
    gc.collect()
    after = _count_mappings() or 0
    _state["floor"] = after
    logger.info(
        "Released JAX's compiled programs: the process held %d of its %d memory mappings "
        "(%d after).", count, limit, after,
    )
    return True
