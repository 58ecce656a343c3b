"""Registry of SwinIR checkpoints: official release files, their aliases, and bundled models.

``MODELS`` maps a checkpoint name (file name without ``.pth``) to a frozen :class:`ZooEntry` that
holds everything needed to build, download and verify it: the official constructor arguments
(``img_range`` and ``img_size`` included), the parameter count, every state-dict key with its
shape, and the task facts parsed from the name (task, scale, noise level, JPEG quality, training
data, variant, GAN or PSNR).  The entries are built from the shipped manifest
``swinir/assets/official_checkpoints.json``.

Entries with ``bundled=True`` have no URL: their weights ship inside the package as
``swinir/assets/<bundled_file>``.  Downloading, caching and verifying the files is
:mod:`swinir.models.cache`.

Example::

    from swinir.models import cache, zoo
    entry = zoo.find_model("classical_sr", scale=4)       # DF2K SwinIR-M x4
    path = cache.fetch(entry)                              # downloaded once, then cached
    model = SwinIR(**entry.model_kwargs())
"""
from __future__ import annotations

import copy
import fnmatch
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from safetensors import safe_open

from swinir.assets import asset_folder, read_asset_text
from swinir.core.errors import ZooError
from swinir.core.tasks import TASKS, normalise_task

__all__ = [
    "MODELS",
    "TASKS",
    "OFFICIAL_BASE_URL",
    "ZooEntry",
    "get_entry",
    "list_models",
    "find_model",
    "find_bundled",
    "bundled_models",
]

#: Release that hosts the official checkpoints.
OFFICIAL_BASE_URL = "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0"

#: Suffix of the release copies of real-world models that hold both ``params`` and ``params_ema``.
ALIAS_SUFFIX = "-with-dict-keys-params-and-params_ema"

#: Official files that the release also publishes with :data:`ALIAS_SUFFIX` (same weights).
_ALIASED = (
    "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN",
    "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_PSNR",
    "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN",
    "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_PSNR",
)

#: Name prefix in the official file names -> task.
_KIND_TO_TASK = {
    "classicalSR": "classical_sr",
    "lightweightSR": "lightweight_sr",
    "realSR": "real_sr",
    "grayDN": "gray_dn",
    "colorDN": "color_dn",
    "CAR": "gray_jpeg",
    "colorCAR": "color_jpeg",
}

_NAME = re.compile(
    r"^(?P<number>\d{3})_(?P<kind>classicalSR|lightweightSR|realSR|grayDN|colorDN|CAR|colorCAR)"
    r"(?:_(?P<degradation>BSRGAN))?_(?P<data>[A-Za-z0-9]+)_s(?P<patch>\d+)w(?P<window>\d+)"
    r"_(?P<variant>SwinIR-[SML])_(?:x(?P<scale>\d+)|noise(?P<noise>\d+)|jpeg(?P<jpeg>\d+))"
    r"(?:_(?P<loss>GAN|PSNR))?$"
)

_MANIFEST = "official_checkpoints.json"


