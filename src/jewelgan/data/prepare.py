"""Turn a folder of product photos into a dataset archive (`jewelgan prepare`).

    from jewelgan.data.prepare import prepare
    report = prepare("photos/", "shop.jga", res=128, labels="labels.csv")
    print(report.written, "images;", len(report.rejected), "rejected")

Files are processed in sorted relative-path order by a process pool whose results come back in
that order, so the archive is the same whatever the number of workers. A bad file never stops
the run: it is rejected with a reason, listed in OUT.report.json and on stderr. The archive itself
is written through ArchiveWriter, so an interrupted run leaves no valid archive and keeps any
previous one.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from jewelgan.data.archive import RESOLUTIONS, Archive, ArchiveWriter
from jewelgan.data.dedupe import DEFAULT_NEAR_THRESHOLD, DuplicateIndex, phash, pixel_hash
from jewelgan.data.imageio import DEFAULT_MAX_PIXELS, LoadOptions, RejectedImage, image_files, load_image
from jewelgan.data.label_files import LabelFileError, read_label_file
from jewelgan.atomic import atomic_write_json
from jewelgan.data.label_balance import thin_value_warnings
from jewelgan.data.labels import LabelSchema


ALPHA_MODES = ("none", "auto")


class PrepareError(Exception):
    """The run as a whole cannot proceed (bad arguments, unreadable label file, nothing survived)."""


@dataclass
class Rejection:
    source: str   # relative image path, or "labels.csv:line 7" for a label row
    reason: str   # stable code: truncated, corrupt, not_an_image, empty_file, ...
    message: str  # one human sentence

    def line(self) -> str:
        return f"rejected {self.source}: {self.message}"


@dataclass
class PrepareReport:
    archive: str | None
    report_path: str
    source_root: str
    resolution: int
    found: int                     # files with an image extension
    written: int                   # images in the archive
    rejected: list[Rejection] = field(default_factory=list)
    near_duplicates: list[dict] = field(default_factory=list)  # kept pairs (when not dropping)
    not_keyed: list[dict] = field(default_factory=list)        # --alpha auto: photos left opaque, and why
    unlabelled: list[str] = field(default_factory=list)        # kept images without any label
    ignored: list[str] = field(default_factory=list)           # files without an image extension
    labels: dict = field(default_factory=dict)                 # how labels are read
    options: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.found / self.seconds if self.seconds > 0 else 0.0

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rejected:
            out[r.reason] = out.get(r.reason, 0) + 1
        return out

    def to_json(self) -> dict:
        d = asdict(self)
        d["rejected_by_reason"] = self.reasons()
        d["images_per_s"] = round(self.images_per_s, 1)
        return d


# --- worker side: module-level so it pickles under any start method ------------------------------

_WORKER: dict = {}


def _init_worker(root: str, opts: LoadOptions, alpha: str, ignore_sigint: bool) -> None:
    if ignore_sigint:
        # Ctrl-C is handled once, in the parent, which aborts the archive; workers just stop
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["root"] = Path(root)
    _WORKER["opts"] = opts
    _WORKER["alpha"] = alpha
    if alpha == "auto":
        import torch

        torch.set_num_threads(1)  # one matte per worker process: the processes are the parallelism


def _matte_alpha(path: Path, opts: LoadOptions, image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The jewelry matte's alpha for a prepared image. The matte decides at 256 px (matte/predict.py), so a
    small archive's photo is matted at 256 px, squared the same way, and its alpha area-resized to the archive's
    size: a ring is a few pixels wide at 32 px, not enough to tell it from its backdrop."""
    from dataclasses import replace

    from PIL import Image

    from jewelgan.matte.predict import NET_SIDE, photo_alpha

    if opts.resolution >= NET_SIDE:
        return photo_alpha(image)
    try:
        large = load_image(path, replace(opts, resolution=NET_SIDE, min_size=opts.effective_min_size))
    except RejectedImage:  # read once already, so only a file changed under us: matte what we have
        return photo_alpha(image)
    alpha, note = photo_alpha(large)
    small = Image.fromarray(alpha).resize((image.shape[1], image.shape[0]), Image.BOX)
    return np.asarray(small), note


