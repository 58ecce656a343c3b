"""The OpenVINO backend's disk cache: converted models and compiled ones, bounded in size.

Two things are slow to make and cheap to keep, both in ``cache_dir()/openvino``:

* the **converted IR** of a network (``<key>.xml`` + ``<key>.bin``: tracing and
  ``openvino.convert_model`` take seconds; reading it back, well under a second), keyed by a
  hash of the weights, the configuration and the library versions;
* the **compiled dynamic-shape model** (``<key>.<variant>.blob``, ``CompiledModel.export_model``):
  measured for SwinIR-M x4 on 2 threads, compiling takes 1.0 s and importing the blob 0.35 s
  (50 MB).  The variant hashes the compile configuration (precision, threads) and the CPU
  (its name and instruction-set flags), so a home folder shared by different machines keeps
  one blob per CPU kind.  Static-shape compiles are not kept: each serves one input size, and
  a folder of photos would fill the cache with sizes it never meets again (79 MB for a 72² shape
  of the same model, importing in 0.37 s against a 0.67 s compile).

Every file is written through :func:`~swinir.core.files.atomic_path` (a killed process leaves
at most a temporary or its scratch folder, which the next process that opens the cache removes),
and an entry that fails to load is deleted and rebuilt.  The folder is bounded: after each write, whole entries
(everything sharing a ``<key>``) are removed, least recently used first (reads refresh the
modification time), until the folder holds at most ``$SWINIR_OPENVINO_CACHE_MB`` megabytes
(default :data:`DEFAULT_LIMIT_MB`); an entry larger than the whole limit is not kept.
``SWINIR_OPENVINO_CACHE_MB=0`` turns the cache off (every process converts and compiles).
Deleting the folder is always safe.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Optional

from swinir.core.device import cpu_features
from swinir.core.errors import SwinIRError
from swinir.core.files import atomic_path, remove_orphaned_temporaries, scratch_dir
from swinir.models.cache import cache_dir

__all__ = ["DEFAULT_LIMIT_MB", "LIMIT_VARIABLE", "cache_folder", "cache_limit_bytes", "compiled_variant",
           "prune", "read_compiled", "read_ir", "save_compiled", "save_ir"]

log = logging.getLogger(__name__)

#: the environment variable that bounds the folder, in megabytes (0: no cache)
LIMIT_VARIABLE = "SWINIR_OPENVINO_CACHE_MB"
#: room for the IR and compiled blob of about ten SwinIR-L models or forty SwinIR-M ones
DEFAULT_LIMIT_MB = 2048


def cache_limit_bytes() -> int:
    """The folder's bound in bytes, from ``$SWINIR_OPENVINO_CACHE_MB`` (0 when the cache is off)."""
    value = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not value:
        return DEFAULT_LIMIT_MB << 20
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0 or megabytes == float("inf"):
        raise SwinIRError(f"{LIMIT_VARIABLE}={value!r} must be a number of megabytes (0 turns the cache off)")
    return int(megabytes * (1 << 20))


def cache_folder() -> Optional[Path]:
    """``cache_dir()/openvino``, created, with dead writers' temporaries removed; None when the cache
    is off or the folder cannot be created (a read-only home: everything is made in memory)."""
    if cache_limit_bytes() == 0:
        return None
    try:
        folder = cache_dir() / "openvino"
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.info("no OpenVINO cache (%s); converting and compiling in memory", exc)
        return None
    remove_orphaned_temporaries(folder)
    return folder


def _entry(name: str) -> Optional[str]:
    """The key a cache file belongs to (None for temporaries and foreign dot-files)."""
    return None if name.startswith(".") else name.split(".", 1)[0]


