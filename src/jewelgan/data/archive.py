"""The dataset archive: one folder with O(1) random access to uint8 images and their labels.

Layout (see docs/archive-format.md):
    meta.json     format tag, version, count, resolution, label schema, content hash; written last
    images.u8     raw uint8 pixels, N x R x R x C (NHWC; C = 3 for RGB, 4 for RGB + alpha), memory-mapped on read
    labels.npy    int16 (N, A): index into each attribute's vocabulary, -1 for missing
    sources.json  N source paths (or render descriptions), for provenance and memorisation reports

A writer fills a hidden sibling folder and renames it into place only when complete, so an
interrupted write never leaves something that opens as a valid archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from jewelgan.atomic import fsync_dir, fsync_file
from jewelgan.data.labels import LabelSchema
from jewelgan.formats import read_tagged_json

FORMAT = "jewelgan-archive"
# version 1: RGB only; version 2 adds 4-channel archives (RGB as seen on the backdrop, plus coverage as alpha).
# RGB archives are still written as version 1, so readers that predate alpha keep reading them.
VERSION = 2
CHANNELS = (3, 4)
RESOLUTIONS = (32, 64, 128, 256, 512, 1024)


class ArchiveError(Exception):
    """An archive is missing, incomplete or inconsistent."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(path: Path) -> None:
    """Delete partial folders left by writers that were killed (their process no longer exists)."""
    for p in path.parent.glob(f".{path.name}.partial-*"):
        try:
            pid = int(p.name.rsplit(".partial-", 1)[1].split("-")[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


class ArchiveWriter:
    """Append images one at a time (in the order they should be indexed), then commit.

    Use as a context manager: leaving the block normally commits; an exception discards the
    partial folder and leaves any previous archive at the target untouched.
    """

    def __init__(self, path: str | Path, resolution: int, schema: LabelSchema | None = None,
                 *, overwrite: bool = False, extra_meta: dict | None = None, channels: int = 3):
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
        if channels not in CHANNELS:
            raise ValueError(f"channels must be 3 (RGB) or 4 (RGB + alpha), got {channels}")
        self.channels = channels
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} already exists (pass overwrite to replace it)")
        self.resolution = resolution
        self.schema = schema if schema is not None else LabelSchema()
        self.extra_meta = dict(extra_meta or {})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(self.path)
        self._tmp = self.path.parent / f".{self.path.name}.partial-{os.getpid()}-{time.time_ns()}"
        self._tmp.mkdir()
        self._images = open(self._tmp / "images.u8", "wb")
        self._hash = hashlib.sha256()
        self._labels: list[np.ndarray] = []
        self._sources: list[str] = []
        self._done = False

    def __len__(self) -> int:
        return len(self._sources)

    def add(self, image: np.ndarray, labels: dict[str, str | None] | None = None,
            source: str = "") -> int:
        """Append one HxWxC uint8 image; labels may name new values (the schema grows)."""
        r, c = self.resolution, self.channels
        if image.dtype != np.uint8 or image.shape != (r, r, c):
            raise ValueError(f"image must be uint8 {r}x{r}x{c}, got {image.dtype} {image.shape}")
        data = np.ascontiguousarray(image).tobytes()
        self._images.write(data)
        self._hash.update(data)
        self._labels.append(self.schema.encode(labels or {}, grow=True))
        self._sources.append(str(source))
        return len(self._sources) - 1

    def commit(self) -> Path:
        if self._done:
            raise ArchiveError("archive already committed or aborted")
        if not self._sources:
            self.abort()
            raise ArchiveError(f"no images were written to {self.path}")
        self._images.flush()
        os.fsync(self._images.fileno())
        self._images.close()
        # rows written before the schema grew are shorter: pad them with MISSING
        width = len(self.schema)
        labels = np.full((len(self._labels), width), -1, dtype=np.int16)
        for i, row in enumerate(self._labels):
            labels[i, : len(row)] = row
        np.save(self._tmp / "labels.npy", labels)
        (self._tmp / "sources.json").write_text(json.dumps(self._sources))
        self._hash.update(labels.tobytes())
        self._hash.update(json.dumps(self.schema.to_json(), sort_keys=True).encode())
        meta = {
            **self.extra_meta,  # first, so an extra key can never shadow the format fields below
            "format": FORMAT,
            "version": 1 if self.channels == 3 else 2,
            "count": len(self._sources),
            "resolution": self.resolution,
            "channels": self.channels,
            "schema": self.schema.to_json(),
            "content_hash": "sha256:" + self._hash.hexdigest(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (self._tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for name in ("labels.npy", "sources.json", "meta.json"):
            fsync_file(self._tmp / name)
        fsync_dir(self._tmp)
        old = None
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.old-{os.getpid()}-{time.time_ns()}"
            os.rename(self.path, old)
        os.rename(self._tmp, self.path)
        fsync_dir(self.path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._done = True
        return self.path

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if not self._images.closed:
            self._images.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class Archive:
    """Read-only view of an archive; images are memory-mapped, so opening is O(1) in its size."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not self.path.exists():
            olds = sorted(self.path.parent.glob(f".{self.path.name}.old-*"))
            if olds:  # a crash between the two renames of a replacing commit
                raise ArchiveError(f"{self.path}: missing; a previous version survives in {olds[-1]} (rename it back)")
        if not self.path.is_dir():
            raise ArchiveError(f"{self.path}: not a dataset archive folder (run `jewelgan prepare` or `jewelgan render`)")
        if not meta_path.is_file():
            raise ArchiveError(f"{self.path}: meta.json missing: the archive is incomplete")
        meta = read_tagged_json(meta_path, FORMAT, VERSION, ArchiveError)
        self.meta = meta
        self.count = int(meta["count"])
        self.resolution = int(meta["resolution"])
        self.schema = LabelSchema.from_json(meta["schema"])
        self.content_hash: str = meta["content_hash"]
        self.channels = int(meta.get("channels", 3))
        if self.channels not in CHANNELS:
            raise ArchiveError(f"{meta_path}: channels must be 3 or 4, got {self.channels}")
        expected = self.count * self.resolution * self.resolution * self.channels
        size = (self.path / "images.u8").stat().st_size if (self.path / "images.u8").exists() else -1
        if size != expected:
            raise ArchiveError(f"{self.path}/images.u8: {size} bytes, expected {expected} for {self.count} images")
        self.labels: np.ndarray = np.load(self.path / "labels.npy", allow_pickle=False)
        if self.labels.shape != (self.count, len(self.schema)):
            raise ArchiveError(f"{self.path}/labels.npy: shape {self.labels.shape}, expected {(self.count, len(self.schema))}")
        self._images: np.ndarray | None = None
        self._sources: list[str] | None = None

    @property
    def images(self) -> np.ndarray:
        # opened lazily so that forked DataLoader workers each map the file themselves
        if self._images is None:
            r = self.resolution
            self._images = np.memmap(self.path / "images.u8", dtype=np.uint8, mode="r",
                                     shape=(self.count, r, r, self.channels))
        return self._images

    @property
    def has_alpha(self) -> bool:
        return self.channels == 4

    def rgb(self, index) -> np.ndarray:
        """Images as seen (RGB on the backdrop; alpha dropped) for an index, slice or index array.

        Everything that compares images (metrics, near-duplicates, contact sheets) reads this."""
        return np.asarray(self.images[index][..., :3])

    @property
    def sources(self) -> list[str]:
        if self._sources is None:
            self._sources = json.loads((self.path / "sources.json").read_text())
        return self._sources

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(HxWxC uint8 image, int16 label row) for one index."""
        if not -self.count <= index < self.count:
            raise IndexError(f"index {index} out of range for {self.count} images")
        return np.asarray(self.images[index]), self.labels[index]

    def label_dict(self, index: int) -> dict[str, str | None]:
        return self.schema.decode(self.labels[index])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_images"] = None  # never pickle the memmap into worker processes
        return state

    def verify(self) -> bool:
        """Recompute the content hash (reads every byte) and compare with meta.json."""
        h = hashlib.sha256()
        with open(self.path / "images.u8", "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        h.update(self.labels.astype(np.int16).tobytes())
        h.update(json.dumps(self.schema.to_json(), sort_keys=True).encode())
        return "sha256:" + h.hexdigest() == self.content_hash

    def value_counts(self) -> dict[str, dict[str, int]]:
        """Counts per attribute value, with "(missing)" for unlabelled images."""
        out: dict[str, dict[str, int]] = {}
        for j, name in enumerate(self.schema.names):
            col = self.labels[:, j]
            counts = {v: int((col == i).sum()) for i, v in enumerate(self.schema.attributes[name])}
            missing = int((col < 0).sum())
            if missing:
                counts["(missing)"] = missing
            out[name] = counts
        return out
