"""Atomicity under real interruption: a killed or Ctrl-C'd prepare never leaves a valid archive
and never damages the previous one."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jewelgan.data import Archive, ArchiveError
from jewelgan.data.prepare import prepare


def _many_photos(src: Path, n: int) -> None:
    # 768 px patterned PNGs: ~100 kB each but ~20 ms to decode and resize, so a run of 150 lasts
    # seconds, far longer than the polling delay, while the test writes only ~16 MB
    y, x = np.mgrid[0:768, 0:768]
    buf = io.BytesIO()
    Image.fromarray(np.stack([x % 256, y % 256, (x * y) % 256], -1).astype(np.uint8)).save(buf, "PNG")
    src.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (src / f"{i:04d}.png").write_bytes(buf.getvalue())


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen:
    code = "import sys; from jewelgan.cli import main; sys.argv[0] = 'jewelgan'; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_partial(tmp_path: Path, proc: subprocess.Popen, name: str) -> Path:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [p for p in tmp_path.iterdir() if p.name.startswith(f".{name}.partial-")]
        if found and (found[0] / "images.u8").exists() and (found[0] / "images.u8").stat().st_size > 0:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"prepare finished before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.002)
    proc.kill()
    pytest.fail("no partial archive appeared")


@pytest.fixture
def previous(tmp_path):
    """A source of slow photos and a finished previous archive at the target."""
    old_src = tmp_path / "old"
    old_src.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 80, 100, 200)).save(old_src / f"{i}.png")
    prepare(old_src, tmp_path / "a.jga", 32, workers=1, progress=False, log=None)
    _many_photos(tmp_path / "src", 150)
    return Archive(tmp_path / "a.jga").content_hash


def test_sigkill_mid_write_leaves_no_valid_archive_and_keeps_previous(tmp_path, previous):
    proc = _start(["prepare", "src", "a.jga", "--res", "128", "--workers", "1", "--overwrite", "--quiet"], tmp_path)
    partial = _wait_for_partial(tmp_path, proc, "a.jga")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    a = Archive(tmp_path / "a.jga")
    assert a.content_hash == previous and len(a) == 3 and a.verify()
    # the half-written folder (a kill gives no chance to clean up) does not open as an archive
    with pytest.raises(ArchiveError, match="meta.json missing"):
        Archive(partial)
    # the report beside it still describes the previous, complete run
    assert '"written": 3' in (tmp_path / "a.jga.report.json").read_text()


def test_ctrl_c_aborts_cleanly_with_workers(tmp_path, previous):
    proc = _start(["prepare", "src", "a.jga", "--res", "128", "--workers", "2", "--overwrite", "--quiet"], tmp_path)
    _wait_for_partial(tmp_path, proc, "a.jga")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted: a.jga was not written" in err
    assert Archive(tmp_path / "a.jga").content_hash == previous
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # partial removed


def test_worker_killed_fails_clearly_instead_of_hanging(tmp_path, previous):
    proc = _start(["prepare", "src", "a.jga", "--res", "128", "--workers", "2", "--overwrite", "--quiet"], tmp_path)
    _wait_for_partial(tmp_path, proc, "a.jga")
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert children, "no worker processes found"
    os.kill(int(children[0]), signal.SIGKILL)  # what the OOM killer does to a worker on a huge image
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "error: a worker process died while decoding" in err
    assert Archive(tmp_path / "a.jga").content_hash == previous
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