def _touch(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.utime(path)


def prune(folder: Path, limit: int, *, keep: str = "") -> None:
    """Remove whole entries, least recently used first, until ``folder`` holds at most ``limit``
    bytes; the entry ``keep`` (just written) goes only if it alone is larger than the limit."""
    entries: dict[str, list[tuple[Path, int, float]]] = {}
    with contextlib.suppress(OSError), os.scandir(folder) as listing:
        for item in listing:
            key = _entry(item.name)
            with contextlib.suppress(OSError):
                if key is not None and item.is_file(follow_symlinks=False):
                    stat = item.stat(follow_symlinks=False)
                    entries.setdefault(key, []).append((Path(item.path), stat.st_size, stat.st_mtime))
    total = sum(size for files in entries.values() for _, size, _ in files)
    by_age = sorted(entries, key=lambda k: (k == keep, max(mtime for _, _, mtime in entries[k])))
    for key in by_age:
        if total <= limit:
            break
        for path, size, _ in entries[key]:
            with contextlib.suppress(OSError):  # another process may be reading it (Windows) or removing it
                path.unlink()
                total -= size
        log.info("removed the OpenVINO cache entry %s (the cache is bounded at %d MB; %s)",
                 key, limit >> 20, LIMIT_VARIABLE)


def read_ir(core: Any, folder: Path, key: str) -> Any:
    """The cached IR ``key`` as an ``openvino.Model``, or None (missing or unreadable: removed)."""
    xml, binary = folder / f"{key}.xml", folder / f"{key}.bin"
    if not (xml.exists() and binary.exists()):
        return None
    try:
        model = core.read_model(str(xml))
    except Exception as exc:
        log.warning("rebuilding the OpenVINO cache entry %s: %s", xml.name, " ".join(str(exc).split()))
        return None
    _touch((xml, binary))
    return model


def save_ir(ov: Any, model: Any, folder: Path, key: str) -> None:
    """Write ``model`` as ``key``'s IR: ``.bin`` then ``.xml``, each through :func:`atomic_path`
    (a reader needs both and checks for both), then bound the folder."""
    xml = folder / f"{key}.xml"
    scratch = scratch_dir(xml)  # OpenVINO writes .xml and .bin side by side
    try:
        with atomic_path(xml) as tmp_xml, atomic_path(xml.with_suffix(".bin")) as tmp_bin:
            ov.save_model(model, str(scratch / "model.xml"), compress_to_fp16=False)
            os.replace(scratch / "model.bin", tmp_bin)
            os.replace(scratch / "model.xml", tmp_xml)
    except OSError as exc:
        log.info("could not cache the OpenVINO model in %s: %s", folder, exc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    prune(folder, cache_limit_bytes(), keep=key)


def compiled_variant(core: Any, config: Mapping[str, Any]) -> str:
    """A short hash of what a compiled blob depends on besides the IR: the compile configuration,
    the OpenVINO CPU plugin's device name and the CPU's instruction-set flags."""
    digest = hashlib.sha256(json.dumps(dict(config), sort_keys=True, default=str).encode())
    digest.update(str(core.get_property("CPU", "FULL_DEVICE_NAME")).encode())
    digest.update(" ".join(sorted(cpu_features())).encode())
    return digest.hexdigest()[:16]


def read_compiled(core: Any, folder: Path, key: str, variant: str, config: Mapping[str, Any]) -> Any:
    """The cached compiled model ``key.variant``, imported with ``config``, or None (missing; one
    that does not import — another OpenVINO, a damaged file — is removed)."""
    blob = folder / f"{key}.{variant}.blob"
    try:
        data = blob.read_bytes()
    except OSError:
        return None
    try:
        compiled = core.import_model(data, "CPU", dict(config))
    except Exception as exc:
        log.warning("recompiling; the cached OpenVINO model %s did not import: %s", blob.name, " ".join(str(exc).split()))
        blob.unlink(missing_ok=True)
        return None
    _touch((blob, folder / f"{key}.xml", folder / f"{key}.bin"))
    return compiled


def save_compiled(compiled: Any, folder: Path, key: str, variant: str) -> None:
    """Export ``compiled`` as ``key.variant``'s blob (atomically), then bound the folder."""
    exported = compiled.export_model()  # io.BytesIO (bytes in older OpenVINO releases)
    try:
        with atomic_path(folder / f"{key}.{variant}.blob") as tmp, open(tmp, "wb") as fh:
            fh.write(exported.getbuffer() if hasattr(exported, "getbuffer") else exported)  # no second copy
    except OSError as exc:
        log.info("could not cache the compiled OpenVINO model in %s: %s", folder, exc)
    prune(folder, cache_limit_bytes(), keep=key)
