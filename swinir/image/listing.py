"""Expanding files and folders into the list of images to process."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from swinir.core.errors import ImageReadError
from swinir.core.types import PathLike

__all__ = ["IMAGE_EXTENSIONS", "is_image_path", "list_images"]

#: File extensions (lower case, with the dot) that :func:`list_images` picks up in folders.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)


def is_image_path(path: PathLike) -> bool:
    """True when the file name has an image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _sort_key(rel: Path) -> tuple[str, str]:
    text = rel.as_posix()
    return (text.casefold(), text)


def list_images(
    inputs: PathLike | Iterable[PathLike], recursive: bool = False, extensions: Iterable[str] = ()
) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(path, relative_path)`` pairs, in a stable order.

    A file given directly is kept whatever its extension (``relative_path`` is its name).  A
    folder contributes its files with an image extension (png, jpg, jpeg, bmp, tif, tiff, webp;
    any case), sorted by relative path, with ``relative_path`` relative to that folder so the
    outputs can mirror the input tree; sub-folders only with ``recursive=True``.  ``extensions``
    adds more (e.g. ``(".mp4", ".mkv")`` for a batch that takes videos too).  Hidden files
    and folders (names starting with ".") are skipped, symlinked folders are not followed, and a
    file reached twice is listed once.

    Raises:
        ImageReadError: an input does not exist (one line naming it).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    result: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    extra = {e.lower() for e in extensions}

    def wanted(name: str | Path) -> bool:
        return is_image_path(name) or Path(name).suffix.lower() in extra

    def add(path: Path, rel: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            result.append((path, rel))

    for item in inputs:
        root = Path(item)
        if root.is_dir():
            found: list[Path] = []
            if recursive:
                for folder, dirs, files in os.walk(root):
                    dirs[:] = [d for d in dirs if not d.startswith(".")]
                    base = Path(folder)
                    found.extend(base / f for f in files
                                 if not f.startswith(".") and wanted(f))
            else:
                found = [p for p in root.iterdir()
                         if not p.name.startswith(".") and wanted(p) and p.is_file()]
            pairs = [(p, p.relative_to(root)) for p in found if p.is_file()]
            for path, rel in sorted(pairs, key=lambda pr: _sort_key(pr[1])):
                add(path, rel)
        elif root.exists():
            add(root, Path(root.name))
        else:
            raise ImageReadError(root, "no such file or directory")
    return result
