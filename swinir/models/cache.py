"""Local copies of the zoo's checkpoints: where they live, how they are fetched and verified.

Files are downloaded into :func:`cache_dir` by :func:`fetch`.  A downloaded file is always checked
before it is used: size and SHA-256 where the manifest has them, and in every case the state
dict itself (every key and shape must match the manifest, :func:`verify_checkpoint`).  A file
that fails is deleted, so the cache only ever holds verified files.  A verified file gets a small
``<file>.verified`` marker so it is not hashed again on every use.

Bundled entries (:attr:`ZooEntry.bundled`) have no URL: :func:`fetch` returns their package file.

Example::

    from swinir.models import cache, zoo
    path = cache.fetch(zoo.find_model("classical_sr", scale=4))   # downloaded once, then cached
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import urllib.parse
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from swinir.assets import asset
from swinir.core.errors import ChecksumError, DownloadError, ZooError
from swinir.models.download import ProgressCallback, download, sha256_file
from swinir.models.statedict import unwrap_state_dict
from swinir.models.zoo import ZooEntry, get_entry

__all__ = ["cache_dir", "entry_url", "cached_path", "fetch", "verify_checkpoint"]

logger = logging.getLogger(__name__)

_VERIFIED_SUFFIX = ".verified"

# --------------------------------------------------------------------------------------------
# Cache and download
# --------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """Folder that holds downloaded checkpoints (not created by this call).

    ``$SWINIR_HOME`` when set; otherwise the platform cache folder: ``$XDG_CACHE_HOME/swinir``
    or ``~/.cache/swinir`` on Linux, ``~/Library/Caches/swinir`` on macOS and
    ``%LOCALAPPDATA%\\swinir\\cache`` on Windows.
    """
    home = os.environ.get("SWINIR_HOME")
    if home:
        return Path(home).expanduser()
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
        return base / "swinir" / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "swinir"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "swinir"


def entry_url(entry: str | ZooEntry, base_url: str | None = None) -> str | None:
    """Where ``entry`` is downloaded from: ``base_url`` (or ``$SWINIR_BASE_URL``) + file name
    when given, else the entry's own URL (None for bundled entries)."""
    entry = get_entry(entry)
    if entry.bundled:
        return None
    base = base_url or os.environ.get("SWINIR_BASE_URL")
    if base:
        return f"{base.rstrip('/')}/{urllib.parse.quote(entry.filename)}"
    return entry.url


def _bundled_path(entry: ZooEntry) -> Path | None:
    """Filesystem path of a bundled file (extracted to the cache if the package is zipped)."""
    assert entry.bundled_file is not None
    resource = asset(entry.bundled_file)
    if not resource.is_file():
        return None
    if isinstance(resource, Path):
        return resource
    target = cache_dir() / "bundled" / entry.bundled_file
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with resources.as_file(resource) as extracted:
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(extracted, tmp)
            os.replace(tmp, target)
    return target


def _keys_digest(entry: ZooEntry) -> str:
    digest = hashlib.sha256()
    for key in sorted(entry.keys):
        digest.update(f"{key}:{entry.keys[key]};".encode())
    return digest.hexdigest()


def _marker_path(path: Path) -> Path:
    return path.with_name(path.name + _VERIFIED_SUFFIX)


def _marker_record(path: Path, entry: ZooEntry) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": entry.sha256,
            "keys": _keys_digest(entry)}


def _write_marker(path: Path, entry: ZooEntry) -> None:
    """Remember that ``path`` (as it is now) passed verification for ``entry``."""
    marker = _marker_path(path)
    tmp = marker.with_name(marker.name + ".tmp")
    try:
        tmp.write_text(json.dumps(_marker_record(path, entry)), encoding="utf-8")
        os.replace(tmp, marker)
    except OSError as error:  # a read-only cache still works, it is just re-verified each time
        logger.debug("could not write %s: %s", marker, error)


def _marker_valid(path: Path, entry: ZooEntry) -> bool:
    try:
        stored = json.loads(_marker_path(path).read_text(encoding="utf-8"))
        return stored == _marker_record(path, entry)
    except (OSError, ValueError):
        return False


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    _marker_path(path).unlink(missing_ok=True)


def cached_path(entry: str | ZooEntry) -> Path | None:
    """The verified local file for ``entry``, or None when it is not available yet.

    Bundled entries resolve to their package file.  A cached file is fully verified the first
    time it is seen (e.g. after it was put there by hand) and remembered through a small
    ``<file>.verified`` marker; a file that fails verification is deleted.
    """
    entry = get_entry(entry)
    if entry.bundled:
        return _bundled_path(entry)
    path = cache_dir() / entry.filename
    if not path.is_file():
        return None
    if _marker_valid(path, entry):
        return path
    try:
        if entry.size is not None and path.stat().st_size != entry.size:
            raise ChecksumError(f"{path} is {path.stat().st_size} bytes, expected {entry.size}")
        if entry.sha256 is not None and sha256_file(path) != entry.sha256.lower():
            raise ChecksumError(f"{path} does not have the SHA-256 of {entry.filename}")
        verify_checkpoint(path, entry)
    except ChecksumError as error:
        logger.warning("deleting cached %s: %s", path, error)
        _discard(path)
        return None
    _write_marker(path, entry)
    return path


