"""Shared test fixtures.

Tests that need ``../shared`` (golden outputs, test sets, training images) find it through
``SWINIR_SHARED``.  When it is missing they skip locally but *fail* under ``CI=true``, so a CI
run can never pass by silently skipping the reference checks.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _private_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The whole run caches models (OpenVINO conversions of test networks included) in a folder of
    its own, not in the user's cache; tests that need a particular one still set ``SWINIR_HOME``."""
    saved = os.environ.get("SWINIR_HOME")
    os.environ["SWINIR_HOME"] = str(tmp_path_factory.mktemp("swinir-home"))
    yield
    if saved is None:
        os.environ.pop("SWINIR_HOME", None)
    else:
        os.environ["SWINIR_HOME"] = saved


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


def require_openvino() -> None:
    """Skip without openvino locally; fail under CI (``make test`` installs it)."""
    if importlib.util.find_spec("openvino") is None:
        message = "openvino is not installed (pip install openvino)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


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


def tiny_denoiser(path: Path, seed: int, **overrides: Any) -> Path:
    """Save a tiny random-weight ×1 SwinIR (a stand-in for a level-specific model) to ``path``."""
    import torch

    from swinir import SwinIR, save_model

    torch.manual_seed(seed)
    args: dict[str, Any] = dict(in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=8, mlp_ratio=2,
                                upsampler="", upscale=1)
    args.update(overrides)
    return save_model(SwinIR(**args), path)


def use_level_models(monkeypatch: pytest.MonkeyPatch, models: dict[int, Path]) -> None:
    """Make ``models`` ({level: checkpoint}) the level models every task has offline (what
    ``--noise auto`` / ``--jpeg auto`` choose from, here and, by path, on Ray workers)."""
    from swinir.models import selection

    choices = {level: selection.ModelChoice(str(path), str(path)) for level, path in models.items()}
    monkeypatch.setattr(selection, "level_models", lambda task: dict(choices))
