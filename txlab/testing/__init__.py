"""Test your own application code against a real PostgreSQL, with pytest and hypothesis.

    from txlab.testing import stress, interleave

    r = interleave([book, book], engine=engine, invariant=one_booking_per_seat)
    assert r.ok, r.explain()      # the shortest failing schedule, step by step

- `stress(fn, engine=... | dsn=...)`: call your function from many threads at once;
  it commits, rolls back and retries as in production; txlab only watches.
- `interleave(fns, engine=... | dsn=...)`: run one function per session and choose,
  statement by statement, which session goes next (the isolation tester's idea);
  explores the schedules, shrinks a failure, and writes it as a replayable spec.
- `run(scenario, dsn)`, `postgres()`, `knob_values()`: txlab's scenario API.
- `txlab.testing.strategies`: hypothesis strategies (isolation levels, worker
  counts, schedules).
- Installing txlab registers a pytest plugin (`txlab.testing.plugin`) with the
  fixtures `txlab_dsn`, `txlab_engine` and `txlab_schema_dsn`.

Names are imported on first use, so that loading the pytest plugin costs nothing.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "postgres": "scenarios", "run": "scenarios", "knob_values": "scenarios",
    "Result": "scenarios",
    "stress": "stressing", "StressResult": "stressing",
    "interleave": "interleaving", "InterleaveResult": "interleaving",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'txlab.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"txlab.testing.{module}"), name)
