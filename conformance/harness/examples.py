"""Hypothesis examples per backend and variant: the example-database key of a property's run, the explicit
replay of another backend's saved failures, and the time bound on shrinking one failing test. Used by the
pytest plugin (:mod:`.plugin`), which installs them around each property run.
"""

from __future__ import annotations

import functools
import time

__all__ = ["ShrinkBound", "ReplayDatabase", "database_key"]


class ShrinkBound:
    """The property's inner test (what hypothesis calls once per example), bounding shrinking in time.

    After the first failing example every further call is a shrink step until hypothesis' final replay of
    the smallest failure. Past ``seconds`` from that first failure a step ends without running (not
    interesting to the shrinker, which then stops improving and replays the smallest failure found). The
    final replay hands the bound and the steps taken to the ``check`` fixture, whose failing record keeps them.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.first_failure: float | None = None
        self.steps = self.not_run = 0

    def wrap(self, inner):
        """``inner`` bounded; a plain function, as hypothesis rewrites its test's code object."""
        bound = self

        @functools.wraps(inner)  # function_digest (the database key) reads the inner source through this
        def bounded(*args, **kwargs):
            from hypothesis.control import current_build_context

            final = bool(current_build_context().is_final)
            if bound.first_failure is not None:
                elapsed = time.perf_counter() - bound.first_failure
                if final and hasattr(kwargs.get("check"), "shrink"):
                    kwargs["check"].shrink = {"bound_s": bound.seconds, "steps": bound.steps,
                                              "not_run": bound.not_run, "seconds": round(elapsed, 3),
                                              "stopped_by_bound": bound.not_run > 0}
                elif not final:
                    bound.steps += 1
                    if elapsed > bound.seconds:
                        bound.not_run += 1
                        # ended before it draws anything: an overrun is uninteresting to the shrinker and,
                        # unlike a rejection, not held against the choices the same prefix drew before
                        current_build_context().data.mark_overrun()
            try:
                return inner(*args, **kwargs)
            except Exception as exc:  # hypothesis' own control flow (reject, stop) is not a failure
                from hypothesis.errors import HypothesisException, StopTest, UnsatisfiedAssumption

                if (bound.first_failure is None and not final
                        and not isinstance(exc, (UnsatisfiedAssumption, StopTest, HypothesisException))):
                    bound.first_failure = time.perf_counter()
                raise

        return bounded


class ReplayDatabase:
    """An example database that also reads other keys' entries for a key (``--replay-failures-from``); saves,
    deletes and moves go to the wrapped database under the test's own key only."""

    def __new__(cls, db, extra: dict[bytes, list[bytes]], counts: dict):
        from hypothesis.database import ExampleDatabase

        class _Replay(ExampleDatabase):
            def fetch(self, key):
                seen = set()
                for k in [key] + extra.get(key, []):
                    for value in db.fetch(k):
                        if value not in seen:
                            seen.add(value)
                            if k != key:
                                counts[k] = counts.get(k, 0) + 1
                            yield value

            def save(self, key, value):
                db.save(key, value)

            def delete(self, key, value):
                db.delete(key, value)

            def move(self, src, dest, value):
                db.move(src, dest, value)

        return _Replay()


def database_key(item, name: str, variant: str) -> bytes:
    """The part of a property's example-database key naming its backend, variant and other parameters."""
    others = {k: v for k, v in item.callspec.params.items() if k != "backend_variant"}
    return f"{item.nodeid.split('[')[0]}|{name}:{variant}|{others!r}".encode()