def fetch(
    name_or_entry: str | ZooEntry,
    *,
    progress: bool | ProgressCallback = True,
    base_url: str | None = None,
) -> Path:
    """Local path of a verified checkpoint, downloading it into :func:`cache_dir` if needed.

    Args:
        name_or_entry: a checkpoint name (see :func:`get_entry`) or an entry.
        progress: tqdm bar on stderr (True), nothing (False) or ``callback(done, total)``.
        base_url: download from ``<base_url>/<file name>`` instead of the official release
            (a mirror); ``$SWINIR_BASE_URL`` does the same.

    Raises:
        ZooError: unknown name, or a bundled file missing from the installation.
        DownloadError: the download failed (an interrupted one resumes on the next call); the
            message names the URL and where to put the file by hand.
        ChecksumError: the downloaded file failed verification; it was deleted.
    """
    entry = get_entry(name_or_entry)
    found = cached_path(entry)
    if found is not None:
        return found
    if entry.bundled:
        raise ZooError(f"bundled model file swinir/assets/{entry.bundled_file} is missing from "
                       "this installation; reinstall swinir")
    dest = cache_dir() / entry.filename
    url = entry_url(entry, base_url)
    if url is None:  # pragma: no cover - __post_init__ guarantees a URL for non-bundled entries
        raise DownloadError(f"{entry.name} has no download URL; put the file at {dest}", dest=dest)
    logger.info("downloading %s from %s", entry.filename, url)
    download(url, dest, sha256=entry.sha256, size=entry.size, progress=progress,
             verify=lambda part: verify_checkpoint(part, entry))
    _write_marker(dest, entry)
    return dest


# --------------------------------------------------------------------------------------------
# State-dict verification
# --------------------------------------------------------------------------------------------

def _read_shapes(path: Path, *, safetensors: bool) -> dict[str, tuple[int, ...]]:
    """Key -> shape of every tensor in a checkpoint file."""
    if safetensors:
        with safe_open(str(path), framework="pt") as handle:
            raw = {key: torch.empty(handle.get_slice(key).get_shape(), device="meta") for key in handle.keys()}
        return {key: tuple(value.shape) for key, value in unwrap_state_dict(raw).items()}

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        # mmap needs the zip format; legacy-format files are read normally.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"checkpoint holds a {type(checkpoint).__name__}, not a state dict")
    state = unwrap_state_dict(checkpoint)
    return {key: tuple(value.shape) for key, value in state.items()
            if isinstance(value, torch.Tensor)}


def _listing(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def verify_checkpoint(path: Path, entry: str | ZooEntry) -> None:
    """Check that the file at ``path`` holds ``entry``'s state dict: every key, every shape.

    The file is loaded with ``torch.load(..., weights_only=True)`` (or read with safetensors for
    ``.safetensors`` entries), wrappers and ``module.`` prefixes are removed, and the keys and
    shapes are compared with the manifest.  Only ``attn_mask`` buffers may differ in shape (they
    depend on the training patch size).  An entry without recorded keys is only checked for
    being loadable.

    Raises:
        ChecksumError: the file is not a loadable state dict or does not match; the message names
            the first few missing, unexpected and mis-shaped keys.
    """
    entry = get_entry(entry)
    path = Path(path)
    safetensors = (entry.bundled_file or entry.filename).lower().endswith(".safetensors")
    try:
        shapes = _read_shapes(path, safetensors=safetensors)
    except Exception as error:
        detail = (str(error).strip().splitlines() or [""])[0][:200]
        raise ChecksumError(f"{path.name} is not a loadable {entry.filename} state dict "
                            f"({type(error).__name__}: {detail})") from None
    if not entry.keys:
        return
    missing = [key for key in entry.keys if key not in shapes]
    unexpected = [key for key in shapes if key not in entry.keys]
    wrong = [f"{key} {shapes[key]} instead of {entry.keys[key]}" for key in entry.keys
             if key in shapes and shapes[key] != tuple(entry.keys[key])
             and not key.endswith("attn_mask")]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_listing(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_listing(unexpected)})")
        if wrong:
            problems.append(f"{len(wrong)} keys with the wrong shape ({_listing(wrong)})")
        raise ChecksumError(f"{path.name} does not match {entry.filename}: "
                            + "; ".join(problems))
