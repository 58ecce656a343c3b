"""Training configuration: dataclasses, YAML loading, validation and ``--set`` overrides.

A config file has five sections besides a few top-level keys::

    name: classicalSR_x2          # run name (default run directory: runs/<name>)
    task: classical_sr            # classical_sr | lightweight_sr | real_sr | gray_dn | color_dn | gray_jpeg | color_jpeg
    seed: 0
    init: null                    # zoo name or checkpoint path to start from (fine-tuning)
    model: {...}                  # SwinIR constructor arguments (official names)
    data: {...}                   # training images, degradation, patches, batches
    train: {...}                  # optimisation, loss, EMA, precision, logging, checkpoints
    val: {...}                    # validation folder and interval
    gan: {...}                    # optional: the GAN stage of real-world SR (swinir.train.gan_config.GANConfig)

Every key is validated when the file is loaded: unknown keys (with the closest known names
suggested), wrong types, impossible combinations and missing folders raise a one-line
:class:`~swinir.core.errors.ConfigError` before any work starts.  Note that PyYAML reads ``2e-4``
(no dot) as a string; numeric strings are accepted wherever a number is expected.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from swinir.core.errors import ConfigError, ZooError
from swinir.core.tasks import is_sr
from swinir.core.types import PathLike
from swinir.degradations.realistic import DegradationConfig  # BSRGAN / Real-ESRGAN degradations (swinir/realistic.py)
from swinir.models.zoo import get_entry
from swinir.train.gan_config import GANConfig  # the GAN stage of real-world SR (docs/realsr.md)
from swinir.train.schema import from_dict

__all__ = [
    "ModelConfig",
    "DataConfig",
    "TrainConfig",
    "ValConfig",
    "Config",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "config_to_dict",
]

Task = Literal["classical_sr", "lightweight_sr", "real_sr", "gray_dn", "color_dn", "gray_jpeg", "color_jpeg"]


@dataclass
class ModelConfig:
    """SwinIR constructor arguments, with the official names and defaults (see :class:`swinir.SwinIR`)."""

    upscale: int = 2
    in_chans: int = 3
    img_size: int = 64
    window_size: int = 7
    img_range: float = 1.0
    depths: list[int] = field(default_factory=lambda: [6, 6, 6, 6])
    embed_dim: int = 96
    num_heads: list[int] = field(default_factory=lambda: [6, 6, 6, 6])
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: Optional[float] = None
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1
    ape: bool = False
    patch_norm: bool = True
    use_checkpoint: bool = False
    upsampler: Literal["pixelshuffle", "pixelshuffledirect", "nearest+conv", ""] = ""
    resi_connection: Literal["1conv", "3conv"] = "1conv"

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`swinir.SwinIR`."""
        return dataclasses.asdict(self)


@dataclass
class DataConfig:
    """Training data and on-the-fly degradation.

    ``patch_size`` is the size of the network *input* patch (the LR patch for SR, e.g. 48 for
    DIV2K ×2, whose HR patch is 96), so it matches ``model.img_size`` in the official recipes.
    """

    train: list[str] = field(default_factory=list)
    """Folders of clean (HR) training images (one folder or a list)."""
    train_lq: Optional[str] = None
    """Optional folder of ready-made LR images for SR, named ``<stem>x<scale>.<ext>`` or ``<stem>.<ext>``."""
    scale: int = 1
    """SR factor; 1 for denoising and JPEG."""
    noise: Optional[list[float]] = None
    """Gaussian noise sigma (0-255 scale): a number, or ``[low, high]`` for a random sigma per patch."""
    jpeg: Optional[list[int]] = None
    """JPEG quality: a number, or ``[low, high]`` (inclusive) for a random quality per patch."""
    patch_size: int = 64
    """Network-input (LQ) patch size in pixels."""
    batch_size: int = 8
    """Global batch size (split evenly over DDP ranks)."""
    num_workers: int = 2
    """DataLoader worker processes per rank (0: load in the main process)."""
    augment: bool = True
    """Random flips and 90-degree rotations."""
    cache: bool = False
    """Decode every training image once and keep it in memory."""
    degradation: Optional[DegradationConfig] = None
    """real_sr: the realistic degradation (BSRGAN or Real-ESRGAN) that makes the LR patches."""


