"""The metal translator: pairs (the same piece in another metal, same geometry), exact resume of its training,
the mask confining the change at any photo size, the confidence rule that asks for the source metal, the shipped
translator on rendered truth, and `jewelgan edit` / POST /v1/edit on good and bad photos."""

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from jewelgan.cli import app as cli
from jewelgan.edit.network import TranslatorNet, apply_colour_map, tint_transfer
from jewelgan.edit.pairs import PairSet, compose_pair, render_metal_pairs
from jewelgan.edit.trainer import TranslatorConfig, TranslatorConfigError, TranslatorTrainer
from jewelgan.edit.translate import SourceUnknown, Translator, TranslatorError, has_translator
from jewelgan.studio.dataset import render_one, render_one_layers

runner = CliRunner()
METALS = ["yellow_gold", "white_gold", "rose_gold", "silver"]


@pytest.fixture(scope="module")
def pairs_path(tmp_path_factory):
    return render_metal_pairs(tmp_path_factory.mktemp("pairs") / "p.npz", 4, 64, seed=5)


def test_pairs_are_one_piece_in_every_metal(pairs_path):
    a, _ = render_one_layers(5, 0, 64, metal="yellow_gold")
    b, _ = render_one_layers(5, 0, 64, metal="white_gold")
    assert np.array_equal(a.coverage, b.coverage) and np.array_equal(a.material, b.material)  # same geometry
    pairs = PairSet(pairs_path)
    assert pairs.metals == METALS and len(pairs) == 4
    fg, metal = pairs.planes["foreground"][0], pairs.planes["material"][0] == 1
    differs = np.abs(fg[0].astype(int) - fg[1]).sum(-1) > 0
    assert differs[metal].mean() > 0.5 and not differs[pairs.planes["alpha"][0] == 0].any()
    one, two = compose_pair(pairs.get(0, 0), pairs.get(0, 1), "wood", np.random.default_rng(0))
    outside = one["alpha"] == 0  # one backdrop, shadow and noise for both metals
    assert np.array_equal(one["image"][outside], two["image"][outside])
    assert not np.array_equal(one["image"], two["image"])


def test_a_varied_source_changes_only_its_metal(pairs_path):
    from jewelgan.edit.trainer import vary_metal

    pairs = PairSet(pairs_path)
    piece = next(pairs.get(i, 0) for i in range(len(pairs)) if (pairs.planes["material"][i] == 2).any())
    varied = vary_metal(piece, np.random.default_rng(1))["foreground"]
    moved = np.abs(varied - piece["foreground"]).sum(-1) > 1e-6
    assert moved[piece["material"] == 1].mean() > 0.5
    assert not moved[piece["material"] == 2].any() and not moved[piece["alpha"] == 0].any()


def tiny(pairs, out, **kw):
    base = dict(pairs=str(pairs), crop=64, batch=2, kimg=0.012, val=1, eval_every_kimg=1.0, out=str(out), seed=3)
    return TranslatorConfig(**(base | kw))