def _process(rel: str):
    """One file -> (rel, image or None, pixel hash, phash, reason, message).

    With alpha "auto" the image is RGBA and message says why a photo could not be keyed (if so);
    duplicates are judged on the RGB photo."""
    try:
        image = load_image(_WORKER["root"] / rel, _WORKER["opts"])
    except RejectedImage as e:
        return rel, None, None, None, e.reason, e.message
    except MemoryError:
        return rel, None, None, None, "too_large", "not enough memory to decode this image"
    hashes = pixel_hash(image), phash(image)
    note = None
    if _WORKER["alpha"] == "auto":
        alpha, note = _matte_alpha(_WORKER["root"] / rel, _WORKER["opts"], image)
        image = np.concatenate([image, alpha[..., None]], axis=2)
    return rel, image, *hashes, None, note


# --- parent side ---------------------------------------------------------------------------------


def _stderr(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)



def _labels_for(files: list[str], src: Path, labels: str | Path | None, folder_attribute: str | None,
                report: PrepareReport) -> tuple[dict[str, dict[str, str | None]], LabelSchema]:
    """Per-file label dicts and the (initially empty-vocabulary) schema, in attribute order."""
    if labels is not None:
        try:
            table = read_label_file(labels, src)
        except LabelFileError as e:
            raise PrepareError(str(e)) from None
        report.labels = {"mode": "file", "file": str(Path(labels)), "attributes": table.attributes,
                         "rows": len(table.rows)}
        for where, why in table.bad_rows:
            report.rejected.append(Rejection(where, "bad_label_row", f"unreadable label row: {why}"))
        present = set(files)
        for rel, where in table.where.items():
            if rel not in present:
                report.rejected.append(Rejection(
                    where, "missing_image",
                    f"label row names {rel!r}, which is not an image file under {src}"))
        empty = {a: None for a in table.attributes}
        per_file = {f: table.rows.get(f, empty) for f in files}
        return per_file, LabelSchema({a: [] for a in table.attributes})
    if folder_attribute:
        nested = any("/" in f for f in files)
        report.labels = {"mode": "folders", "attribute": folder_attribute if nested else None}
        if not nested:
            return {f: {} for f in files}, LabelSchema()
        per_file = {f: {folder_attribute: f.split("/", 1)[0] if "/" in f else None} for f in files}
        return per_file, LabelSchema({folder_attribute: []})
    report.labels = {"mode": "none"}
    return {f: {} for f in files}, LabelSchema()