@dataclass
class TrainConfig:
    """Optimisation, loss, EMA, precision, logging and checkpoints."""

    iterations: int = 500_000
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0
    scheduler: Literal["multistep", "cosine", "constant"] = "multistep"
    milestones: list[int] = field(default_factory=lambda: [250_000, 400_000, 450_000, 475_000])
    gamma: float = 0.5
    min_lr: float = 1e-7
    """Final learning rate of the cosine schedule."""
    warmup: int = 0
    """Linear warm-up iterations (0: none)."""
    loss: Literal["l1", "charbonnier"] = "l1"
    charbonnier_eps: float = 1e-3
    """epsilon in ``mean(sqrt((x - y)^2 + eps^2))``."""
    grad_clip: float = 0.0
    """Clip the global gradient norm to this value (0: off)."""
    ema_decay: float = 0.999
    """Weight of the old EMA weights per iteration (0: EMA off, EMA == model)."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    threads: int = 0
    """CPU threads for PyTorch ops (0: PyTorch's default). 1 is fastest for tiny models on busy machines."""
    log_every: int = 100
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    progress: bool = True
    """Show a progress bar on stderr."""


@dataclass
class ValConfig:
    """Validation with the paper's evaluation protocol, on the EMA model."""

    folder: Optional[str] = None
    """Folder of clean (HR) validation images; ``null`` disables validation."""
    lq: Optional[str] = None
    """Optional folder of ready-made LR inputs (``<stem>x<scale>.<ext>``), e.g. Set5/LR_bicubic/X4."""
    every: int = 5000
    noise: Optional[float] = None
    """Noise sigma for validation (default: data.noise, or the top of its range)."""
    jpeg: Optional[int] = None
    """JPEG quality for validation (default: data.jpeg, or the top of its range)."""
    max_images: int = 0
    """Use at most this many images (0: all)."""


@dataclass
class Config:
    """A whole training run."""

    task: Task = "classical_sr"
    name: str = "swinir"
    run_dir: Optional[str] = None
    seed: int = 0
    init: Optional[str] = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    val: ValConfig = field(default_factory=ValConfig)
    gan: Optional[GANConfig] = None
    """The GAN stage (discriminator, perceptual and adversarial losses); ``null``: pixel loss only."""

    @property
    def is_sr(self) -> bool:
        """True for super-resolution tasks."""
        return is_sr(self.task)

    @property
    def primary_metric(self) -> str:
        """The validation metric whose best value is tracked."""
        return "psnr_y" if self.is_sr else "psnr"

    def resolved_run_dir(self) -> Path:
        """The run directory: ``run_dir`` or ``runs/<name>``."""
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.name


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from plain data (no folder checks)."""
    if not isinstance(raw, dict):
        raise ConfigError("config: the file must hold a mapping of keys to values")
    config = from_dict(Config, raw)
    _check_values(config)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain (YAML/JSON/``torch.load(weights_only=True)`` safe) copy of ``config``."""
    return dataclasses.asdict(config)


# --------------------------------------------------------------------------------------------
# Cross-field checks
# --------------------------------------------------------------------------------------------
def _check_range(key: str, value: list, kind: str) -> None:
    if not 1 <= len(value) <= 2:
        raise ConfigError(f"config: {key} must be one {kind} or [low, high], got {value!r}")
    if len(value) == 2 and value[0] > value[1]:
        raise ConfigError(f"config: {key} range must be [low, high], got {value!r}")


def _check_values(c: Config) -> None:
    """Every cross-field rule of a loaded config; the first broken one raises :class:`ConfigError`."""
    _check_counts(c)
    _check_architecture(c)
    _check_task_shape(c)
    _check_levels(c)
    _check_optimiser(c.train)
    _check_sources(c)


def _check_counts(c: Config) -> None:
    m, d, t, v = c.model, c.data, c.train, c.val
    positive = {
        "model.in_chans": m.in_chans, "model.img_size": m.img_size, "model.window_size": m.window_size,
        "model.embed_dim": m.embed_dim, "model.upscale": m.upscale, "data.scale": d.scale,
        "data.patch_size": d.patch_size, "data.batch_size": d.batch_size, "train.iterations": t.iterations,
        "train.log_every": t.log_every, "train.checkpoint_every": t.checkpoint_every,
        "train.keep_checkpoints": t.keep_checkpoints, "val.every": v.every,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"config: {key} must be at least 1, got {value}")
    if d.num_workers < 0 or v.max_images < 0 or t.warmup < 0 or t.threads < 0:
        raise ConfigError("config: data.num_workers, val.max_images, train.warmup and train.threads must be >= 0")


def _check_architecture(c: Config) -> None:
    m = c.model
    if m.in_chans not in (1, 3):
        raise ConfigError(f"config: model.in_chans must be 1 (gray) or 3 (colour), got {m.in_chans}")
    if not m.depths or len(m.depths) != len(m.num_heads):
        raise ConfigError(f"config: model.depths {m.depths} and model.num_heads {m.num_heads} must have the same length")
    if any(m.embed_dim % h for h in m.num_heads):
        raise ConfigError(f"config: model.embed_dim {m.embed_dim} must be divisible by every model.num_heads {m.num_heads}")
    gray = c.task.startswith("gray_")
    if (m.in_chans == 1) != gray:
        raise ConfigError(f"config: task {c.task} needs model.in_chans: {1 if gray else 3}, got {m.in_chans}")


def _check_task_shape(c: Config) -> None:
    """Upsampler and scale agree with the task (SR or same-size restoration)."""
    m, d = c.model, c.data
    if c.is_sr:
        if not m.upsampler:
            raise ConfigError(f"config: task {c.task} needs model.upsampler (pixelshuffle or pixelshuffledirect)")
        if d.scale != m.upscale:
            raise ConfigError(f"config: data.scale ({d.scale}) must equal model.upscale ({m.upscale})")
        if d.scale < 2:
            raise ConfigError(f"config: data.scale must be at least 2 for {c.task}, got {d.scale}")
    else:
        if m.upsampler:
            raise ConfigError(f"config: task {c.task} needs model.upsampler: '' (no upsampling), got {m.upsampler!r}")
        if d.scale != 1 or d.train_lq:
            raise ConfigError(f"config: task {c.task} needs data.scale: 1 and no data.train_lq")


def _check_levels(c: Config) -> None:
    """``data.noise`` for denoising only, ``data.jpeg`` for JPEG tasks only, each a valid range."""
    d = c.data
    if c.task.endswith("_dn"):
        if d.noise is None:
            raise ConfigError(f"config: task {c.task} needs data.noise (a sigma or [low, high])")
        _check_range("data.noise", d.noise, "sigma")
        if min(d.noise) < 0:
            raise ConfigError(f"config: data.noise must be >= 0, got {d.noise}")
    elif d.noise is not None:
        raise ConfigError(f"config: data.noise is only for denoising tasks, not {c.task}")
    if c.task.endswith("_jpeg"):
        if d.jpeg is None:
            raise ConfigError(f"config: task {c.task} needs data.jpeg (a quality or [low, high])")
        _check_range("data.jpeg", d.jpeg, "quality")
        if not all(1 <= q <= 100 for q in d.jpeg):
            raise ConfigError(f"config: data.jpeg qualities must be in 1..100, got {d.jpeg}")
    elif d.jpeg is not None:
        raise ConfigError(f"config: data.jpeg is only for JPEG tasks, not {c.task}")


def _check_optimiser(t: TrainConfig) -> None:
    if len(t.betas) != 2 or not all(0.0 <= b < 1.0 for b in t.betas):
        raise ConfigError(f"config: train.betas must be two numbers in [0, 1), got {t.betas}")
    if t.lr <= 0:
        raise ConfigError(f"config: train.lr must be positive, got {t.lr}")
    if list(t.milestones) != sorted(t.milestones):
        raise ConfigError(f"config: train.milestones must be increasing, got {t.milestones}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise ConfigError(f"config: train.ema_decay must be in [0, 1), got {t.ema_decay}")
    if t.charbonnier_eps <= 0 or t.grad_clip < 0:
        raise ConfigError("config: train.charbonnier_eps must be > 0 and train.grad_clip >= 0")
    if not (t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:")):
        raise ConfigError(f"config: train.device must be auto, cpu, cuda or cuda:N, got {t.device!r}")


def _check_sources(c: Config) -> None:
    """Where the pairs come from: validation folders, synthetic degradations, the GAN stage."""
    d = c.data
    if c.val.lq and not c.val.folder:
        raise ConfigError("config: val.lq needs val.folder (the clean images)")
    if d.degradation is not None:
        if c.task != "real_sr" or d.train_lq:
            raise ConfigError("config: data.degradation is only for task real_sr without data.train_lq")
        d.degradation.check("data.degradation")
    elif c.task == "real_sr" and not d.train_lq:
        raise ConfigError("config: task real_sr needs data.degradation (model: bsrgan or realesrgan) or data.train_lq")
    if c.gan is not None:
        c.gan.check("gan")


# --------------------------------------------------------------------------------------------
# Files, overrides and folders
# --------------------------------------------------------------------------------------------
def _set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"config: --set {dotted}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to ``raw`` in place."""
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"config: --set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        _set_path(raw, key, value)
    return raw


#: ``${SWINIR_SHARED}`` in a config means the shared data folder: the variable when set, else
#: ``../shared`` (looked up like any relative folder: beside the repository, as in CI)
SHARED_VARIABLE = "SWINIR_SHARED"


def _resolve_folder(text: str, bases: list[Path]) -> Optional[Path]:
    if SHARED_VARIABLE not in os.environ:
        text = text.replace("${" + SHARED_VARIABLE + "}", "../shared").replace("$" + SHARED_VARIABLE, "../shared")
    path = Path(os.path.expandvars(os.path.expanduser(text)))
    if path.is_absolute():
        return path if path.is_dir() else None
    for base in bases:
        candidate = base / path
        if candidate.is_dir():
            return candidate.resolve()
    return None


def resolve_folders(config: Config, bases: list[Path]) -> None:
    """Make every data folder absolute, or raise :class:`ConfigError` for the first missing one.

    Relative paths are tried against each of ``bases`` in turn (the current directory first).
    """
    checks: list[tuple[str, Optional[str]]] = [(f"data.train[{i}]", p) for i, p in enumerate(config.data.train)]
    checks += [("data.train_lq", config.data.train_lq), ("val.folder", config.val.folder), ("val.lq", config.val.lq)]
    if not config.data.train:
        raise ConfigError("config: data.train needs at least one folder of training images")
    resolved: dict[str, str] = {}
    for key, text in checks:
        if text is None:
            continue
        found = _resolve_folder(text, bases)
        if found is None:
            raise ConfigError(f"config: {key}: folder not found: '{text}' (set it with --set {key.split('[')[0]}=DIR)")
        resolved[key] = str(found)
    config.data.train = [resolved[f"data.train[{i}]"] for i in range(len(config.data.train))]
    config.data.train_lq = resolved.get("data.train_lq")
    config.val.folder = resolved.get("val.folder")
    config.val.lq = resolved.get("val.lq")
    if config.init:
        config.init = _resolve_init(config.init, bases)


def _resolve_init(init: str, bases: list[Path]) -> str:
    """``init`` as an absolute file path (a relative one is looked up like the data folders), or
    the zoo name it is (downloaded only when training starts)."""
    path = Path(os.path.expanduser(init))
    if path.is_absolute() and path.is_file():
        return str(path)
    if not path.is_absolute():
        for base in bases:
            if (base / path).is_file():
                return str((base / path).resolve())
    try:
        get_entry(init)
    except ZooError as exc:
        raise ConfigError(f"config: init: no such file, and {exc}") from None
    return init


def load_config(
    path: PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    raw: Optional[dict[str, Any]] = None,
    check_folders: bool = True,
) -> Config:
    """Load a YAML config (or ``raw`` data), apply ``--set`` overrides and validate it.

    Args:
        path: YAML file.  Relative folders in it are looked up in the current directory, then in
            the file's folder, then in that folder's parent (so ``configs/x.yaml`` may name
            folders relative to the repository root).
        overrides: ``key.sub=value`` strings.
        raw: already-parsed config data instead of ``path``.
        check_folders: check that every data/validation folder exists (and make them absolute).

    Raises:
        ConfigError: one line naming the first problem.
    """
    bases = [Path.cwd()]
    if raw is None:
        if path is None:
            raise ConfigError("config: no config file given")
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"config: cannot read '{file}': {exc.strerror or exc}") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"config: '{file}' is not valid YAML{where}") from None
        bases += [file.resolve().parent, file.resolve().parent.parent]
    if not isinstance(raw, dict):
        raise ConfigError("config: the file must hold a mapping of keys to values")
    raw = _deep_copy(raw)
    apply_overrides(raw, list(overrides))
    config = config_from_dict(raw)
    if check_folders:
        resolve_folders(config, bases)
    return config


def _deep_copy(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: _deep_copy(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_deep_copy(v) for v in raw]
    return raw
