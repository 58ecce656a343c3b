"""The SwinIR paper's published results, and re-running them with the paper's protocol.

``swinir/assets/paper_results.json`` holds every SwinIR number we could find in the paper (arXiv
2108.10257, Tables 2-6) and in the official README (DIV2K validation results, colour JPEG on
LIVE1), each row naming its official checkpoint, dataset, degradation level, metrics and source.

:func:`reproduce` runs every official model of a task on every standard test set found under a
folder and lines our measurement up with the published value::

    from swinir import paper
    report = paper.reproduce("classical_sr", "~/datasets")
    for row in report.rows:
        print(row.model, row.dataset, row.metric, row.ours, row.paper, row.diff)

Test-set folders are found by their usual names (``Set5``, ``Set14``, ``BSD100``/``B100``,
``Urban100``, ``Manga109``, ``Set12``, ``BSD68``, ``CBSD68``, ``Kodak24``, ``McMaster``,
``classic5``, ``LIVE1``, ``DIV2K_valid_HR`` ...) directly under the root or one folder down
(``benchmark/Set5``, ``testsets/Set5``), any letter case; the ground truth may sit in an ``HR``
subfolder.  For SR, ready-made LR inputs in ``LR_bicubic/X<s>`` (or ``LRbicx<s>``) are used when
present, as the official script does; otherwise they are made on the fly (identical values).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

from swinir.assets import read_asset_text
from swinir.core.errors import SwinIRError
from swinir.core.tasks import SR_TASKS, normalise_task
from swinir.eval import methods as _methods
from swinir.eval.dataset import resolve_dataset
from swinir.eval.evaluate import evaluate_dataset
from swinir.eval.methods import ModelMethod
from swinir.eval.protocol import Protocol
from swinir.eval.results import EvalResult, Failure
from swinir.image import is_image_path

__all__ = [
    "DATASET_ALIASES",
    "PaperResult",
    "ComparisonRow",
    "PaperReport",
    "load_paper_results",
    "paper_sources",
    "paper_results",
    "find_dataset",
    "find_datasets",
    "find_lr_folder",
    "reproduce",
]

log = logging.getLogger(__name__)

#: Canonical test-set name -> folder names the community uses for it (matched case-insensitively).
DATASET_ALIASES: dict[str, tuple[str, ...]] = {
    "Set5": ("Set5",),
    "Set14": ("Set14",),
    "BSD100": ("BSD100", "B100", "BSDS100"),
    "Urban100": ("Urban100",),
    "Manga109": ("Manga109",),
    "DIV2K_val": ("DIV2K_val", "DIV2K_valid", "DIV2K_valid_HR", "DIV2K_val_HR", "DIV2K"),
    "Set12": ("Set12",),
    "BSD68": ("BSD68",),
    "CBSD68": ("CBSD68",),
    "Kodak24": ("Kodak24", "Kodak", "kodak24"),
    "McMaster": ("McMaster", "McM"),
    "classic5": ("classic5", "Classic5"),
    "LIVE1": ("LIVE1", "live1"),
}


@dataclass(frozen=True)
class PaperResult:
    """One published row: an official model on one test set.

    ``metrics`` maps metric names as in :attr:`swinir.eval.protocol.Protocol.metric_names`
    (``psnr_y``, ``ssim_y``, ``psnr``, ``ssim``, ``psnr_b``) to the printed values.
    """

    task: str
    model: str
    method: str
    ensemble: bool
    dataset: str
    metrics: dict[str, float]
    source: str
    where: str
    scale: int = 1
    noise: Optional[int] = None
    jpeg: Optional[int] = None
    note: Optional[str] = None

    def protocol(self, y_rounding: bool = False) -> Protocol:
        """The evaluation protocol this row was measured with."""
        return Protocol(self.task, self.scale if self.task in SR_TASKS else 1, self.noise, self.jpeg, y_rounding)

    @property
    def level(self) -> str:
        return self.protocol().level


@lru_cache(maxsize=1)
def load_paper_results() -> dict[str, Any]:
    """The parsed ``swinir/assets/paper_results.json`` (``description``, ``sources``, ``datasets``,
    ``results``)."""
    return json.loads(read_asset_text("paper_results.json"))


def paper_sources() -> dict[str, dict[str, Any]]:
    """Where the numbers come from: ``{"paper": {...}, "readme": {...}}`` with URLs."""
    return load_paper_results()["sources"]


def paper_results(
    task: Optional[str] = None,
    *,
    ensemble: Optional[bool] = None,
    dataset: Optional[str] = None,
    model: Optional[str] = None,
) -> list[PaperResult]:
    """Published rows, optionally filtered by task, self-ensemble, dataset and model name."""
    if task is not None:
        task = normalise_task(task)
    rows = []
    for raw in load_paper_results()["results"]:
        row = PaperResult(
            task=raw["task"],
            model=raw["model"],
            method=raw["method"],
            ensemble=bool(raw["ensemble"]),
            dataset=raw["dataset"],
            metrics={k: float(v) for k, v in raw["metrics"].items()},
            source=raw["source"],
            where=raw["where"],
            scale=int(raw.get("scale", 1)),
            noise=raw.get("noise"),
            jpeg=raw.get("jpeg"),
            note=raw.get("note"),
        )
        if task is not None and row.task != task:
            continue
        if ensemble is not None and row.ensemble != ensemble:
            continue
        if dataset is not None and row.dataset.lower() != dataset.lower():
            continue
        if model is not None and row.model != model:
            continue
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Finding test sets
# --------------------------------------------------------------------------------------------
def _children(folder: Path) -> list[Path]:
    try:
        return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.name)
    except OSError:
        return []


def find_dataset(root: Union[str, Path], name: str) -> Optional[Path]:
    """The folder of test set ``name`` (a key of :data:`DATASET_ALIASES`) under ``root``, or None.

    Looks at ``root`` itself, then one level down; the first alias that matches wins.  The
    returned folder is the dataset folder (``.../Set5``), not its ``HR`` subfolder.
    """
    aliases = [a.lower() for a in DATASET_ALIASES.get(name, (name,))]
    base = Path(root).expanduser()
    levels = [base] + _children(base)
    for alias in aliases:
        for folder in levels:
            for child in _children(folder):
                if child.name.lower() == alias and _has_images(child):
                    return child
    return None


def _has_images(folder: Path) -> bool:
    try:
        target = resolve_dataset(folder)
        return any(p.is_file() and is_image_path(p) for p in target.iterdir())
    except (SwinIRError, OSError):
        return False


def find_datasets(root: Union[str, Path], names: Optional[list[str]] = None) -> dict[str, Path]:
    """Every standard test set found under ``root``: canonical name -> folder."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise SwinIRError(f"datasets root not found: {base}")
    found = {}
    for name in names or list(DATASET_ALIASES):
        folder = find_dataset(base, name)
        if folder is not None:
            found[name] = folder
    return found


