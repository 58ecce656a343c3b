"""The restoration tasks, in the order of the paper, as every module names them."""
from __future__ import annotations

SR_TASKS: tuple[str, ...] = ("classical_sr", "lightweight_sr", "real_sr")
DN_TASKS: tuple[str, ...] = ("gray_dn", "color_dn")
JPEG_TASKS: tuple[str, ...] = ("gray_jpeg", "color_jpeg")
TASKS: tuple[str, ...] = SR_TASKS + DN_TASKS + JPEG_TASKS
