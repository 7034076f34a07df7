"""The README's main job, end to end on a tiny budget: render, train, sheet, bulk samples."""

import json

import numpy as np
from PIL import Image

from jewelgan.data import Archive
from jewelgan.demo import run_demo
from jewelgan.inference import read_manifest


def test_demo_renders_trains_and_writes_samples(tmp_path):
    result = run_demo(tmp_path / "demo", n=16, res=32, minutes=0.05, samples=4, workers=1)
    archive = Archive(result.archive)
    assert len(archive) == 16 and archive.resolution == 32
    assert (result.run_dir / "config.yaml").is_file() and any((result.run_dir / "checkpoints").iterdir())
    sheet = np.asarray(Image.open(result.sheet))
    # one row per category, two tiles per metal: 4 x 8 tiles of 96 px
    assert sheet.shape[0] > 4 * 96 and sheet.shape[1] > 8 * 96
    records = read_manifest(result.samples)
    assert len(records) == 4
    for rec in records:
        img = Image.open(result.samples / rec["file"])
        assert img.size == (32, 32)
        assert set(rec["attributes"]) == set(archive.schema.names)
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert summary["run"] == str(result.run_dir)

    # a second demo with the same studio settings reuses the rendered archive
    again = run_demo(tmp_path / "demo", n=16, res=32, minutes=0.02, samples=2, workers=1)
    assert Archive(again.archive).content_hash == archive.content_hash
    assert again.run_dir != result.run_dir


def test_demo_without_training_shows_the_shipped_model(tmp_path):
    from typer.testing import CliRunner

    from jewelgan.cli import app

    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "d" / "runs").exists(), "no training without --train"
    sheet = np.asarray(Image.open(tmp_path / "d" / "shipped_by_category_metal.png").convert("RGB"))
    # 4 category rows + 1 cut-out row of 8 tiles (two per metal) at 96 px, captions under each
    assert sheet.shape[0] > 5 * 256 and sheet.shape[1] > 8 * 256  # cells at 256 px
    # the cut-out row sits on a checkerboard: both check shades appear in its background
    last_row = sheet[-(96 + 24):-24]
    assert (np.abs(last_row.astype(int) - 204).max(axis=2) == 0).any()
    assert (np.abs(last_row.astype(int) - 245).max(axis=2) == 0).any()
    records = read_manifest(tmp_path / "d" / "samples" / "default64")
    assert len(records) == 64 and Image.open(tmp_path / "d" / "samples" / "default64" / records[0]["file"]).size == (512, 512)  # the largest size the stages reach
