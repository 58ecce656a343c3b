"""Shared test fixtures.

Tests that need ``../shared`` (golden outputs, test sets, training images) find it through
``SWINIR_SHARED``.  When it is missing they skip locally but *fail* under ``CI=true``, so a CI
run can never pass by silently skipping the reference checks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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


def run_swinir(*args: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``swinir ARGS`` in-process through the real entry point; (exit code, stdout, stderr)."""
    from swinir.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def offline_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point the model cache at an empty ``home`` and make any download fail the test."""
    from swinir.models import cache

    monkeypatch.setenv("SWINIR_HOME", str(home))

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("tests must not download anything")

    monkeypatch.setattr(cache, "download", no_network)
    return home
