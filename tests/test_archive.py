import numpy as np
import pytest
import torch

from jewelgan.data import Archive, ArchiveError, ArchiveWriter, LabelSchema
from jewelgan.train.data import BatchStream


def _write(path, n=6, res=32, overwrite=False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, res, res, 3), dtype=np.uint8)
    with ArchiveWriter(path, res, overwrite=overwrite) as w:
        for i, im in enumerate(images):
            metal = ["gold", "silver", None][i % 3]
            w.add(im, {"category": "ring" if i < n - 1 else "pendant", "metal": metal}, f"src/{i}.jpg")
    return images


def test_round_trip_same_pixels_labels_and_sources(tmp_path):
    images = _write(tmp_path / "a.jga")
    a = Archive(tmp_path / "a.jga")
    assert len(a) == 6 and a.resolution == 32
    assert np.array_equal(a.images[:], images)
    assert a.schema.attributes == {"category": ["ring", "pendant"], "metal": ["gold", "silver"]}
    assert a.label_dict(2) == {"category": "ring", "metal": None}
    assert a.label_dict(5) == {"category": "pendant", "metal": None}
    assert a.label_dict(4) == {"category": "ring", "metal": "silver"}
    assert a.sources[4] == "src/4.jpg"
    assert a.verify()
    assert a.value_counts()["metal"] == {"gold": 2, "silver": 2, "(missing)": 2}


def test_tampered_pixels_fail_verification(tmp_path):
    _write(tmp_path / "a.jga")
    with open(tmp_path / "a.jga" / "images.u8", "r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01\x02")
    assert not Archive(tmp_path / "a.jga").verify()


def test_interrupted_write_leaves_no_archive_and_keeps_previous(tmp_path):
    target = tmp_path / "a.jga"
    old = _write(target)
    with pytest.raises(RuntimeError):
        with ArchiveWriter(target, 32, overwrite=True) as w:
            w.add(np.zeros((32, 32, 3), np.uint8), {}, "x")
            raise RuntimeError("killed")
    assert np.array_equal(Archive(target).images[:], old)
    assert [p.name for p in tmp_path.iterdir()] == ["a.jga"]


def test_incomplete_folder_is_rejected_with_clear_error(tmp_path):
    d = tmp_path / "half.jga"
    d.mkdir()
    (d / "images.u8").write_bytes(b"\0" * 100)
    with pytest.raises(ArchiveError, match="meta.json missing"):
        Archive(d)
    _write(tmp_path / "b.jga")
    with open(tmp_path / "b.jga" / "images.u8", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArchiveError, match="images.u8"):
        Archive(tmp_path / "b.jga")


def test_existing_target_needs_overwrite(tmp_path):
    _write(tmp_path / "a.jga")
    with pytest.raises(FileExistsError):
        ArchiveWriter(tmp_path / "a.jga", 32)


def test_batch_stream_yields_normalised_batches_mirrors_and_covers_each_image_once_per_epoch(tmp_path):
    images = _write(tmp_path / "a.jga")  # 6 images
    a = Archive(tmp_path / "a.jga")
    plain = BatchStream(a, batch=3, res=32, seed=1, hflip=False)
    x, y = plain.get(0)
    idx, _ = plain.indices(0)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    expected = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.allclose(x, expected) and y.tolist() == a.labels[idx].tolist()
    epoch = np.concatenate([plain.indices(k)[0] for k in range(2)])
    assert sorted(epoch.tolist()) == list(range(6))                    # one epoch: every image once
    mirrored = BatchStream(a, batch=3, res=32, seed=1, hflip=True)
    outs = [mirrored.get(k)[0] for k in range(2)]
    flips = [torch.equal(o, e.flip(-1)) for out, ref in zip(outs, (plain.get(0)[0], plain.get(1)[0]))
             for o, e in zip(out, ref)]
    assert 0 < sum(flips) < 6                                         # some mirrored, some not
    assert all(torch.equal(o, p) for o, p in zip(outs, (mirrored.get(0)[0], mirrored.get(1)[0])))  # seeded
    half = BatchStream(a, batch=3, res=16, seed=1, hflip=False)       # area-averaged to a lower resolution
    assert torch.allclose(half.get(0)[0], torch.nn.functional.avg_pool2d(x, 2))


