"""Accuracy of the level estimators in swinir.image.analysis (docs/estimators.md).

JPEG quality: every test image encoded by Pillow and by OpenCV at q = 5..95; counts exact hits
and the largest error.  Noise σ: clean Set12 (gray) and McMaster (colour) images with added
Gaussian noise σ = 5..50 (rounded, clipped to 8 bits, seed 0); mean and max absolute error per σ.

    nice -n 10 python benchmarks/bench_estimators.py [--shared ../shared] [--out docs/estimators.md]
"""
from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from swinir.image.analysis import estimate_noise, jpeg_quality

SIGMAS = range(5, 55, 5)
QUALITIES = range(5, 96)


def load(folder: Path, mode: str) -> list[np.ndarray]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".tif", ".bmp", ".jpg"))
    return [np.asarray(Image.open(p).convert(mode)) for p in files]


def jpeg_rows(images: list[np.ndarray]) -> list[str]:
    rows = []
    for name, encode in (("Pillow", pillow_jpeg), ("OpenCV", opencv_jpeg)):
        exact = total = 0
        worst = 0
        for img in images:
            for q in QUALITIES:
                est = jpeg_quality(Image.open(io.BytesIO(encode(img, q))))
                total += 1
                exact += int(est is not None and est.exact and est.quality == q)
                worst = max(worst, abs((est.quality if est else 0) - q))
        rows.append(f"| {name} | {exact} / {total} | {worst} |")
    return rows


def pillow_jpeg(img: np.ndarray, q: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=q)
    return buf.getvalue()


def opencv_jpeg(img: np.ndarray, q: int) -> bytes:
    bgr = img[:, :, ::-1] if img.ndim == 3 else img
    ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok
    return enc.tobytes()


def noise_rows(images: list[np.ndarray]) -> tuple[list[str], float]:
    rng = np.random.default_rng(0)
    rows, seconds = [], 0.0
    for sigma in SIGMAS:
        errors = []
        for img in images:
            noisy = np.clip(np.round(img + rng.normal(0.0, sigma, img.shape)), 0, 255).astype(np.uint8)
            start = time.perf_counter()
            errors.append(estimate_noise(noisy).sigma - sigma)
            seconds += time.perf_counter() - start
        err = np.abs(errors)
        rows.append(f"| {sigma} | {np.mean(errors):+.2f} | {err.mean():.2f} | {err.max():.2f} |")
    return rows, seconds / (len(images) * len(SIGMAS))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sets = Path(args.shared) / "testsets"
    gray, colour = load(sets / "Set12", "L"), load(sets / "McMaster", "RGB")
    lines = ["## JPEG quality (q = 5..95, Set12 + McMaster)", "",
             "| encoder | exact | max error |", "|---|---|---|", *jpeg_rows(gray + colour), ""]
    for title, images in (("Set12, gray", gray), ("McMaster, colour", colour)):
        rows, per_image = noise_rows(images)
        lines += [f"## Noise σ: {title} ({len(images)} images, {per_image:.2f} s per image)", "",
                  "| σ | mean error (bias) | mean abs error | max abs error |", "|---|---|---|---|", *rows, ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
