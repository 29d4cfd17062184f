"""XLA's persistent compilation cache of the JAX-based adapters (conformance/adapters/jax_cache.py): on by
default in the user's cache folder, moved or switched off by ``LSTM_CONFORMANCE_JAX_CACHE_DIR``."""

from __future__ import annotations

import pytest

from conformance.adapters.jax_cache import DEFAULT_DIR, JAX_CACHE_ENV, cache_dir


@pytest.mark.parametrize("value, expect", [(None, str(DEFAULT_DIR)), ("/ci/cache/jax", "/ci/cache/jax"),
                                           ("off", None), ("", None), ("OFF", None), ("0", None)])
def test_cache_folder_follows_the_environment(monkeypatch, value, expect):
    if value is None:
        monkeypatch.delenv(JAX_CACHE_ENV, raising=False)
    else:
        monkeypatch.setenv(JAX_CACHE_ENV, value)
    assert cache_dir() == expect


def test_default_folder_is_the_suites_user_cache():
    assert DEFAULT_DIR.parts[-3:] == (".cache", "lstm-conformance", "jax")


def test_an_adapter_without_the_default_uses_the_cache_only_where_asked(monkeypatch):
    monkeypatch.delenv(JAX_CACHE_ENV, raising=False)
    assert cache_dir(default_on=False) is None
    monkeypatch.setenv(JAX_CACHE_ENV, "/ci/cache/jax")
    assert cache_dir(default_on=False) == "/ci/cache/jax"