@dataclass(frozen=True)
class ZooEntry:
    """One checkpoint: what it does, how to build it, where to get it and how to verify it.

    ``arguments`` and ``keys`` are shared with the registry; treat them as read-only (use
    :meth:`model_kwargs` for a private copy).
    """

    name: str
    """Checkpoint name: the file name without ``.pth`` (``.safetensors`` for bundled files)."""
    filename: str
    """File name in the release and in the cache (a plain name, never a path)."""
    task: str
    """One of :data:`TASKS`."""
    scale: int
    """Upscaling factor; 1 for denoising and JPEG artifact reduction."""
    noise: int | None
    """Gaussian noise sigma (0-255 scale) for denoising models, else None."""
    jpeg: int | None
    """JPEG quality for artifact-reduction models, else None."""
    training_data: str
    """DIV2K, DF2K, DFO, DFOWMFC or DFWB."""
    variant: str
    """SwinIR-S (lightweight), SwinIR-M (medium) or SwinIR-L (large)."""
    gan: bool
    """True for real-world GAN models, False for PSNR-oriented ones (and every other task)."""
    arguments: dict[str, Any] = field(hash=False)
    """Full official constructor keyword arguments (``img_range`` and ``img_size`` included)."""
    params: int
    """Number of trainable parameters."""
    url: str | None
    """Download URL, or None for bundled entries."""
    size: int | None
    """File size in bytes when known."""
    sha256: str | None
    """Hex SHA-256 of the file when known."""
    keys: dict[str, tuple[int, ...]] = field(hash=False, repr=False)
    """Every state-dict key and its shape (``attn_mask`` shapes may legitimately differ)."""
    bundled: bool = False
    """True when the weights ship inside the package (no download)."""
    bundled_file: str | None = None
    """File name under ``swinir/assets/`` for bundled entries."""
    alias_of: str | None = None
    """For a release copy of another file (same weights), the name of that official entry."""
    training_patch: int | None = None
    """Training patch size (the ``s<N>`` in official names)."""
    levels: str | None = None
    """For a blind model (``noise``/``jpeg`` None on a denoising/JPEG task): the levels it was
    trained on, e.g. ``"sigma 0-55"``; it is the bundled choice at every level."""
    result: str | None = None
    """Measured quality of a bundled model (benchmark, numbers and baseline), one line."""

    @property
    def blind(self) -> bool:
        """True for a denoising or JPEG model that serves every level (no per-level weights)."""
        return (self.task.endswith("_dn") and self.noise is None) or \
            (self.task.endswith("_jpeg") and self.jpeg is None)

    def __post_init__(self) -> None:
        for label, value in (("filename", self.filename), ("bundled_file", self.bundled_file)):
            if value is not None and (Path(value).name != value or value in ("", ".", "..")
                                      or "\\" in value or "/" in value):
                raise ValueError(f"ZooEntry {self.name!r}: {label} must be a plain file name")
        if self.task not in TASKS:
            raise ValueError(f"ZooEntry {self.name!r}: unknown task {self.task!r}")
        if self.bundled and not self.bundled_file:
            raise ValueError(f"ZooEntry {self.name!r}: bundled entries need bundled_file")
        if not self.bundled and not self.url:
            raise ValueError(f"ZooEntry {self.name!r}: entries that are not bundled need a url")

    @property
    def in_chans(self) -> int:
        """Number of image channels (1 for grayscale models, 3 for color)."""
        return int(self.arguments.get("in_chans", 3))

    @property
    def window_size(self) -> int:
        """Attention window size."""
        return int(self.arguments["window_size"])

    @property
    def img_range(self) -> float:
        """Pixel value range the model was trained with (1.0, or 255.0 for JPEG models)."""
        return float(self.arguments.get("img_range", 1.0))

    @property
    def official(self) -> bool:
        """True for the 31 official release files (not aliases, not bundled models)."""
        return not self.bundled and self.alias_of is None

    def model_kwargs(self) -> dict[str, Any]:
        """A fresh deep copy of :attr:`arguments`, safe to modify and pass to the constructor."""
        return copy.deepcopy(self.arguments)


# --------------------------------------------------------------------------------------------
# Building the registry
# --------------------------------------------------------------------------------------------

def _parse_name(name: str) -> dict[str, Any]:
    """Facts encoded in an official checkpoint name (without ``.pth``)."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"not an official SwinIR checkpoint name: {name!r}")
    task = _KIND_TO_TASK[match["kind"]]
    loss = match["loss"]
    if (task == "real_sr") != (loss is not None):
        raise ValueError(f"{name!r}: only real-world SR names end in _GAN/_PSNR")
    return {
        "task": task,
        "scale": int(match["scale"]) if match["scale"] else 1,
        "noise": int(match["noise"]) if match["noise"] else None,
        "jpeg": int(match["jpeg"]) if match["jpeg"] else None,
        "training_data": match["data"],
        "variant": match["variant"],
        "gan": loss == "GAN",
        "training_patch": int(match["patch"]),
        "window": int(match["window"]),
    }


def _check_consistent(name: str, facts: Mapping[str, Any], arguments: Mapping[str, Any]) -> None:
    """The name and the manifest's constructor arguments must tell the same story."""
    expected = {
        "upscale": facts["scale"],
        "window_size": facts["window"],
        "img_size": facts["training_patch"],
        "in_chans": 1 if facts["task"] in ("gray_dn", "gray_jpeg") else 3,
    }
    for key, value in expected.items():
        if arguments.get(key) != value:
            raise ValueError(f"manifest entry {name!r}: {key}={arguments.get(key)!r}, "
                             f"but the name says {value!r}")


def _load_manifest() -> dict[str, Any]:
    text = read_asset_text(_MANIFEST)
    return json.loads(text)


