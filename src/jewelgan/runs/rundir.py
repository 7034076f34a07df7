"""The run directory: resolved config with provenance, metrics log, sample grids, checkpoints.

    RUN/
        config.yaml        the resolved TrainConfig (loadable with --config); header lists versions and git hash
        run.json           provenance: package versions, git commit, archive hash, start time, command line,
                           the CPU (model, cores, vector ISA: the same preset trains at half the speed on AVX2)
        metrics.jsonl      one JSON object per line: kind=train (losses, D outputs, images/s), eval, event
        samples/           reals.png, grid-<kimg>.png (fixed seeds, so grids are comparable over time)
        checkpoints/       step-<step>/ (see checkpoint.py), best.json
        tb/                TensorBoard events (only with --tensorboard and the package installed)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Iterator

from jewelgan.runs.checkpoint import checkpoint_root, latest_checkpoint, list_checkpoints

_PACKAGES = ("jewelgan", "torch", "numpy", "safetensors", "pillow", "pyyaml", "typer", "tqdm")


class RunDir:
    """The one place that knows a run directory's layout (the module docstring): where each file lives and how
    run.json and metrics.jsonl are read. Checkpoints themselves are checkpoint.py's."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def of(cls, path: str | Path) -> "RunDir":
        """The run a path belongs to: a run directory, or a checkpoint folder inside its checkpoints/."""
        path = Path(path)
        if path.parent == checkpoint_root(path.parent.parent) and (path / "state.json").is_file():
            return cls(path.parent.parent)
        return cls(path)

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def tb_dir(self) -> Path:
        return self.path / "tb"

    @property
    def checkpoints_dir(self) -> Path:
        return checkpoint_root(self.path)

    def provenance(self) -> dict:
        """run.json as written by write_provenance; {} when the run has none (a bare checkpoint copy)."""
        return json.loads(self.run_json.read_text()) if self.run_json.is_file() else {}

    def config_text(self) -> str:
        return self.config_file.read_text() if self.config_file.is_file() else ""

    def metrics(self) -> list[dict]:
        """metrics.jsonl's records, oldest first."""
        return [rec for _, rec in self._metric_lines()]

    def _metric_lines(self) -> Iterator[tuple[str, dict]]:
        if not self.metrics_file.is_file():
            return
        for line in self.metrics_file.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if isinstance(rec, dict):
                yield line, rec

    def rewind_metrics(self, step: int) -> None:
        """Drop the records logged after `step`, atomically (a resume logs them again)."""
        if not self.metrics_file.is_file():
            return
        kept = [line for line, rec in self._metric_lines() if int(rec.get("step", 0)) <= step]
        tmp = self.metrics_file.with_name(f".metrics.jsonl.tmp-{os.getpid()}")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.metrics_file)

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.path)

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.path)

    def grids(self) -> list[Path]:
        """The sample grids, oldest first (their names sort by kimg)."""
        return sorted(self.samples_dir.glob("grid-*.png")) if self.samples_dir.is_dir() else []


def lineage_totals(init_from: dict | None) -> tuple[float, float]:
    """(kimg, seconds) of training behind a run's starting generator, over the whole chain of sources
    (run.json's init_from, carried on into model.json by export)."""
    kimg = seconds = 0.0
    while init_from:
        kimg, seconds = kimg + init_from.get("kimg", 0.0), seconds + init_from.get("seconds", 0.0)
        init_from = init_from.get("init_from")
    return kimg, seconds


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


