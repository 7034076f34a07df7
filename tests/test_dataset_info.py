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


def test_an_alpha_archive_gets_a_cutout_sheet_on_dark_and_checks(tmp_path, archive):
    from jewelgan.data.contact_sheet import DARK, cutout_sheet

    with ArchiveWriter(tmp_path / "rgba.jga", 32, channels=4) as w:
        for i in range(3):
            im = np.full((32, 32, 4), 235, np.uint8)
            im[..., 3] = 0
            im[8:24, 8:24] = (200, 150, 40, 255)  # a gold square on the white sweep
            w.add(im, {"category": "ring"}, f"r{i}")
    out = CliRunner().invoke(app, ["dataset", "info", str(tmp_path / "rgba.jga"), "--n", "3"])
    assert out.exit_code == 0, out.output
    path = tmp_path / "rgba.jga-sheet-cutouts.png"
    assert f"cut-outs on dark and checks: {path}" in out.output
    sheet = np.asarray(Image.open(path).convert("RGB"))
    assert (sheet == DARK).all(-1).any()  # the uncovered backdrop shows as the dark page, not as the white sweep
    assert ((sheet == (204, 204, 204)).all(-1).any() and (sheet == (245, 245, 245)).all(-1).any())
    assert ((sheet == (200, 150, 40)).all(-1)).sum() > 2 * 16 * 16  # the piece itself, on both backdrops
    with pytest.raises(ValueError, match="no alpha"):
        cutout_sheet(Archive(archive))
    rgb = CliRunner().invoke(app, ["dataset", "info", str(archive), "--n", "3"])
    assert "cut-outs" not in rgb.output
