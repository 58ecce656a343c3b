"""The paper's evaluation protocol: the :class:`Protocol` setting and :func:`measure`.

The pipeline is split by step: benchmark folders and degraded samples in
:mod:`swinir.eval.dataset`, the methods (networks and baselines,
:func:`~swinir.eval.methods.open_method`) in :mod:`swinir.eval.methods`, the result records in
:mod:`swinir.eval.results` and the loop over a dataset, :func:`~swinir.eval.evaluate.evaluate_dataset`,
in :mod:`swinir.eval.evaluate`.

For one task and a folder of clean (ground-truth) images, ``evaluate_dataset`` does what the
official test script ``main_test_swinir.py`` does, value for value:

1. **degrade** each image as the official script feeds the network (:mod:`swinir.degradations.protocol`):

   * SR (``classical_sr`` / ``lightweight_sr`` / ``real_sr``): MATLAB bicubic downscaling of the
     modcropped ground truth, or ready-made ``<name>x<scale>.<ext>`` files from ``lq_dir`` (the
     official script reads the public ``LR_bicubic`` files; the ground truth is then cropped to
     ``scale`` times the LR size);
   * denoising: ``np.random.seed(0)`` per image, Gaussian noise added to the float32 image
     without clipping (gray images read as ``cv2.imread(path, IMREAD_GRAYSCALE)``);
   * JPEG: an OpenCV encode/decode round trip at the quality (gray: the rounded Y of
     MATLAB ``rgb2ycbcr`` for colour files);

2. **restore** with :class:`swinir.inference.restorer.Restorer` (``padding="paper"``: the official mirror
   padding that always adds at least one pixel; whole images unless tiling is asked for);

3. **round** the output to 8 bits as the official script saves it:
   ``(out.clamp(0, 1) * 255).round()`` in float32;

4. **measure** with :mod:`swinir.metrics`:

   * SR: PSNR/SSIM on RGB and on the Y channel, ``border = scale``;
   * denoising: PSNR/SSIM on RGB (gray: the single channel), border 0;
   * JPEG: PSNR/SSIM/PSNR-B on the gray image (gray task) or RGB and Y (colour task).

Every metric is also given on Y (``psnr_y``/``ssim_y``); for gray images Y is the image.  Means
are plain averages over the images, as the official script prints them.

Baselines (``bicubic``, ``noisy``, ``jpeg``) go through the same pipeline: ``bicubic`` upscales
the LR with MATLAB-exact bicubic (:func:`swinir.imresize`, 8-bit in and out), ``noisy`` and
``jpeg`` measure the degraded input itself (the noisy float image clipped to [0, 1] and
rounded to 8 bits, exactly what an identity network would give under step 3).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.tasks import DN_TASKS, JPEG_TASKS, SR_TASKS, TASKS, normalise_task
from swinir.eval.metrics import psnr, psnr_b, ssim

__all__ = [
    "SR_TASKS",
    "DN_TASKS",
    "JPEG_TASKS",
    "TASKS",
    "Protocol",
    "normalise_task",
    "measure",
    "to_uint8",
]


# --------------------------------------------------------------------------------------------
# Protocol
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Protocol:
    """One evaluation setting: task and degradation level, and how Y is measured.

    Attributes:
        task: one of :data:`TASKS`.
        scale: SR factor (1 for denoising and JPEG).
        noise: Gaussian noise sigma on the [0, 255] scale (denoising).
        jpeg: JPEG quality (JPEG tasks).
        y_rounding: round Y to 8 bits before measuring (MATLAB-style evaluation); the official
            Python evaluation does not.
    """

    task: str
    scale: int = 1
    noise: Optional[float] = None
    jpeg: Optional[int] = None
    y_rounding: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", normalise_task(self.task))
        if self.task in SR_TASKS:
            if self.scale is None or int(self.scale) < 1:
                raise ArgumentError.missing("scale", f"is needed for task {self.task} (an integer >= 1)")
            object.__setattr__(self, "scale", int(self.scale))
        else:
            if self.scale not in (None, 1):
                raise ArgumentError("scale", self.scale, f"does not apply: task {self.task} does not upscale")
            object.__setattr__(self, "scale", 1)
        if self.task in DN_TASKS:
            if self.noise is None:
                raise ArgumentError.missing("noise", f"is needed for task {self.task} (the sigma, e.g. 15, 25 or 50)")
            if float(self.noise) < 0:
                raise ArgumentError("noise", self.noise, "must be >= 0")
        elif self.noise is not None:
            raise ArgumentError("noise", self.noise, f"only applies to denoising, not to {self.task}")
        if self.task in JPEG_TASKS:
            if self.jpeg is None:
                raise ArgumentError.missing("jpeg", f"is needed for task {self.task} (the quality, e.g. 10, 20, 30 or 40)")
            if not 0 <= int(self.jpeg) <= 100:
                raise ArgumentError("jpeg", self.jpeg, "must be in 0..100")
            object.__setattr__(self, "jpeg", int(self.jpeg))
        elif self.jpeg is not None:
            raise ArgumentError("jpeg", self.jpeg, f"only applies to JPEG artifact reduction, not to {self.task}")

    @property
    def is_sr(self) -> bool:
        return self.task in SR_TASKS

    @property
    def gray(self) -> bool:
        """True for the gray tasks (one-channel images throughout)."""
        return self.task in ("gray_dn", "gray_jpeg")

    @property
    def border(self) -> int:
        """Pixels cropped from each edge before measuring: the scale for SR, else 0."""
        return self.scale if self.is_sr else 0

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Metrics reported per image, in display order."""
        names: tuple[str, ...] = ("psnr", "ssim", "psnr_y", "ssim_y")
        if self.task in JPEG_TASKS:
            names += ("psnr_b",) if self.gray else ("psnr_b", "psnr_b_y")
        return names

    @property
    def paper_metrics(self) -> tuple[str, ...]:
        """The metrics the paper's tables print for this task."""
        if self.is_sr:
            return ("psnr_y", "ssim_y")
        if self.task in DN_TASKS:
            return ("psnr",)
        return ("psnr", "ssim", "psnr_b")

    @property
    def level(self) -> str:
        """Short text for the degradation level: ``x4``, ``sigma25``, ``q10``."""
        if self.is_sr:
            return f"x{self.scale}"
        if self.task in DN_TASKS:
            return f"sigma{_fmt_number(self.noise)}"
        return f"q{self.jpeg}"

    def describe(self) -> str:
        return f"{self.task} {self.level}"


