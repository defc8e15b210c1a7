"""Shared fixtures: keep the user's reference cache untouched for the whole session."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def session_cache_dir(tmp_path_factory):
    """Point EVO_CACHE_DIR at one per-session directory (subprocesses inherit it).

    One directory for the whole session lets tests that use the same point sets (same target,
    data_seed and sizes) share the mpmath references instead of recomputing them. Tests that
    set their own EVO_CACHE_DIR with monkeypatch still win for their own duration.
    """
    directory = tmp_path_factory.mktemp("evo-cache")
    previous = os.environ.get("EVO_CACHE_DIR")
    os.environ["EVO_CACHE_DIR"] = str(directory)
    yield directory
    if previous is None:
        os.environ.pop("EVO_CACHE_DIR", None)
    else:
        os.environ["EVO_CACHE_DIR"] = previous