def _build_registry() -> dict[str, ZooEntry]:
    models: dict[str, ZooEntry] = {}
    for filename, record in _load_manifest().items():
        name = filename[:-len(".pth")] if filename.endswith(".pth") else filename
        facts = _parse_name(name)
        _check_consistent(name, facts, record["arguments"])
        models[name] = ZooEntry(
            name=name,
            filename=filename,
            task=facts["task"],
            scale=facts["scale"],
            noise=facts["noise"],
            jpeg=facts["jpeg"],
            training_data=facts["training_data"],
            variant=facts["variant"],
            gan=facts["gan"],
            arguments=dict(record["arguments"]),
            params=int(record["params"]),
            url=f"{OFFICIAL_BASE_URL}/{urllib.parse.quote(filename)}",
            size=record.get("size"),
            sha256=record.get("sha256"),
            keys={key: tuple(shape) for key, shape in record["keys"].items()},
            training_patch=facts["training_patch"],
        )
    for target in _ALIASED:
        official = models[target]
        name = target + ALIAS_SUFFIX
        models[name] = ZooEntry(
            name=name,
            filename=name + ".pth",
            task=official.task,
            scale=official.scale,
            noise=official.noise,
            jpeg=official.jpeg,
            training_data=official.training_data,
            variant=official.variant,
            gan=official.gan,
            arguments=official.arguments,
            params=official.params,
            url=f"{OFFICIAL_BASE_URL}/{urllib.parse.quote(name + '.pth')}",
            size=None,
            sha256=None,
            keys=official.keys,
            alias_of=target,
            training_patch=official.training_patch,
        )
    models.update(_bundled_entries())
    return models


#: file names of the small models we train ourselves and ship in ``swinir/assets/``
BUNDLED_PATTERN = "bundled_*.safetensors"
_DERIVED_BUFFERS = ("attn_mask", "relative_position_index")


def _bundled_entries() -> dict[str, ZooEntry]:
    """Entries for the bundled models, described by their own safetensors metadata.

    ``swinir.save_model(..., extra_metadata={"task": ..., "noise": ...})`` writes the constructor
    arguments and these facts into the file, so shipping a new bundled model needs no code change.
    """
    entries: dict[str, ZooEntry] = {}
    folder = asset_folder()
    for resource in sorted(folder.iterdir(), key=lambda r: r.name):
        if not fnmatch.fnmatch(resource.name, BUNDLED_PATTERN):
            continue
        with resources.as_file(resource) as path, safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("swinir_arguments", "{}"))
            keys = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
        arguments = {k: v for k, v in meta.items() if k not in _BUNDLED_FACTS}
        params = sum(math.prod(shape) for key, shape in keys.items() if not key.endswith(_DERIVED_BUFFERS))
        name = resource.name[: -len(".safetensors")]
        entries[name] = ZooEntry(
            name=name,
            filename=resource.name,
            task=meta["task"],
            scale=int(arguments.get("upscale", 1)) if meta["task"].endswith("_sr") else 1,
            noise=meta.get("noise"),
            jpeg=meta.get("jpeg"),
            training_data=meta.get("training_data", "BSD400"),
            variant=meta.get("variant", "bundled"),
            gan=False,
            arguments=arguments,
            params=params,
            url=None,
            size=None,
            sha256=None,
            keys=keys,
            bundled=True,
            bundled_file=resource.name,
            levels=meta.get("levels"),
            result=meta.get("result"),
        )
    return entries


_BUNDLED_FACTS = ("task", "noise", "jpeg", "training_data", "variant", "description", "levels", "result")


#: Every known checkpoint by name (official files, release aliases, bundled models).
MODELS: dict[str, ZooEntry] = _build_registry()


# --------------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------------

def _strip_extension(name: str) -> str:
    for extension in (".pth", ".safetensors"):
        if name.lower().endswith(extension):
            return name[: -len(extension)]
    return name


def get_entry(name: str | ZooEntry) -> ZooEntry:
    """The entry for a checkpoint name, with or without ``.pth``, in any letter case.

    Raises:
        ZooError: the name is unknown; the message suggests the closest known names.
    """
    if isinstance(name, ZooEntry):
        return name
    wanted = _strip_extension(str(name).strip())
    if wanted in MODELS:
        return MODELS[wanted]
    lowered = wanted.lower()
    for key, entry in MODELS.items():
        if key.lower() == lowered or _strip_extension(entry.filename).lower() == lowered:
            return entry
    raise ZooError.unknown_name(str(name), MODELS)


def list_models(task: str | None = None, *, aliases: bool = False) -> list[ZooEntry]:
    """Known entries in registry order, optionally for one task.

    Release aliases (same weights under another file name) are left out unless ``aliases``.
    """
    if task is not None:
        task = normalise_task(task)
    return [entry for entry in MODELS.values()
            if (task is None or entry.task == task) and (aliases or entry.alias_of is None)]


def bundled_models(task: str, scale: int | None = None, noise: float | None = None,
                   jpeg: int | None = None) -> list[ZooEntry]:
    """The bundled models for a task that serve a level, the preferred one first.

    A blind model (trained on a range of noise levels or JPEG qualities) serves every level and
    comes before a model trained at that one level; ``None`` levels match any model.
    """
    task = normalise_task(task)
    found = [entry for entry in MODELS.values() if entry.bundled and entry.task == task
             and (scale is None or entry.scale == scale)
             and (noise is None or entry.noise in (noise, None))
             and (jpeg is None or entry.jpeg in (jpeg, None))]
    return sorted(found, key=lambda entry: (not entry.blind, entry.name))


