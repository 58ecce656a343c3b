"""Evaluate a method on a benchmark folder under a protocol: degrade, restore, round, measure."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Union

from swinir.core.errors import ArgumentError, SwinIRError
from swinir.core.types import PathLike
from swinir.eval.dataset import HR_SUBFOLDERS, list_dataset, load_sample, resolve_dataset
from swinir.eval.methods import Method
from swinir.eval.protocol import Protocol, measure
from swinir.eval.results import EvalResult, Failure, ImageResult
from swinir.image import write_image

__all__ = ["evaluate_dataset"]

log = logging.getLogger(__name__)


def _unique_names(paths: Sequence[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    return [p.stem if stems.count(p.stem) == 1 else p.name for p in paths]



def evaluate_dataset(
    method: Method,
    dataset: PathLike,
    protocol: Protocol,
    *,
    lq_dir: Optional[PathLike] = None,
    save_dir: Optional[PathLike] = None,
    progress: Union[bool, Callable[[int, int], None]] = False,
    on_failure: Optional[Callable[[Failure], None]] = None,
    files: Optional[Iterable[PathLike]] = None,
) -> EvalResult:
    """Evaluate ``method`` on every image of ``dataset`` under ``protocol``.

    Args:
        method: a :class:`Method` (e.g. :class:`ModelMethod`, :class:`BicubicMethod`).
        dataset: folder of clean images (an ``HR`` subfolder is used when the folder has no
            images of its own, see :func:`resolve_dataset`).
        protocol: task, level and Y rounding.
        lq_dir: SR only: ready-made LR inputs named ``<name>x<scale>.<ext>``.
        save_dir: write each 8-bit output as ``<name>.png`` there (exactly what was measured).
        progress: a tqdm bar on stderr (True), none (False), or ``callback(done, total)``.
        on_failure: called for each image that cannot be evaluated (it is then skipped).
        files: evaluate these files instead of listing the folder.

    Returns:
        An :class:`EvalResult`; images that fail are in ``failures`` and left out of the mean.

    Raises:
        SwinIRError: the folder is missing or holds no images, or ``lq_dir`` is given for a task
            that is not SR.
    """
    _check_lq_dir(lq_dir, protocol)
    folder = resolve_dataset(dataset)
    paths = [Path(p) for p in files] if files is not None else list_dataset(folder)
    if not paths:
        raise SwinIRError(f"no images in {folder}")
    dataset_name = _dataset_label(Path(dataset))
    result = EvalResult(
        protocol=protocol,
        model=method.name,
        dataset=str(folder),
        dataset_name=dataset_name,
        lq_dir=str(lq_dir) if lq_dir is not None else None,
        settings=method.settings(),
    )
    out_dir = Path(save_dir) if save_dir is not None else None
    with _progress(progress, len(paths), dataset_name) as step:
        for index, (path, name) in enumerate(zip(paths, _unique_names(paths))):
            outcome = _evaluate_one(method, path, name, protocol, lq_dir, out_dir)
            if isinstance(outcome, Failure):
                result.failures.append(outcome)
                if on_failure is not None:
                    on_failure(outcome)
            else:
                result.images.append(outcome)
            step(index + 1)
    return result


def _check_lq_dir(lq_dir: Optional[PathLike], protocol: Protocol) -> None:
    """``lq_dir`` only for SR, and it must exist."""
    if lq_dir is None:
        return
    if not protocol.is_sr:
        raise ArgumentError("lq_dir", str(lq_dir), f"(ready-made LR images) only applies to SR tasks, not {protocol.task}")
    if not Path(lq_dir).is_dir():
        raise SwinIRError(f"LR folder not found: {lq_dir}")


def _evaluate_one(
    method: Method,
    path: Path,
    name: str,
    protocol: Protocol,
    lq_dir: Optional[PathLike],
    out_dir: Optional[Path],
) -> Union[ImageResult, Failure]:
    """Degrade, restore, measure (and save) one image; a :class:`Failure` when it cannot be done."""
    try:
        sample = load_sample(path, protocol, lq_dir)
        output = method(sample.lq, protocol)
        metrics = measure(output, sample.gt, protocol)
        saved = None
        if out_dir is not None:
            saved = str(write_image(out_dir / f"{name}.png", output))
        return ImageResult(name, str(path), metrics, saved)
    except (SwinIRError, OSError, ValueError, RuntimeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if path.name not in message:
            message = f"{path}: {message}"
        log.debug("failed on %s", path, exc_info=True)
        return Failure(str(path), message)


@contextmanager
def _progress(
    progress: Union[bool, Callable[[int, int], None]], total: int, desc: str
) -> Iterator[Callable[[int], None]]:
    """``step(done)`` after each image: a tqdm bar on stderr (True), the callback, or nothing."""
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="img", leave=False, dynamic_ncols=True, disable=None)
        try:
            yield lambda done: bar.update(1)
        finally:
            bar.close()
    elif callable(progress):
        yield lambda done: progress(done, total)
    else:
        yield lambda done: None


def _dataset_label(path: Path) -> str:
    """``Set5`` for ``.../Set5`` and for ``.../Set5/HR``."""
    resolved = path.resolve() if path.exists() else path
    if resolved.name in HR_SUBFOLDERS and resolved.parent.name:
        return resolved.parent.name
    return resolved.name or str(path)