def test_balanced_stream_draws_a_small_category_in_proportion_to_the_root_of_its_count(tmp_path):
    """An uneven archive (97 rings, 3 pendants): balance 0.5 draws pendants sqrt(3) : sqrt(97) of the time,
    each batch still a pure function of (seed, step), and two ranks' slices make the one-process batch."""
    rng = np.random.default_rng(0)
    with ArchiveWriter(tmp_path / "u.jga", 32) as w:
        for i in range(100):
            w.add(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), {"category": "pendant" if i < 3 else "ring"})
    a = Archive(tmp_path / "u.jga")
    stream = BatchStream(a, batch=64, res=32, seed=3, balance=0.5)
    drawn = np.concatenate([stream.indices(k)[0] for k in range(200)])
    share = np.mean(drawn < 3)
    expected = np.sqrt(3) / (np.sqrt(3) + np.sqrt(97))
    assert abs(share - expected) < 0.015 and share > 4 * 0.03        # far above the archive's 3 %
    assert set(drawn[drawn < 3].tolist()) == {0, 1, 2}                 # every pendant, not one of them
    assert np.array_equal(stream.indices(7)[0], BatchStream(a, batch=64, res=32, seed=3, balance=0.5).indices(7)[0])
    assert not np.array_equal(stream.indices(7)[0], stream.indices(8)[0])
    assert torch.equal(stream.get(5)[0], stream.get(5)[0])             # mirrors are seeded too
    ranks = [BatchStream(a, batch=64, res=32, seed=3, balance=0.5, rank=r, world=2).indices(5)[0] for r in (0, 1)]
    assert np.array_equal(np.concatenate(ranks), stream.indices(5)[0])
    even = BatchStream(a, batch=64, res=32, seed=3, balance=1.0)
    assert abs(np.mean(np.concatenate([even.indices(k)[0] for k in range(100)]) < 3) - 0.5) < 0.03
    assert "pendant 15% (of the images: 3%)" in stream.drawn_shares()


def test_schema_parse_attrs_errors_name_the_value():
    s = LabelSchema({"metal": ["gold"]})
    assert s.parse_attrs(["metal=gold"]) == {"metal": "gold"}
    with pytest.raises(ValueError, match="unknown value 'tin'"):
        s.parse_attrs(["metal=tin"])
    with pytest.raises(ValueError, match="unknown attribute 'size'"):
        s.parse_attrs(["size=7"])


def test_grid_places_tiles_and_captions():
    from jewelgan.grid import make_grid

    imgs = np.zeros((5, 8, 8, 3), np.uint8)
    imgs[1] = 255
    g = make_grid(imgs, ncol=3, pad=2)
    assert g.size == (3 * 10 + 2, 2 * 10 + 2)
    assert g.getpixel((2 + 10 + 4, 2 + 4)) == (255, 255, 255) and g.getpixel((2 + 4, 2 + 4)) == (0, 0, 0)
    t = make_grid(torch.zeros(2, 3, 8, 8), captions=["ring\ngold", "pendant"], tile=16)
    assert t.size[0] == 2 * 18 + 2 and t.size[1] > 18 + 2


def test_stale_partial_of_a_dead_writer_is_cleaned_and_extra_meta_cannot_shadow_format(tmp_path):
    stale = tmp_path / ".a.jga.partial-999999999-1"
    stale.mkdir()
    with ArchiveWriter(tmp_path / "a.jga", 32, extra_meta={"format": "evil", "studio": {"seed": 1}}) as w:
        w.add(np.zeros((32, 32, 3), np.uint8), {}, "x")
    assert not stale.exists()
    a = Archive(tmp_path / "a.jga")
    assert a.meta["format"] == "jewelgan-archive" and a.meta["studio"] == {"seed": 1}