def prepare(src: str | Path, out: str | Path, res: int = 128, *,
            labels: str | Path | None = None,
            folder_attribute: str | None = "category",
            square: str = "pad",
            background: str = "auto",
            alpha: str = "none",
            drop_near_duplicates: bool = False,
            near_threshold: int = DEFAULT_NEAR_THRESHOLD,
            workers: int | None = None,
            min_size: int | None = None,
            max_pixels: int = DEFAULT_MAX_PIXELS,
            overwrite: bool = False,
            report_path: str | Path | None = None,
            progress: bool = True,
            log: Callable[[str], None] | None = _stderr) -> PrepareReport:
    """Prepare the photos under `src` into an archive at `out`; returns the report (also saved as JSON).

    labels: a CSV/JSON/JSONL label file (paths relative to src). Without it, the first sub-folder
      of each file is its value for `folder_attribute` (None: no labels at all).
    square: "pad" (the jewel stays whole) or "crop" (centre crop).
    background: for padding and alpha: "auto" (continue the photo's own background from its edges;
      cut-outs go on the median of their opaque border, else white), "white" or "#RRGGBB".
    alpha: "none" (RGB archive) or "auto" (RGBA: alpha from the jewelry matte, matte/predict.py; photos
      where it finds no piece stay opaque and are listed in the report).
    min_size: minimum length of the side that becomes `res` (default res // 2, i.e. <= 2x upscaling).
    Raises PrepareError when nothing can be written; rejected files never raise.
    """
    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    log = log or (lambda line: None)
    opts = _check_arguments(src, out, res, alpha, overwrite, square=square, background=background,
                            min_size=min_size, max_pixels=max_pixels, near_threshold=near_threshold)
    workers = workers or _default_workers()
    report_path = Path(report_path) if report_path else out.with_name(out.name + ".report.json")

    files, others = image_files(src)
    if labels is not None:  # a label file kept inside the photo folder is not an "ignored" file
        others = [o for o in others if (src / o).resolve() != Path(labels).resolve()]
    report = PrepareReport(archive=None, report_path=str(report_path), source_root=str(src.resolve()),
                           resolution=res, found=len(files), written=0, ignored=others)
    report.options = {"square": square, "background": background, "alpha": alpha, "min_size": opts.effective_min_size,
                      "max_pixels": max_pixels, "drop_near_duplicates": drop_near_duplicates,
                      "near_threshold": near_threshold, "resize": "LANCZOS (libjpeg draft >= 2x first)"}
    per_file, schema = _labels_for(files, src, labels, folder_attribute, report)
    for r in report.rejected:
        log(r.line())
    if others:
        log(f"note: ignored {len(others)} file(s) without an image extension (listed in {report_path.name})")

    writer = ArchiveWriter(out, res, schema, overwrite=overwrite, channels=4 if alpha == "auto" else 3,
                           extra_meta={"prepare": {"source_root": report.source_root,
                                                   "labels": report.labels, "options": report.options}})
    results = None
    try:
        results = _run(files, src, opts, alpha, workers, progress)
        _write_results(results, writer, per_file, DuplicateIndex(near_threshold), drop_near_duplicates,
                       report, log)
        report.written = len(writer)
        report.seconds = time.perf_counter() - t0
        _commit(writer, report, report_path, len(files), src)
    except BaseException:
        if results is not None:
            results.close()  # stops the worker pool now, not whenever it is garbage-collected
        writer.abort()
        raise
    report.archive = str(out)
    report.seconds = time.perf_counter() - t0
    report.warnings += thin_value_warnings(Archive(out).value_counts(), report.written)
    atomic_write_json(report_path, report.to_json())
    _log_summary(report, report_path, alpha, log)
    return report