def find_lr_folder(dataset: Union[str, Path], scale: int) -> Optional[Path]:
    """Ready-made bicubic LR inputs for ``scale`` inside a dataset folder, or None.

    Accepts ``LR_bicubic/X4`` (EDSR/official layout, any case) and ``LRbicx4`` (BasicSR).
    """
    folder = Path(dataset)
    if folder.name in ("HR", "GTmod12", "GT", "gt", "hr", "original"):
        folder = folder.parent
    wanted = [("lr_bicubic", f"x{scale}"), (f"lrbicx{scale}", None)]
    for first, second in wanted:
        for child in _children(folder):
            if child.name.lower() != first:
                continue
            if second is None:
                return child
            for sub in _children(child):
                if sub.name.lower() == second:
                    return sub
    return None


# --------------------------------------------------------------------------------------------
# Reproducing the tables
# --------------------------------------------------------------------------------------------
@dataclass
class ComparisonRow:
    """Our measurement next to the published one for one model, test set and metric."""

    model: str
    method: str
    dataset: str
    level: str
    metric: str
    ours: Optional[float]
    paper: float
    n: int
    expected_n: Optional[int]
    source: str

    @property
    def diff(self) -> Optional[float]:
        """``ours - paper`` (None when nothing was measured)."""
        return None if self.ours is None else self.ours - self.paper

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "method": self.method, "dataset": self.dataset, "level": self.level,
            "metric": self.metric, "ours": self.ours, "paper": self.paper, "diff": self.diff,
            "n": self.n, "expected_n": self.expected_n, "source": self.source,
        }


@dataclass
class PaperReport:
    """The outcome of :func:`reproduce`."""

    task: str
    root: str
    ensemble: bool
    rows: list[ComparisonRow] = field(default_factory=list)
    evaluations: list[EvalResult] = field(default_factory=list)
    model_failures: list[Failure] = field(default_factory=list)
    datasets: dict[str, str] = field(default_factory=dict)

    @property
    def image_failures(self) -> list[Failure]:
        return [f for result in self.evaluations for f in result.failures]

    @property
    def ok(self) -> bool:
        """True when every model loaded and every image was measured."""
        return not self.model_failures and not self.image_failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "paper": self.task,
            "datasets_root": self.root,
            "ensemble": self.ensemble,
            "datasets": self.datasets,
            "rows": [row.to_dict() for row in self.rows],
            "evaluations": [result.to_dict() for result in self.evaluations],
            "failed_models": [{"model": f.file, "error": f.error} for f in self.model_failures],
            "sources": paper_sources(),
        }


