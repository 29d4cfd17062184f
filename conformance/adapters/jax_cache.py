"""XLA's persistent compilation cache for the adapters that compile with JAX (keras-jax; flax when asked).

Almost every drawn case is a new structure and so a new XLA program (~0.3-0.7 s of CPU to compile on two
cores, most of a keras-jax or flax check). With the cache on, a program compiled once is loaded from disk
wherever it comes back: within one run (measured: 91 of 392 programs of keras-jax's equation and gradient
properties repeat, e.g. the ``default`` and ``rnn-cell`` variants compile the same program), and in every
later run (a derandomized profile draws the same cases each time). The cache key is the program, the XLA
flags, the device and the jax/jaxlib versions, so a loaded program is the one the compiler would build.

Measured (``ci`` profile, identical verdicts): keras-jax's equation and gradient properties 1.40x per
CPU-second with a cold cache (91 of 392 programs repeat within the run), 4.6x warm; flax's equation property
2.3x warm but 14 % more CPU cold (no program repeats; writing the entries costs), so flax uses the cache only
where the environment names a folder (a CI that keeps it, a rerun).

``LSTM_CONFORMANCE_JAX_CACHE_DIR`` names the folder (default ``~/.cache/lstm-conformance/jax``, kept at most
``MAX_BYTES``, least recently used programs dropped first, where ``filelock`` is installed); ``off`` (or an
empty value) compiles every program.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["JAX_CACHE_ENV", "DEFAULT_DIR", "cache_dir", "use_compilation_cache"]

JAX_CACHE_ENV = "LSTM_CONFORMANCE_JAX_CACHE_DIR"
DEFAULT_DIR = Path.home() / ".cache" / "lstm-conformance" / "jax"
MAX_BYTES = 1 << 30  # a keras-jax ci run writes ~30 MB; random profiles add their new programs each run
_OFF = ("", "0", "off", "none", "false")
_state: dict[str, str | None] = {"dir": None}


def cache_dir(default_on: bool = True) -> str | None:
    """The folder the cache uses, or None when switched off (unset and not ``default_on``: off)."""
    value = os.environ.get(JAX_CACHE_ENV)
    if value is None:
        return str(DEFAULT_DIR) if default_on else None
    return None if value.strip().lower() in _OFF else value


def use_compilation_cache(default_on: bool = True) -> str | None:
    """Point JAX at :func:`cache_dir` (once per folder and process); returns the folder in use or None.
    ``default_on=False`` (flax) uses the cache only where the environment names a folder."""
    folder = cache_dir(default_on)
    if folder is None or _state["dir"] == folder:
        return _state["dir"]
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the suite's programs are small
    if hasattr(jax.config, "jax_persistent_cache_min_entry_size_bytes"):
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if hasattr(jax.config, "jax_compilation_cache_max_size") and importlib.util.find_spec("filelock"):
        # the bound needs filelock (in the keras-jax and flax extras); without it JAX refuses every entry
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    _state["dir"] = folder
    return folder