def test_translator_training_resumes_exactly(pairs_path, tmp_path):
    straight = TranslatorTrainer(tiny(pairs_path, tmp_path / "a", name="r")).run_loop(progress=False)
    first = TranslatorTrainer(tiny(pairs_path, tmp_path / "b", name="r"))
    first.run_loop(progress=False, stop_after_steps=3)
    resumed = TranslatorTrainer(resume=tmp_path / "b" / "r").run_loop(progress=False)
    a, b = Translator.from_run(straight).net.state_dict(), Translator.from_run(resumed).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    last = json.loads((resumed / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"val_psnr", "val_change_outside_metal", "val_metal_read"} <= set(last)


def test_bad_translator_settings_name_the_field(tmp_path):
    with pytest.raises(TranslatorConfigError, match="crop"):
        TranslatorConfig(pairs="x", crop=96, kimg=1).check()
    with pytest.raises(TranslatorConfigError, match="pairs"):
        TranslatorTrainer(TranslatorConfig(pairs=str(tmp_path / "missing.npz"), kimg=1, out=str(tmp_path)))


def rigged(material: int, classify=(0.0, 0.0, 0.0, 0.0), confident_at=0.9, stones=None) -> Translator:
    """A translator whose every pixel is `material` and whose colour map (used with correct_colour) adds 0.3 to
    every channel."""
    net = TranslatorNet(4)
    with torch.no_grad():
        net.head.bias[material] = 8.0
        net.head.bias[3 + 9:] = 0.3
        net.classify.weight.zero_()
        net.classify.bias.copy_(torch.tensor(classify))
    return Translator(net, METALS, confident_at, {"gemstones": stones} if stones else None)


def test_a_gemstone_changes_on_the_stones_only_and_is_read_by_its_tint():
    """A ruby piece's stones take a sapphire's studio tint (the stone pixels, by the material map, within the
    given alpha), the metal and backdrop keep their pixels, the photo's ruby is read from its tint; a photo the
    material map finds no stone in is refused by name, and so is a stone the translator does not know."""
    from jewelgan.edit.gemstones import studio_stone_tints
    from jewelgan.edit.network import tint_statistics

    stones = studio_stone_tints(pieces=3, res=64)
    assert set(stones) == {"diamond", "ruby", "sapphire", "emerald"}
    assert stones["ruby"]["tint"][0] > 1.2 and stones["sapphire"]["tint"][2] > 1.2  # red and blue
    own, labels = next(x for x in (render_one_layers(4242, i, 128, gemstone="ruby") for i in (2, 3, 6, 7, 8))
                       if (x[0].material == 2).sum() > 200)
    photo = np.round(own.image * 255).astype(np.uint8)
    stone = (own.material == 2).astype(np.float32)
    edit = rigged(2, stones=stones).change_stone(photo, "sapphire", alpha=stone)
    assert (edit.source, edit.source_read, edit.attribute) == ("ruby", "tint", "gemstone")
    assert np.array_equal(edit.image[stone == 0], photo[stone == 0])
    as_tensor = lambda a: torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1)[None]  # noqa: E731
    tint = tint_statistics(as_tensor(edit.image), torch.from_numpy(stone)[None, None])[0][0]
    nearest = min(stones, key=lambda g: float(((tint - torch.tensor(stones[g]["tint"])) ** 2).sum()))
    assert nearest == "sapphire" and tint[2] > tint[0]
    with pytest.raises(TranslatorError, match="no gemstone found"):
        rigged(1, stones=stones).change_stone(photo, "emerald", alpha=stone)
    with pytest.raises(TranslatorError, match="unknown target gemstone 'opal'"):
        rigged(2, stones=stones).change_stone(photo, "opal")
    with pytest.raises(TranslatorError, match="carries no gemstone colours"):
        rigged(2).change_stone(photo, "ruby")