def _fmt_number(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"



# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------
def to_uint8(output: np.ndarray) -> np.ndarray:
    """Round a float output in [0, 1] to 8 bits as the official script saves it.

    ``(clip(out, 0, 1) * 255.0).round()`` in float32, then ``uint8``.
    """
    out = np.clip(np.asarray(output, dtype=np.float32), 0.0, 1.0)
    return (out * np.float32(255.0)).round().astype(np.uint8)


def measure(output: np.ndarray, gt: np.ndarray, protocol: Protocol) -> dict[str, float]:
    """The metrics of :attr:`Protocol.metric_names` for one 8-bit output against its ground truth."""
    if output.shape != gt.shape:
        raise SwinIRError(f"output shape {output.shape} does not match the ground truth {gt.shape}")
    border = protocol.border
    result = {
        "psnr": psnr(output, gt, border),
        "ssim": ssim(output, gt, border),
    }
    if gt.ndim == 2 and not protocol.y_rounding:
        # Y of a gray image is the image itself (the official float32 /255*255 round trip is exact).
        result["psnr_y"], result["ssim_y"] = result["psnr"], result["ssim"]
    else:
        result["psnr_y"] = psnr(output, gt, border, test_y_channel=True, y_rounding=protocol.y_rounding)
        result["ssim_y"] = ssim(output, gt, border, test_y_channel=True, y_rounding=protocol.y_rounding)
    if protocol.task in JPEG_TASKS:
        result["psnr_b"] = psnr_b(output, gt, border)
        if not protocol.gray:
            result["psnr_b_y"] = psnr_b(output, gt, border, test_y_channel=True)
    return {key: float(value) for key, value in result.items()}
