"""Where the arbiter's in-order output goes: a *sink*, chosen by its type at compile time.

A sink is a NamedTuple of arrays (loop.py's PipelineSink: the decoder and the pipeline; a
test's recorder; a benchmark's counter). `register_sink(SinkClass, fn)` names the jitted
`fn(sink, st_buf, st_meta, n)` that takes the staged rows; the arbiter calls
`deliver(sink, ...)` by name and numba picks `fn` from the sink's type when it compiles.

Why not pass `fn` as an argument (as the arbiter once did): a dispatcher handed on as a value
is lowered to this process's address of the function object, a "dynamic global" — numba will
not cache any function whose code holds one, so the A/B loop recompiled at every start.
"""
from __future__ import annotations

from numba.core import types
from numba.extending import overload

_SINKS: dict[type, object] = {}


def register_sink(sink_class: type, fn) -> None:
    """Deliveries to a `sink_class` instance go to the jitted `fn(sink, st_buf, st_meta, n)`."""
    _SINKS[sink_class] = fn


def deliver(sink, st_buf, st_meta, n):
    """Hand staged rows [0, n) to the sink (jitted code only; numba resolves it by sink type)."""
    raise NotImplementedError("deliver() runs inside jitted code only")


@overload(deliver, jit_options={"nogil": True})
def _deliver_for(sink, st_buf, st_meta, n):
    if not isinstance(sink, types.BaseNamedTuple):
        return None
    fn = _SINKS.get(sink.instance_class)
    if fn is None:
        return None   # numba reports the unresolved call, naming the sink's type

    def impl(sink, st_buf, st_meta, n):
        fn(sink, st_buf, st_meta, n)
    return impl
