"""scripts/real_photos.py: every photo is checked against the hash manifest; mismatches and strays are
reported and skipped, never used; the layout is OUT/<split>/<category>/."""

import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "real_photos.py"


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def fake_wheel(path: Path, files: dict[str, bytes]) -> Path:
    """A wheel laid out like brickjewels 0.1.0: the photos in a tarball inside the package data."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("brickjewels/data/jewelry_images.tar.gz", tar_buf.getvalue())
    return path


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_manifest_round_trip_and_bad_files_are_skipped(tmp_path):
    good = {"ring/a.jpg": jpeg(0), "bangle/b.jpg": jpeg(1), "pendant/c.jpg": jpeg(2), "ring/dup.jpg": jpeg(0)}
    wheel = fake_wheel(tmp_path / "brickjewels-0.1.0-py3-none-any.whl", good)
    manifest = tmp_path / "m.tsv"
    res = run(tmp_path / "out1", "--brickjewels-wheel", wheel, "--manifest", manifest, "--write-manifest")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(manifest.open(), delimiter="\t"))
    assert {r["path"] for r in rows} == set(good)
    assert {r["path"]: r["category"] for r in rows}["bangle/b.jpg"] == "bracelet"   # one vocabulary
    assert {r["sha256"] for r in rows} == {hashlib.sha256(d).hexdigest() for d in good.values()}
    written = sorted(p.relative_to(tmp_path / "out1").as_posix() for p in (tmp_path / "out1").rglob("*.jpg"))
    assert len(written) == 3 and all(p.split("/")[0] in ("train", "holdout") for p in written)  # duplicate once

    # the same photos rebuild the same folder; a changed photo and a stray are reported and left out
    tampered = {**good, "ring/a.jpg": jpeg(9), "earring/new.jpg": jpeg(5)}
    (tmp_path / "w2").mkdir()
    wheel2 = fake_wheel(tmp_path / "w2" / "brickjewels-0.1.0-py3-none-any.whl", tampered)
    res = run(tmp_path / "out2", "--brickjewels-wheel", wheel2, "--manifest", manifest)
    assert res.returncode == 1
    assert "brickjewels:ring/a.jpg: sha256" in res.stdout and "differs from the manifest" in res.stdout
    assert "brickjewels:earring/new.jpg: not in m.tsv, skipped" in res.stdout
    out2 = sorted(p.name for p in (tmp_path / "out2").rglob("*.jpg"))
    assert "brickjewels-a.jpg" not in out2 and "brickjewels-new.jpg" not in out2
    assert "brickjewels-b.jpg" in out2 and "brickjewels-c.jpg" in out2
