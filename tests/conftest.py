"""Shared test fixtures.

Tests that need ``../shared`` (golden outputs, test sets, training images) find it through
``SWINIR_SHARED``.  When it is missing they skip locally but *fail* under ``CI=true``, so a CI
run can never pass by silently skipping the reference checks.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("SWINIR_SHARED", REPO_ROOT.parent / "shared")).resolve()


def require_shared(*parts: str) -> Path:
    """Path inside shared/, or skip (locally) / fail (in CI) when it does not exist."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        message = f"shared data not found: {path} (set SWINIR_SHARED)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared() -> Path:
    return require_shared()