def _check_arguments(src: Path, out: Path, res: int, alpha: str, overwrite: bool, *, square: str, background: str,
                     min_size: int | None, max_pixels: int, near_threshold: int) -> LoadOptions:
    """Refuse a run that cannot proceed before any work; returns the per-image load options."""
    if res not in RESOLUTIONS:
        raise PrepareError(f"--res must be one of {', '.join(map(str, RESOLUTIONS))}, got {res}")
    if not src.is_dir():
        raise PrepareError(f"{src}: source folder not found")
    if out.exists() and not overwrite:
        raise PrepareError(f"{out} already exists (use --overwrite to replace it)")
    if alpha not in ALPHA_MODES:
        raise PrepareError(f"--alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
    try:
        opts = LoadOptions(res, square=square, background=background, min_size=min_size,
                           max_pixels=max_pixels)
    except ValueError as e:
        raise PrepareError(str(e)) from None
    DuplicateIndex(near_threshold)  # validates the threshold before any work
    return opts


def _duplicate_rejection(rel: str, pix, ph, index: DuplicateIndex, drop_near_duplicates: bool,
                         report: PrepareReport) -> Rejection | None:
    """An exact duplicate is always rejected; a near one only when dropping them (else it is reported)."""
    if (first := index.exact_of(pix)) is not None:
        return Rejection(rel, "exact_duplicate", f"exact duplicate of {first} (dropped)")
    near = index.near_of(ph)
    if near is None:
        return None
    other, dist = near
    if drop_near_duplicates:
        return Rejection(rel, "near_duplicate", f"near duplicate of {other} (pHash distance {dist}, dropped)")
    report.near_duplicates.append({"source": rel, "similar_to": other, "distance": dist})
    return None


def _write_results(results, writer: ArchiveWriter, per_file: dict[str, dict[str, str | None]],
                   index: DuplicateIndex, drop_near_duplicates: bool, report: PrepareReport,
                   log: Callable[[str], None]) -> None:
    """Add each decoded image that is not a rejected duplicate to the archive, in file order."""
    for rel, image, pix, ph, reason, message in results:
        if image is None:
            rej = Rejection(rel, reason, message)
        else:
            rej = _duplicate_rejection(rel, pix, ph, index, drop_near_duplicates, report)
        if rej is not None:
            report.rejected.append(rej)
            log(rej.line())
            continue
        if message is not None:  # kept, but alpha could not be keyed
            report.not_keyed.append({"source": rel, "why": message})
        index.add(rel, pix, ph)
        writer.add(image, per_file[rel], rel)
        if not any(v for v in per_file[rel].values()) and writer.schema.names:
            report.unlabelled.append(rel)


def _commit(writer: ArchiveWriter, report: PrepareReport, report_path: Path, found: int, src: Path) -> None:
    """Commit the archive, or abort it (report saved, PrepareError raised) when no image survived."""
    if report.written == 0:
        writer.abort()
        atomic_write_json(report_path, report.to_json())
        why = ", ".join(f"{n} {k}" for k, n in report.reasons().items()) or "no image files found"
        raise PrepareError(f"no image survived out of {found} found under {src} ({why}); "
                           f"see {report_path}")
    empty_attrs = [a for a in writer.schema.names if not writer.schema.attributes[a]]
    for a in empty_attrs:
        report.warnings.append(f"attribute {a!r} has no value on any kept image")
    writer.extra_meta["prepare"]["counts"] = {"found": found, "written": report.written,
                                              "rejected": report.reasons()}
    writer.commit()


def _log_summary(report: PrepareReport, report_path: Path, alpha: str, log: Callable[[str], None]) -> None:
    """The closing notes: near duplicates kept, alpha keyed, unlabelled images, warnings."""
    if report.near_duplicates:
        log(f"note: {len(report.near_duplicates)} near duplicate(s) kept (listed in {report_path.name}; "
            f"--drop-near-duplicates drops them)")
    if alpha == "auto":
        keyed = report.written - len(report.not_keyed)
        log(f"alpha: the matte cut out {keyed} of {report.written} photos"
            + (f"; {len(report.not_keyed)} left opaque (no piece found; listed in {report_path.name})"
               if report.not_keyed else ""))
    if report.unlabelled:
        log(f"note: {len(report.unlabelled)} image(s) have no labels (listed in {report_path.name})")
    for w in report.warnings:
        log(f"warning: {w}")


def _run(files: list[str], src: Path, opts: LoadOptions, alpha: str, workers: int, progress: bool):
    """Yield _process results in file order, with a progress bar in images/s."""
    from tqdm import tqdm

    bar = tqdm(total=len(files), unit="img", desc="prepare", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, smoothing=0.1)
    try:
        if workers <= 1 or len(files) < 2:
            _init_worker(str(src), opts, alpha, ignore_sigint=False)
            for rel in files:
                yield _process(rel)
                bar.update(1)
            return
        # results must come back in submission order (map, not as_completed) so the archive's order
        # is the sorted file order whatever the scheduling; small chunks keep the bar live. An
        # executor rather than multiprocessing.Pool: if a worker dies (OOM killer, a decoder crash)
        # Pool waits forever for the lost task, the executor raises BrokenProcessPool.
        chunk = max(1, min(16, len(files) // (workers * 8)))
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context(), initializer=_init_worker,
                                   initargs=(str(src), opts, alpha, True))
        try:
            for result in pool.map(_process, files, chunksize=chunk):
                yield result
                bar.update(1)
        except BrokenProcessPool:
            raise PrepareError("a worker process died while decoding (killed, or out of memory?); no archive "
                               "was written. Rerun with --workers 1 to see which file it was") from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    finally:
        bar.close()
