"""`jewelgan dataset info`: counts per attribute value and a labelled contact sheet."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.data import Archive, ArchiveWriter
from jewelgan.data.contact_sheet import caption, contact_sheet


@pytest.fixture
def archive(tmp_path):
    rng = np.random.default_rng(0)
    with ArchiveWriter(tmp_path / "a.jga", 32) as w:
        for i in range(10):
            w.add(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                  {"category": ["ring", "pendant"][i % 2] if i < 8 else None, "metal": "silver" if i < 3 else "rose_gold"},
                  f"p{i}.jpg")
    return tmp_path / "a.jga"


def test_contact_sheet_shows_seeded_sample_with_labels(archive):
    a = Archive(archive)
    sheet = contact_sheet(a, n=4, seed=1)
    assert sheet.mode == "RGB" and sheet.width > 2 * 128
    assert contact_sheet(a, n=4, seed=1).tobytes() == sheet.tobytes()
    assert contact_sheet(a, n=4, seed=2).tobytes() != sheet.tobytes()
    big = contact_sheet(a, n=100)  # n above the archive size shows every image once
    assert big.size != sheet.size
    assert caption(a, 9) == "#9\n-\nrose_gold" and caption(a, 0) == "#0\nring\nsilver"
    with pytest.raises(ValueError, match="at least 1"):
        contact_sheet(a, n=0)


def test_cli_info_prints_counts_and_writes_sheet(archive, tmp_path):
    r = CliRunner().invoke(app, ["dataset", "info", str(archive), "--sheet", str(tmp_path / "s" / "sheet.png"), "--n", "6"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert "10 images, 32 px, RGB, sha256:" in lines[0]
    assert "category (2 values)" in lines
    counts = {tuple(line.split()[:2]) for line in lines if line.startswith("  ")}
    assert {("ring", "4"), ("pendant", "4"), ("(missing)", "2"), ("silver", "3"), ("rose_gold", "7")} <= counts
    im = Image.open(tmp_path / "s" / "sheet.png")
    assert im.width >= 3 * 128  # six tiles in a 3x2 grid
    # default sheet path beside the archive
    r = CliRunner().invoke(app, ["dataset", "info", str(archive)])
    assert r.exit_code == 0 and (tmp_path / "a.jga-sheet.png").is_file()


def test_cli_info_rejects_what_is_not_an_archive(tmp_path):
    (tmp_path / "folder").mkdir()
    r = CliRunner().invoke(app, ["dataset", "info", str(tmp_path / "folder")])
    assert r.exit_code == 1 and "meta.json missing" in r.stderr
    r = CliRunner().invoke(app, ["dataset", "info", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "not a dataset archive folder" in r.stderr