# the instruction sets that decide CPU training speed here (bf16 pays only on some chips: docs/experiments.md)
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_summary() -> dict:
    """The CPU this process runs on: model name, logical cores, torch's kernel level and the ISA flags
    above (from /proc/cpuinfo where there is one). Timings and time-budgeted quality depend on it."""
    import torch

    out = {"model": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "torch_capability": torch.backends.cpu.get_cpu_capability(), "isa": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            out["model"] = value.strip()
        elif key.strip() == "flags":  # the first processor's; the others match on the machines we train on
            flags = set(value.split())
            out["isa"] = [f for f in _ISA_FLAGS if f in flags]
            break
    return out


def describe_cpu(cpu: dict) -> str:
    """One line for tables and logs, e.g. "AMD EPYC, 2 cores, avx2 fma (torch AVX2)"."""
    return f"{cpu['model']}, {cpu['cores']} cores, {' '.join(cpu['isa']) or 'no avx2'} (torch {cpu['torch_capability']})"


def git_state() -> dict:
    """Commit and dirty flag of the checkout jewelgan runs from (read-only git calls), if any."""
    src = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def new_run_dir(out: str | Path, model: str, res: int, name: str | None = None) -> Path:
    """RUN = OUT/NNNNN-model-res (next free number) or OUT/name; refuses to reuse an existing run."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if name:
        run = out / name
        if run.exists() and any(run.iterdir()):
            raise FileExistsError(f"{run} already exists; pass --resume {run} to continue it, or another --name")
        run.mkdir(exist_ok=True)
        return run
    numbers = [int(m.group(1)) for p in out.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    n = max(numbers, default=-1) + 1
    while True:  # another process may take the same number between listing and mkdir
        run = out / f"{n:05d}-{model}-{res}"
        try:
            run.mkdir()
            return run
        except FileExistsError:
            n += 1


def write_provenance(run: Path, config, archive, init_from: dict | None = None) -> None:
    """config.yaml and run.json; init_from: where G started (train/warm_start.py's origin), if not fresh."""
    versions, git = package_versions(), git_state()
    header = ["# jewelgan resolved training config (load with --config)",
              "# versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
              f"# git: {git.get('commit', 'unknown')}{' (dirty)' if git.get('dirty') else ''}", ""]
    import yaml

    rd = RunDir(run)
    rd.config_file.write_text("\n".join(header) + yaml.safe_dump(config.to_sections(), sort_keys=False))
    info = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv, "host": platform.node(), "platform": platform.platform(),
        "versions": versions, "git": git, "cpu": cpu_summary(),
        "archive": {"path": str(Path(archive.path).resolve()), "content_hash": archive.content_hash,
                    "count": len(archive), "resolution": archive.resolution},
    }
    if init_from:
        info["init_from"] = init_from
    rd.run_json.write_text(json.dumps(info, indent=1) + "\n")


class MetricsLog:
    """Append-only JSONL (flushed per line, so a kill loses at most the line being written)."""

    def __init__(self, run: Path, enabled: bool = True, tensorboard: bool = False):
        self.enabled = enabled
        rd = RunDir(run)
        self._f = open(rd.metrics_file, "a") if enabled else None
        self._tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(rd.tb_dir))
            except ImportError:
                warnings.warn("--tensorboard: the tensorboard package is not installed; logging to metrics.jsonl only",
                              stacklevel=2)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()
        if self._tb is not None and "kimg" in record:
            step = int(round(record["kimg"] * 1000))
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "kimg"):
                    self._tb.add_scalar(f"{record.get('kind', 'train')}/{k}", v, step)

    def close(self) -> None:
        if self._f:
            self._f.close()
            self._f = None
        if self._tb is not None:
            self._tb.close()


def rewind_metrics(run: Path, step: int) -> None:
    """On resume: drop records logged after the checkpoint's step (they will be logged again)."""
    RunDir(run).rewind_metrics(step)


def lock_run_dir(run: str | Path):
    """Hold an exclusive lock on RUN/.lock while this process trains the run; returns the open lock file
    (close it to release). A second trainer of the same run, such as a resume started while an orphaned
    worker of a killed torchrun job still trains, is refused instead of writing beside it. The kernel
    drops the lock when its holder dies, even by SIGKILL, so a crash never leaves a stale lock. Where the
    filesystem cannot lock (some network mounts) the run goes on unlocked."""
    import fcntl
    import socket

    path = Path(run) / ".lock"
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise FileExistsError(f"{run} is being trained by {holder}; stop it before resuming or training there") from None
    except OSError:
        return f  # no locking here: carry on as before
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    return f
