"""End-to-end `prepare`: real broken files, labels, duplicates, round trip, determinism, CLI."""

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.data import Archive
from jewelgan.data.prepare import PrepareError, prepare


def photo(seed: int, size=(80, 80), bg=(235, 235, 230)) -> Image.Image:
    """A small distinct 'product shot': a coloured shape at a seed-dependent place and size."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", size, bg)
    w, h = size
    x0, y0 = rng.integers(5, w // 3), rng.integers(5, h // 3)
    x1, y1 = rng.integers(2 * w // 3, w - 5), rng.integers(2 * h // 3, h - 5)
    colour = tuple(int(c) for c in rng.integers(0, 200, 3))
    d = ImageDraw.Draw(im)
    (d.ellipse if seed % 2 else d.rectangle)((x0, y0, x1, y1), fill=colour)
    d.line((x0, y1, x1, y0), fill=(255 - colour[0], 40, 90), width=4)
    return im


def png_bomb(path: Path, side=60000):
    """A valid tiny PNG whose header claims side x side pixels (3.6 gigapixels for the default)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * (side + 1))) + chunk(b"IEND", b""))


def bad_files(src: Path) -> dict[str, str]:
    """Write one real file of each bad kind; returns {relative path: expected reason}."""
    src.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    photo(99, (200, 150)).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    (src / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 60, 3), dtype=np.uint8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xde\xad\xbe\xef" * 16
    (src / "corrupt.png").write_bytes(bytes(data))
    (src / "notes.jpg").write_text("price list, not a photo\n")
    (src / "empty.png").write_bytes(b"")
    png_bomb(src / "bomb.png")
    photo(98, (20, 20)).save(src / "tiny.png")
    return {"truncated.jpg": "truncated", "corrupt.png": "corrupt", "notes.jpg": "not_an_image",
            "empty.png": "empty_file", "bomb.png": "decompression_bomb", "tiny.png": "too_small"}


def run(src, out, **kw):
    kw.setdefault("workers", 1)
    kw.setdefault("progress", False)
    lines = []
    rep = prepare(src, out, kw.pop("res", 32), log=lines.append, **kw)
    return rep, lines


def test_every_bad_file_kind_rejected_with_reason_and_run_succeeds(tmp_path):
    src = tmp_path / "photos"
    expected = bad_files(src)
    for i in range(3):
        photo(i).save(src / f"good{i}.png")
    (src / "readme.txt").write_text("not an image extension")
    rep, lines = run(src, tmp_path / "out.jga", res=64)
    assert rep.written == 3 and rep.found == 9
    got = {r.source: r.reason for r in rep.rejected}
    assert got == expected
    for r in rep.rejected:  # one stderr line each, naming the file and the reason
        assert any(line.startswith(f"rejected {r.source}: ") and r.message in line for line in lines)
    assert rep.ignored == ["readme.txt"]
    saved = json.loads((tmp_path / "out.jga.report.json").read_text())
    assert {r["source"]: r["reason"] for r in saved["rejected"]} == expected
    assert saved["rejected_by_reason"]["too_small"] == 1 and saved["written"] == 3
    assert Archive(tmp_path / "out.jga").sources == ["good0.png", "good1.png", "good2.png"]


def test_nothing_survives_fails_clearly_and_writes_no_archive(tmp_path):
    src = tmp_path / "photos"
    bad_files(src)
    with pytest.raises(PrepareError, match=r"no image survived out of 6 found .*1 truncated.*see .*report\.json"):
        run(src, tmp_path / "out.jga", res=64)
    assert not (tmp_path / "out.jga").exists()
    assert json.loads((tmp_path / "out.jga.report.json").read_text())["written"] == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match="no image survived out of 0 found"):
        run(tmp_path / "empty", tmp_path / "out2.jga")