@pytest.mark.parametrize("size", [(64, 64), (100, 300), (600, 420)])
def test_only_the_masked_metal_changes_at_any_size(size):
    h, w = size
    photo = np.random.default_rng(0).integers(0, 160, (h, w, 3)).astype(np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[h // 4:h // 2, w // 4:w // 2] = 1
    translator = rigged(material=1)
    translator.net.tint_mean[METALS.index("rose_gold")] = torch.tensor([1.7, 0.75, 0.6])  # a strong red tint
    edit = translator(photo, "rose_gold", "yellow_gold", alpha)
    assert edit.image.shape == photo.shape and edit.source_read == "given"
    assert np.array_equal(edit.image[alpha == 0], photo[alpha == 0])  # the matte's backdrop keeps its pixels
    inside = edit.image[alpha == 1].astype(float)
    assert np.abs(inside - photo[alpha == 1]).mean() > 25
    red, blue = inside.mean(0)[[0, 2]]
    assert red > 2 * blue  # the noise photo's metal took the target's tint (its own is grey: red ~ blue)
    translator.correct_colour = True  # the network's correction on top (off by default: translate.py)
    corrected = translator(photo, "rose_gold", "yellow_gold", alpha).image[alpha == 1].astype(float)
    assert 0.2 * 255 < (corrected - inside).mean() <= 0.3 * 255 + 1
    stone = rigged(material=2)(photo, "white_gold", "yellow_gold", alpha)  # stones keep theirs too
    assert np.abs(stone.image.astype(int) - photo).max() <= 1
    same = rigged(material=1)(photo, "yellow_gold", "yellow_gold", alpha)
    assert np.array_equal(same.image, photo)


def test_the_tint_transfer_reaches_the_target_metal_from_any_saturation():
    """A shop's gold photographs more or less saturated than the studio's: the edit measures the photo's own tint,
    so the metal's body takes the target's tint either way (a global per-metal transfer leaves the excess
    behind), a white highlight stays white, shading follows the photo, a grey source (silver) takes the whole
    target tint, and a photo with no metal pixels falls back to the studio's source tint."""
    from jewelgan.edit.network import luma, tint_statistics

    net = TranslatorNet(4)  # zero colour map: the transfer alone
    gold, rose, grey = torch.tensor([1.12, 0.99, 0.72]), torch.tensor([1.14, 0.95, 0.88]), torch.ones(3)
    with torch.no_grad():
        net.tint_mean.copy_(torch.stack([gold, torch.tensor([1.02, 1.0, 0.96]), rose, grey]))
        net.luma_mean.copy_(torch.tensor([0.7, 0.7, 0.7, 0.8]))
    shading = torch.linspace(0.2, 0.75, 64).view(1, 1, 1, 64).expand(1, 1, 64, 64)
    body = torch.ones(1, 1, 64, 64)
    body[..., :4, :] = 0  # the top rows are a white highlight
    metal, zero = torch.ones(1, 1, 64, 64), torch.zeros(1, 12, 64, 64)

    def photo_in(tint):
        tint = tint / (tint * torch.tensor([0.299, 0.587, 0.114])).sum()
        return (shading * (body * tint.view(1, 3, 1, 1) + (1 - body))).clamp(0, 1)

    for saturation in (0.6, 1.0, 1.8):  # paler than the studio's gold, as in the studio, far more saturated
        photo = photo_in(1 + saturation * (gold - 1))
        for target, want in ((3, grey), (2, rose)):
            edit = apply_colour_map(photo, zero, metal, tint_transfer(net, photo, metal, torch.tensor([0]),
                                                                     torch.tensor([target])))
            tint = tint_statistics(edit, body)[0][0]
            assert torch.allclose(tint, want / (want * torch.tensor([0.299, 0.587, 0.114])).sum(), atol=0.02), \
                (saturation, target, tint)  # a global transfer: blue 0.78 for silver at 1.8
            assert torch.allclose(tint_statistics(edit, 1 - body)[0][0], grey, atol=0.01)  # the highlight
            brightness = net.luma_mean[target] / net.luma_mean[0]
            assert torch.allclose(luma(edit), luma(photo) * brightness, atol=0.01)
    silver = photo_in(grey)
    edit = apply_colour_map(silver, zero, metal, tint_transfer(net, silver, metal, torch.tensor([3]),
                                                               torch.tensor([0])))
    assert torch.allclose(tint_statistics(edit, body)[0][0], gold, atol=0.02)
    nothing = tint_transfer(net, photo, torch.zeros(1, 1, 64, 64), torch.tensor([0]), torch.tensor([3]))
    assert torch.allclose(nothing["own"][0], gold)


def test_the_source_metal_is_asked_for_when_the_classifier_is_unsure():
    photo = render_one(4242, 0, 128)[0]
    with pytest.raises(SourceUnknown, match="say which metal") as unsure:
        rigged(1)(photo, "rose_gold")
    assert set(unsure.value.probabilities) == set(METALS)
    sure = rigged(1, classify=(0.0, 9.0, 0.0, 0.0))
    assert sure.source_of(photo, None)[0] == "white_gold"
    assert sure(photo, "rose_gold", alpha=np.ones(photo.shape[:2], np.float32)).source == "white_gold"
    with pytest.raises(TranslatorError, match="unknown target metal 'gold'"):
        sure(photo, "gold", "silver")


# ---------------------------------------------------------------------------- the shipped translator
@pytest.fixture(scope="module")
def shipped():
    import jewelgan
    from jewelgan.edit.translate import model_translator

    translator = model_translator(jewelgan.load_model().info["path"])
    assert translator is not None, "the shipped model carries a translator"
    return translator


def test_the_shipped_translator_on_rendered_truth(shipped):
    """Held-out studio pieces at 256 px: the edit is much nearer the target metal's render than the photo is, and
    outside the metal (1 px from it excluded: edges mix) almost nothing moves."""
    from scipy.ndimage import binary_dilation

    from jewelgan.edit import psnr

    gains, outside = [], []
    for i in range(3):
        own, labels = render_one_layers(4242, i, 256)
        photo = np.round(own.image * 255).astype(np.uint8)
        keep = ~binary_dilation(own.material == 1, iterations=1)
        for target in METALS:
            if target == labels["metal"]:
                continue
            truth = np.round(render_one_layers(4242, i, 256, metal=target)[0].image * 255).astype(np.uint8)
            edit = shipped(photo, target, labels["metal"]).image
            gains.append(psnr(edit, truth, own.coverage) - psnr(photo, truth, own.coverage))
            outside.append(np.abs(edit.astype(float) - photo)[keep].mean())
    assert np.mean(gains) > 4 and min(gains) > 0
    assert np.mean(outside) < 1.5


def _model_copy(tmp_path, confident_at):
    import jewelgan

    folder = tmp_path / "model"
    shutil.copytree(jewelgan.load_model().info["path"], folder)
    meta = json.loads((folder / "translator.json").read_text())
    (folder / "translator.json").write_text(json.dumps(meta | {"confident_at": confident_at}))
    assert has_translator(folder)
    return folder


def test_cli_edit_changes_the_metal_at_the_photo_size(tmp_path):
    path = tmp_path / "ring.jpg"
    image, labels = render_one(4242, 2, 256)
    Image.fromarray(image).resize((300, 200)).save(path, quality=92)
    res = runner.invoke(cli, ["edit", str(path), "--out", str(tmp_path / "e"), "--from", labels["metal"]])
    assert res.exit_code == 0, res.output
    others = [m for m in METALS if m != labels["metal"]]
    for m in others:
        assert Image.open(tmp_path / "e" / f"metal={m}.png").size == (300, 200)
    report = json.loads((tmp_path / "e" / "edit.json").read_text())
    assert report["method"] == "translate" and report["source_read"] == "given"
    assert [e["changes"]["metal"] for e in report["edits"]] == others
    one = runner.invoke(cli, ["edit", str(path), "--out", str(tmp_path / "one"), "--from", labels["metal"],
                              "--set", f"metal={others[0]}"])
    assert one.exit_code == 0 and {p.name for p in (tmp_path / "one").iterdir()} == {
        "sheet.png", "edit.json", f"metal={others[0]}.png"}


def test_cli_edit_changes_the_gemstone_at_the_photo_size(tmp_path):
    path = tmp_path / "pendant.png"
    image, labels = render_one(4242, 3, 256)  # a ruby pendant
    Image.fromarray(image).resize((320, 240)).save(path)
    res = runner.invoke(cli, ["edit", str(path), "--out", str(tmp_path / "e"), "--every", "gemstone"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "e" / "edit.json").read_text())
    assert (report["attribute"], report["source"], report["source_read"]) == ("gemstone", "ruby", "tint")
    others = [e["changes"]["gemstone"] for e in report["edits"]]
    assert others == ["diamond", "sapphire", "emerald"]
    for g in others:
        assert Image.open(tmp_path / "e" / f"gemstone={g}.png").size == (320, 240)


@pytest.mark.parametrize("case, expect", [
    ("unreadable", "not an image"),
    ("missing", "no such photo"),
    ("style", "the metal or the gemstone, not 'style'"),
    ("both", "one attribute per edit"),
    ("opal", "unknown target gemstone 'opal'"),
    ("metal", "unknown target metal 'gold'"),
    ("source", "unknown source metal 'brass'"),
    ("unsure", "--from"),
    ("unused reference", "no edit to rose_gold is asked for"),
])
def test_cli_translate_bad_input_is_one_line_exit_2(tmp_path, case, expect):
    photo = tmp_path / "p.png"
    Image.fromarray(render_one(4242, 1, 128)[0]).save(photo)
    args = ["edit", str(photo), "--out", str(tmp_path / "o")]
    if case == "unreadable":
        photo.write_bytes(b"not an image at all")
    elif case == "missing":
        args[1] = str(tmp_path / "nope.jpg")
    elif case == "style":
        args += ["--set", "style=halo"]
    elif case == "both":
        args += ["--set", "metal=silver", "--every", "gemstone"]
    elif case == "opal":
        args += ["--set", "gemstone=opal"]
    elif case == "metal":
        args += ["--set", "metal=gold", "--from", "silver"]
    elif case == "source":
        args += ["--from", "brass"]
    elif case == "unused reference":
        args += ["--set", "metal=silver", "--reference", f"rose_gold={photo}"]
    else:
        args += ["--model", str(_model_copy(tmp_path, 1.5))]  # no reading is ever confident enough
    res = runner.invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert expect in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written


def test_edit_endpoint_translates_at_the_upload_size(tmp_path):
    from fastapi.testclient import TestClient

    from jewelgan.serve.app import create_app
    from jewelgan.serve.settings import ServeSettings

    image, labels = render_one(4242, 1, 256)
    buf = io.BytesIO()
    Image.fromarray(image).resize((320, 240)).save(buf, "JPEG", quality=92)
    upload = {"photo": ("ring.jpg", buf.getvalue(), "image/jpeg")}
    client = TestClient(create_app(ServeSettings(jobs_dir=tmp_path / "jobs")).state.asgi)
    res = client.post("/v1/edit", files=upload, data={"source": labels["metal"]})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["method"] == "translate" and body["source"] == labels["metal"] and body["size"] == [320, 240]
    assert [im["value"] for im in body["images"]] == METALS and "reconstruction" not in body
    buf = io.BytesIO()
    Image.fromarray(render_one(4242, 3, 256)[0]).save(buf, "PNG")  # image 3: a ruby pendant
    stones = client.post("/v1/edit", files={"photo": ("p.png", buf.getvalue(), "image/png")},
                         data={"attribute": "gemstone"})
    assert stones.status_code == 200, stones.text
    assert (stones.json()["attribute"], stones.json()["source"]) == ("gemstone", "ruby")
    assert [im["value"] for im in stones.json()["images"]] == ["diamond", "ruby", "sapphire", "emerald"]
    assert client.post("/v1/edit", files=upload, data={"attribute": "style"}).json()["field"] == "attribute"
    assert client.post("/v1/edit", files=upload, data={"source": "brass"}).json()["choices"] == METALS
    assert client.post("/v1/edit", files=upload, data={"method": "paint"}).json()["field"] == "method"
    bad = client.post("/v1/edit", files={"photo": ("x.jpg", b"garbage", "image/jpeg")}, data={"source": "silver"})
    assert bad.status_code == 422 and bad.json()["field"] == "photo"
    unsure_app = create_app(ServeSettings(jobs_dir=tmp_path / "jobs2", models=[str(_model_copy(tmp_path, 1.5))]))
    unsure = TestClient(unsure_app.state.asgi).post("/v1/edit", files=upload)
    assert unsure.status_code == 422 and unsure.json()["field"] == "source"


def test_cli_trains_a_translator_into_a_model_folder(pairs_path, tmp_path):
    import jewelgan

    folder = tmp_path / "model"
    shutil.copytree(jewelgan.load_model().info["path"], folder)
    for f in ("translator.json", "translator.safetensors"):
        (folder / f).unlink(missing_ok=True)
    res = runner.invoke(cli, ["train-translator", "--pairs", str(pairs_path), "--kimg", "0.008", "--batch", "2",
                              "--crop", "64", "--out", str(tmp_path / "runs"), "--into", str(folder),
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    meta = json.loads((folder / "translator.json").read_text())
    assert meta["metals"] == METALS and 0.3 <= meta["confident_at"] <= 1.0 and meta["held_out"]["readings"] > 0
    assert "## Metal translator" in (folder / "README.md").read_text()
    assert "## Upsampling stages" in (folder / "README.md").read_text()  # the card's other sections stay
    photo = tmp_path / "p.png"
    Image.fromarray(render_one(4242, 1, 128)[0]).save(photo)
    res = runner.invoke(cli, ["edit", str(photo), "--model", str(folder), "--from", "silver", "--set",
                              "metal=rose_gold", "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "e" / "metal=rose_gold.png").size == (128, 128)
    bad = runner.invoke(cli, ["train-translator", "--pairs", str(tmp_path / "nope.npz"), "--kimg", "1",
                              "--out", str(tmp_path / "runs")])
    assert bad.exit_code == 2 and "pairs" in bad.output


def _shop_rose(i: int) -> np.ndarray:
    """A studio rose-gold piece as a shop might photograph its rose gold: redder and more saturated."""
    image = render_one_layers(4242, i, 256, metal="rose_gold")[0].image
    return np.round(np.clip(image * np.array([1.12, 0.97, 0.8]), 0, 1) * 255).astype(np.uint8)


def test_a_shops_own_photos_of_a_metal_set_the_edits_tint(shipped):
    """Reference photos of a metal give the target tint: measured redder on redder photos, an edit to that metal
    comes out redder than with the studio's tint and only its metal moves; a photo with no metal is refused by
    name."""
    from jewelgan.edit.reference import measure_reference
    from jewelgan.edit.translate import TranslatorError

    reference = measure_reference(shipped, "rose_gold", [_shop_rose(i) for i in (0, 1)], ["a.jpg", "b.jpg"])
    studio = shipped.net.tint_mean[METALS.index("rose_gold")]
    assert reference.tint[0] > studio[0] + 0.03 and reference.tint[2] < studio[2] - 0.05
    assert reference.photos == ["a.jpg", "b.jpg"] and reference.pixels > 1000
    own, labels = next(x for x in (render_one_layers(4242, i, 256) for i in range(2, 12))
                       if x[1]["metal"] == "yellow_gold")
    photo = np.round(own.image * 255).astype(np.uint8)
    plain = shipped(photo, "rose_gold", "yellow_gold")
    shop = shipped(photo, "rose_gold", "yellow_gold", tint=reference.tint)
    metal = plain.mask > 0.5
    redness = lambda im: float(im[metal][:, 0].astype(float).mean() - im[metal][:, 2].astype(float).mean())  # noqa: E731
    assert redness(shop.image) > redness(plain.image) + 5
    assert np.array_equal(shop.image[plain.mask == 0], photo[plain.mask == 0])
    with pytest.raises(TranslatorError, match="blank.png: the matte finds no piece"):
        measure_reference(shipped, "rose_gold", [_shop_rose(0), np.full((200, 200, 3), 250, np.uint8)],
                          ["a.jpg", "blank.png"])


def test_cli_and_api_take_reference_photos(tmp_path):
    from fastapi.testclient import TestClient

    from jewelgan.serve.app import create_app
    from jewelgan.serve.settings import ServeSettings

    refs = tmp_path / "rose"
    refs.mkdir()
    for i in (0, 1):
        Image.fromarray(_shop_rose(i)).save(refs / f"r{i}.png")
    photo = tmp_path / "ring.png"
    Image.fromarray(render_one(4242, 2, 256)[0]).resize((300, 200)).save(photo)
    args = ["edit", str(photo), "--out", str(tmp_path / "e"), "--from", "yellow_gold", "--set", "metal=rose_gold"]
    res = runner.invoke(cli, args + ["--reference", f"rose_gold={refs}"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "e" / "edit.json").read_text())
    assert len(report["references"]["rose_gold"]["photos"]) == 2
    (refs / "broken.jpg").write_bytes(b"no image here")
    bad = runner.invoke(cli, args[:3] + [str(tmp_path / "bad")] + args[4:] + ["--reference", f"rose_gold={refs}"])
    assert bad.exit_code == 2 and "broken.jpg" in bad.output and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()  # nothing written
    (refs / "broken.jpg").unlink()

    client = TestClient(create_app(ServeSettings(jobs_dir=tmp_path / "jobs")).state.asgi)
    upload = [("photo", ("ring.png", photo.read_bytes(), "image/png"))]
    given = [("references", (p.name, p.read_bytes(), "image/png")) for p in sorted(refs.iterdir())]
    ok = client.post("/v1/edit", files=upload + given, data={"source": "yellow_gold", "reference_metal": "rose_gold"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["reference"]["photos"] == ["r0.png", "r1.png"]
    assert client.post("/v1/edit", files=upload + given).json()["field"] == "reference_metal"
    junk = [("references", ("junk.jpg", b"garbage", "image/jpeg"))]
    refused = client.post("/v1/edit", files=upload + junk, data={"source": "yellow_gold",
                                                                   "reference_metal": "rose_gold"})
    assert refused.status_code == 422 and refused.json()["field"] == "references" and "junk.jpg" in refused.text