def find_bundled(task: str, scale: int | None = None, noise: int | None = None,
                 jpeg: int | None = None) -> ZooEntry | None:
    """The preferred bundled model for a task and level (see :func:`bundled_models`), if any."""
    found = bundled_models(task, scale, noise, jpeg)
    return found[0] if found else None


def _describe(entry: ZooEntry) -> str:
    if entry.noise is not None:
        level = f"noise={entry.noise}"
    elif entry.jpeg is not None:
        level = f"jpeg={entry.jpeg}"
    else:
        level = f"scale={entry.scale}"
    extra = ""
    if entry.task == "real_sr":
        extra = f", {'GAN' if entry.gan else 'PSNR'}"
    return f"{level} ({entry.variant}, {entry.training_data}{extra})"


def find_model(
    task: str,
    scale: int | None = None,
    noise: float | None = None,
    jpeg: int | None = None,
    *,
    large: bool = False,
    gan: bool = True,
    training_data: str | None = None,
) -> ZooEntry:
    """Choose the official model for a task and degradation level.

    Args:
        task: one of :data:`TASKS` (the official script's ``jpeg_car`` / ``color_jpeg_car`` are
            accepted too).
        scale: upscaling factor for the SR tasks; may be omitted when only one exists.
        noise: noise sigma for ``gray_dn`` / ``color_dn`` (15, 25 or 50).
        jpeg: JPEG quality for ``gray_jpeg`` / ``color_jpeg`` (10, 20, 30 or 40).
        large: pick SwinIR-L (real-world SR x4 only) instead of SwinIR-M.
        gan: for ``real_sr``, the GAN model (default) or the PSNR-oriented one (``gan=False``);
            ignored for the other tasks.
        training_data: force a training set (e.g. ``"DIV2K"``); by default classical SR prefers
            the DF2K models over the DIV2K ones.

    Raises:
        ArgumentError: ``task`` is not a task name.
        ZooError: nothing matches, or the request is ambiguous; the message lists what exists.
    """
    task = normalise_task(task)
    pool = [entry for entry in MODELS.values() if entry.official and entry.task == task]

    def fail(problem: str, candidates: list[ZooEntry]) -> ZooError:
        available = "; ".join(_describe(entry) for entry in candidates) or "none"
        return ZooError(f"{problem} (task {task!r}); available: {available}")

    if noise is not None and task not in ("gray_dn", "color_dn"):
        raise fail(f"noise={noise} only applies to denoising", pool)
    if jpeg is not None and task not in ("gray_jpeg", "color_jpeg"):
        raise fail(f"jpeg={jpeg} only applies to JPEG artifact reduction", pool)
    chosen = _matching(pool, task, scale, noise, jpeg, large=large, gan=gan, training_data=training_data)
    request = ", ".join(f"{key}={value!r}" for key, value in (
        ("scale", scale), ("noise", noise), ("jpeg", jpeg), ("training_data", training_data))
        if value is not None)
    request += (", " if request else "") + f"large={large}"
    if task == "real_sr":
        request += f", gan={gan}"
    if not chosen:
        raise fail(f"no official model with {request}", pool)
    if len(chosen) > 1:
        raise fail(f"several models match {request}; pass scale/noise/jpeg to choose one", chosen)
    return chosen[0]


def _matching(pool: list[ZooEntry], task: str, scale: int | None, noise: float | None, jpeg: int | None, *,
              large: bool, gan: bool, training_data: str | None) -> list[ZooEntry]:
    """The entries of ``pool`` that fit the request (DF2K preferred for classical SR)."""
    chosen = pool
    if task == "real_sr":
        chosen = [entry for entry in chosen if entry.gan == gan]
    chosen = [entry for entry in chosen if (entry.variant == "SwinIR-L") == large]
    if training_data is not None:
        chosen = [entry for entry in chosen
                  if entry.training_data.lower() == training_data.lower()]
    if scale is not None:
        chosen = [entry for entry in chosen if entry.scale == scale]
    if noise is not None:
        chosen = [entry for entry in chosen if entry.noise == noise]
    if jpeg is not None:
        chosen = [entry for entry in chosen if entry.jpeg == jpeg]
    if task == "classical_sr" and training_data is None:
        preferred = [entry for entry in chosen if entry.training_data == "DF2K"]
        chosen = preferred or chosen
    return chosen