def _rows_for(task: str, ensemble: bool) -> list[PaperResult]:
    rows = paper_results(task, ensemble=ensemble)
    if not rows and ensemble:  # the paper prints SwinIR+ only for classical SR
        rows = paper_results(task, ensemble=False)
    return rows


def reproduce(
    task: str,
    root: Union[str, Path],
    *,
    ensemble: bool = False,
    y_rounding: bool = False,
    device: Any = "cpu",
    tile: Union[int, str, None] = 0,
    tile_overlap: int = 32,
    precision: str = "fp32",
    padding: str = "paper",
    backend: str = "auto",
    progress: bool = False,
    on_failure: Optional[Callable[[Failure], None]] = None,
    on_model_failure: Optional[Callable[[Failure], None]] = None,
    on_result: Optional[Callable[[EvalResult, list[ComparisonRow]], None]] = None,
) -> PaperReport:
    """Run every official model of ``task`` that the paper reports on the test sets under ``root``.

    Models are loaded with :func:`swinir.eval.methods.load_checkpoint` (cached or downloaded official
    weights); a model that cannot be loaded is reported in ``model_failures`` and skipped.

    Args:
        task: one of the paper's tasks (``classical_sr``, ``lightweight_sr``, ``gray_dn``,
            ``color_dn``, ``gray_jpeg``, ``color_jpeg``).
        root: folder holding the test sets (see :func:`find_datasets`).
        ensemble: self-ensemble, compared against the paper's SwinIR+ rows where they exist.
        y_rounding, device, tile, tile_overlap, precision, padding, backend: the evaluation options.
        progress: tqdm bars on stderr.
        on_failure: called for each image that cannot be evaluated.
        on_model_failure: called for each model that cannot be loaded (``file`` is its name).
        on_result: called after each model/test-set evaluation with its comparison rows.

    Raises:
        SwinIRError: unknown task, no published results for it, or no test set found.
    """
    task = normalise_task(task)
    published = _rows_for(task, ensemble)
    if not published:
        raise SwinIRError(f"the paper publishes no PSNR/SSIM table for {task}")
    found = _find_test_sets(task, root, published)
    expected = load_paper_results().get("datasets", {})
    report = PaperReport(task, str(root), ensemble, datasets={k: str(v) for k, v in found.items()})
    options = {"tile": tile, "tile_overlap": tile_overlap, "ensemble": ensemble, "precision": precision,
               "device": device, "padding": padding, "backend": backend}
    for model_name, rows in _rows_by_model(published, found).items():
        try:
            method = _open_model(model_name, options)
        except SwinIRError as exc:
            failure = Failure(model_name, str(exc).splitlines()[0])
            report.model_failures.append(failure)
            if on_model_failure is not None:
                on_model_failure(failure)
            continue
        for row in rows:
            protocol = row.protocol(y_rounding)
            folder = found[row.dataset]
            lq_dir = find_lr_folder(folder, protocol.scale) if protocol.is_sr else None
            result = evaluate_dataset(method, folder, protocol, lq_dir=lq_dir, progress=progress,
                                      on_failure=on_failure)
            result.dataset_name = row.dataset
            report.evaluations.append(result)
            new_rows = _comparison_rows(model_name, row, result, expected.get(row.dataset))
            report.rows.extend(new_rows)
            if on_result is not None:
                on_result(result, new_rows)
    return report


def _find_test_sets(task: str, root: Union[str, Path], published: list[PaperResult]) -> dict[str, Path]:
    """The published test sets of ``task`` found under ``root``, in the paper's order."""
    wanted = sorted({row.dataset for row in published}, key=list(DATASET_ALIASES).index)
    found = find_datasets(root, wanted)
    if not found:
        names = ", ".join(wanted)
        raise SwinIRError(f"none of the {task} test sets ({names}) found under {root}")
    return found


def _rows_by_model(published: list[PaperResult], found: dict[str, Path]) -> dict[str, list[PaperResult]]:
    """The published rows on the test sets we have, grouped by official model name."""
    models: dict[str, list[PaperResult]] = {}
    for row in published:
        if row.dataset in found:
            models.setdefault(row.model, []).append(row)
    return models


def _open_model(model_name: str, options: dict[str, Any]) -> ModelMethod:
    """Load an official model for evaluation (``SwinIRError`` when it cannot be loaded)."""
    net = _methods.load_checkpoint(model_name, options["device"])
    return ModelMethod(net, name=model_name, **options)


def _comparison_rows(model_name: str, row: PaperResult, result: EvalResult,
                     expected_n: Optional[int]) -> list[ComparisonRow]:
    """Our mean of each metric of ``row`` next to the published value."""
    mean = result.mean()
    return [
        ComparisonRow(model_name, row.method, row.dataset, row.level, metric,
                      mean.get(metric) if result.n else None, value, result.n, expected_n, row.source)
        for metric, value in row.metrics.items()
    ]