def test_round_trip_same_pixels_as_direct_decode_and_resize(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    sources = {}
    for i in range(4):
        im = Image.fromarray(np.random.default_rng(i).integers(0, 256, (96, 96, 3), dtype=np.uint8))
        im.save(src / f"p{i}.png")
        sources[f"p{i}.png"] = np.asarray(im.resize((64, 64), Image.Resampling.LANCZOS))
    rep, _ = run(src, tmp_path / "a.jga", res=64, workers=2)
    a = Archive(tmp_path / "a.jga")
    assert len(a) == 4 and a.resolution == 64 and a.verify()
    for i, rel in enumerate(a.sources):
        assert np.array_equal(a[i][0], sources[rel])
    assert a.meta["prepare"]["options"]["square"] == "pad" and a.meta["prepare"]["counts"]["written"] == 4


def test_archive_identical_for_one_and_two_workers(tmp_path):
    src = tmp_path / "photos"
    for i in range(12):
        (src / ("ring" if i % 3 else "pendant")).mkdir(parents=True, exist_ok=True)
        photo(i, (90, 70)).save(src / ("ring" if i % 3 else "pendant") / f"{i:02d}.jpg", quality=90)
    run(src, tmp_path / "one.jga", workers=1)
    run(src, tmp_path / "two.jga", workers=2)
    one, two = Archive(tmp_path / "one.jga"), Archive(tmp_path / "two.jga")
    assert one.content_hash == two.content_hash and one.sources == two.sources == sorted(one.sources)


def test_labels_from_folders(tmp_path):
    src = tmp_path / "photos"
    for i, rel in enumerate(["ring/a.png", "ring/deep/b.png", "pendant/c.png", "loose.png"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        photo(i).save(src / rel)
    rep, lines = run(src, tmp_path / "a.jga", folder_attribute="kind")
    a = Archive(tmp_path / "a.jga")
    labels = {s: a.label_dict(i) for i, s in enumerate(a.sources)}
    assert labels == {"loose.png": {"kind": None}, "pendant/c.png": {"kind": "pendant"},
                      "ring/a.png": {"kind": "ring"}, "ring/deep/b.png": {"kind": "ring"}}
    assert a.meta["prepare"]["labels"] == {"mode": "folders", "attribute": "kind"}
    assert rep.unlabelled == ["loose.png"] and any("1 image(s) have no labels" in line for line in lines)
    run(src, tmp_path / "b.jga", folder_attribute=None)
    assert Archive(tmp_path / "b.jga").schema.names == []


def _labelled_src(tmp_path) -> Path:
    src = tmp_path / "photos"
    for i, rel in enumerate(["r1.png", "r2.png", "p1.png", "sub/e1.png", "unlisted.png"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        photo(i).save(src / rel)
    return src


EXPECTED = {
    "r1.png": {"category": "ring", "metal": "yellow_gold", "gemstone": "diamond"},
    "r2.png": {"category": "ring", "metal": None, "gemstone": "ruby"},
    "p1.png": {"category": "pendant", "metal": "silver", "gemstone": None},
    "sub/e1.png": {"category": "earrings", "metal": "rose_gold", "gemstone": "none"},
    "unlisted.png": {"category": None, "metal": None, "gemstone": None},
}


def _check_labels(tmp_path, rep, where_bad, where_missing):
    a = Archive(tmp_path / "a.jga")
    assert a.schema.names == ["category", "metal", "gemstone"]
    assert {s: a.label_dict(i) for i, s in enumerate(a.sources)} == EXPECTED
    rejected = {r.source: r for r in rep.rejected}
    for where in where_bad:
        assert rejected[where].reason == "bad_label_row", rejected
    assert rejected[where_missing].reason == "missing_image" and "ghost.png" in rejected[where_missing].message
    assert rep.unlabelled == ["unlisted.png"]
    assert a.meta["prepare"]["labels"]["mode"] == "file"


def test_labels_from_csv_with_bad_rows_and_missing_images(tmp_path):
    src = _labelled_src(tmp_path)
    csv_path = src / "labels.csv"  # kept inside the photo folder: not reported as an ignored file
    csv_path.write_text(
        "file,category,metal,gemstone\n"          # line 1
        "r1.png,ring,yellow_gold,diamond\n"       # 2
        "r2.png,ring,,ruby\n"                     # 3  missing metal
        "p1.png,pendant,silver\n"                 # 4  bad: 3 fields
        "p1.png,pendant,silver,\n"                # 5
        "\n"                                      # 6  blank: skipped
        "sub\\e1.png,earrings,rose_gold,none\n"   # 7  Windows separator
        "ghost.png,ring,silver,ruby\n"            # 8  names a missing image
        "r1.png,ring,silver,ruby\n"               # 9  bad: duplicate of line 2
        "../outside.png,ring,silver,ruby\n"       # 10 bad: outside the folder
    )
    rep, lines = run(src, tmp_path / "a.jga", labels=csv_path)
    _check_labels(tmp_path, rep, ["labels.csv:line 4", "labels.csv:line 9", "labels.csv:line 10"],
                  "labels.csv:line 8")
    bad = {r.source: r.message for r in rep.rejected}
    assert "expected 4 fields" in bad["labels.csv:line 4"] and "got 3" in bad["labels.csv:line 4"]
    assert "already labelled at labels.csv:line 2" in bad["labels.csv:line 9"]
    assert any(line.startswith("rejected labels.csv:line 4: unreadable label row") for line in lines)
    assert rep.ignored == []


def test_labels_from_json_object_list_and_jsonl(tmp_path):
    src = _labelled_src(tmp_path)
    obj = tmp_path / "labels.json"
    obj.write_text('{\n'
                   ' "r1.png": {"category": "ring", "metal": "yellow_gold", "gemstone": "diamond"},\n'  # line 2
                   ' "r2.png": {"category": "ring", "metal": null, "gemstone": "ruby"},\n'
                   ' "p1.png": {"category": "pendant", "metal": "silver"},\n'
                   ' "bad.png": ["ring"],\n'                                                          # line 5
                   ' "sub/e1.png": {"category": "earrings", "metal": "rose_gold", "gemstone": "none"},\n'
                   ' "ghost.png": {"category": "ring"}\n'                                             # line 7
                   '}\n')
    rep, _ = run(src, tmp_path / "a.jga", labels=obj)
    _check_labels(tmp_path, rep, ["labels.json:line 5"], "labels.json:line 7")

    lst = tmp_path / "list.json"
    rows = [{"file": k, **{a: v for a, v in vals.items() if v is not None}} for k, vals in EXPECTED.items()
            if k != "unlisted.png"]
    rows[0] = {"file": "r1.png", "category": "ring", "metal": "yellow_gold", "gemstone": "diamond"}
    lst.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows + [{"file": "ghost.png"}, {"metal": "x"}]) + "\n]\n")
    rep, _ = run(src, tmp_path / "a.jga", labels=lst, overwrite=True)
    _check_labels(tmp_path, rep, ["list.json:line 7"], "list.json:line 6")

    jl = tmp_path / "labels.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"file": "ghost.png"}\n{not json\n')
    rep, _ = run(src, tmp_path / "a.jga", labels=jl, overwrite=True)
    _check_labels(tmp_path, rep, ["labels.jsonl:line 6"], "labels.jsonl:line 5")


def test_unusable_label_file_is_a_clear_error(tmp_path):
    src = _labelled_src(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"r1.png": {"category": "ring"},\n "r2.png": }\n')
    with pytest.raises(PrepareError, match=r"broken.json: invalid JSON at line 2"):
        run(src, tmp_path / "a.jga", labels=broken)
    only = tmp_path / "only.csv"
    only.write_text("file\nr1.png\n")
    with pytest.raises(PrepareError, match="no attribute columns"):
        run(src, tmp_path / "a.jga", labels=only)
    with pytest.raises(PrepareError, match="label file not found"):
        run(src, tmp_path / "a.jga", labels=tmp_path / "nope.csv")
    assert not (tmp_path / "a.jga").exists()


def test_exact_duplicates_dropped_near_duplicates_reported_or_dropped(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    base = photo(7, (120, 120))
    base.save(src / "a.png")
    base.save(src / "b_copy.bmp")               # same pixels, other format: exact duplicate
    base.save(src / "c_resaved.jpg", quality=85)  # re-compressed: near duplicate
    photo(8, (120, 120)).save(src / "d_other.png")
    rep, lines = run(src, tmp_path / "a.jga", res=64)
    assert [(r.source, r.reason) for r in rep.rejected] == [("b_copy.bmp", "exact_duplicate")]
    assert "exact duplicate of a.png" in rep.rejected[0].message
    assert [(d["source"], d["similar_to"]) for d in rep.near_duplicates] == [("c_resaved.jpg", "a.png")]
    assert Archive(tmp_path / "a.jga").sources == ["a.png", "c_resaved.jpg", "d_other.png"]
    assert any("1 near duplicate(s) kept" in line for line in lines)
    rep, _ = run(src, tmp_path / "b.jga", res=64, drop_near_duplicates=True)
    assert {(r.source, r.reason) for r in rep.rejected} == {("b_copy.bmp", "exact_duplicate"),
                                                            ("c_resaved.jpg", "near_duplicate")}
    assert Archive(tmp_path / "b.jga").sources == ["a.png", "d_other.png"]


def test_aborted_run_keeps_previous_archive_and_leaves_no_partial(tmp_path):
    # any exception inside the run (here: the caller's log callback failing on the first rejection)
    # must discard the half-written archive and leave the previous one untouched
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(4):
        photo(i).save(src / f"g{i}.png")
    run(src, tmp_path / "a.jga")
    before = Archive(tmp_path / "a.jga").content_hash
    (src / "h_broken.png").write_bytes(b"")
    photo(9).save(src / "z_new.png")

    def failing_log(line):
        raise RuntimeError("disk full while logging")

    with pytest.raises(RuntimeError, match="disk full"):
        prepare(src, tmp_path / "a.jga", 32, overwrite=True, workers=2, progress=False, log=failing_log)
    a = Archive(tmp_path / "a.jga")
    assert a.content_hash == before and len(a) == 4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_prepare_exit_codes_and_messages(tmp_path):
    runner = CliRunner()
    src = tmp_path / "photos"
    bad_files(src)
    photo(1).save(src / "good.png")
    out = tmp_path / "shop.jga"
    r = runner.invoke(app, ["prepare", str(src), str(out), "--res", "64", "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "wrote 1 images (64 px)" in r.stdout and "rejected 6" in r.stdout
    assert "rejected truncated.jpg: truncated image" in r.stderr
    assert "rejected bomb.png: decompression bomb" in r.stderr
    r = runner.invoke(app, ["prepare", str(src), str(out), "--res", "64"])
    assert r.exit_code == 1 and "already exists (use --overwrite" in r.stderr
    r = runner.invoke(app, ["prepare", str(src), str(out), "--res", "100", "--overwrite"])
    assert r.exit_code == 1 and "--res must be one of" in r.stderr
    r = runner.invoke(app, ["prepare", str(src), str(out), "--background", "blue", "--overwrite"])
    assert r.exit_code == 1 and "background must be 'auto', 'white' or '#RRGGBB'" in r.stderr
    r = runner.invoke(app, ["prepare", str(tmp_path / "nowhere"), str(out)])
    assert r.exit_code == 1 and "source folder not found" in r.stderr
    (src / "good.png").unlink()
    r = runner.invoke(app, ["prepare", str(src), str(tmp_path / "x.jga"), "--res", "64", "--quiet"])
    assert r.exit_code == 1 and r.stderr.strip().splitlines()[-1].startswith("error: no image survived")
    assert Archive(out).sources == ["good.png"]  # the earlier archive is untouched
