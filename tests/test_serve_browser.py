"""The browser studio, driven in a real headless Chromium against a real uvicorn server on loopback.

Needs Debian's Chromium (`apt-get install chromium`; .ci/run installs it) and the playwright package
(a dev dependency), which drives that binary: no browser download."""

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

import jewelgan
from jewelgan.image_files import encode_image
from jewelgan.serve import ServeSettings, create_app

CHROMIUM = os.environ.get("JEWELGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("browser tests need Chromium: `apt-get install chromium` (or set JEWELGAN_CHROMIUM) to run them",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need `pip install playwright`")
DOCS_SHOT = Path(__file__).parent.parent / "docs" / "images" / "serve-studio.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    from jewelgan.studio import render_dataset
    from jewelgan.study import create_study

    root = tmp_path_factory.mktemp("study")
    archive = render_dataset(root / "a.jga", n=12, res=64, seed=3, workers=1, progress=False)
    return create_study(root / "study.db", None, archive, n=4, seed=2)


@pytest.fixture(scope="module")
def server(tmp_path_factory, study_file, live_server):
    port = free_port()
    asgi = create_app(ServeSettings(port=port, jobs_dir=tmp_path_factory.mktemp("jobs"), edit_steps=(30, 10),
                                    study=study_file)).state.asgi
    return live_server(asgi, port)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_studio_generates_shows_every_metal_and_downloads(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("#attr-metal option[value=rose_gold]", state="attached")
    page.select_option("#attr-category", "ring")
    page.select_option("#attr-metal", "rose_gold")
    page.fill("#seed", "40")
    page.fill("#count", "6")
    page.click("#generate")
    page.wait_for_function("document.querySelectorAll('#grid .tile img').length === 6")
    alts = page.eval_on_selector_all("#grid .tile img", "els => els.map(e => e.alt)")
    assert alts[0].startswith("seed 40:") and all("rose gold" in a and "ring" in a for a in alts)

    page.click("#grid .tile >> nth=1")
    assert page.inner_text("#detail-seed") == "41"
    page.click("button[data-attribute=metal]")
    page.wait_for_function("document.querySelectorAll('#strip figure').length === 4")
    captions = page.eval_on_selector_all("#strip figcaption", "els => els.map(e => e.textContent)")
    assert captions == [m.replace("_", " ") for m in jewelgan.load_model().attributes["metal"]]

    with page.expect_download() as info:
        page.click("#download-png")
    saved = tmp_path / "download.png"
    info.value.save_as(saved)
    model = jewelgan.load_model()
    # the download is the piece at the model's largest size (what `jewelgan generate --size` writes for seed 41)
    want = model.generate(1, attrs={"category": "ring", "metal": "rose_gold"}, seed=41, size=max(model.sizes))[0]
    assert saved.read_bytes() == encode_image(want, "png")

    with page.expect_download() as info:
        page.click("#download-cutout")
    cut = tmp_path / "cutout.png"
    info.value.save_as(cut)
    from PIL import Image

    assert Image.open(cut).mode == "RGBA"

    page.select_option("#interp-to", "44")
    page.click("#interpolate")
    page.wait_for_function("document.querySelectorAll('#strip figure').length === 8")
    shot = tmp_path / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("JEWELGAN_DOCS_SCREENSHOT"):
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOCS_SHOT)
    assert not errors
    page.close()


def test_studio_edits_an_uploaded_photo_in_every_metal(server, browser, tmp_path):
    from PIL import Image

    from jewelgan.studio.dataset import render_one, render_one_layers

    photo = tmp_path / "ring.jpg"
    image, labels = render_one(4242, 1, 256)
    Image.fromarray(image).save(photo, quality=92)
    page = browser.new_page()
    page.goto(server + "/")
    page.wait_for_selector("#edit-attribute option[value=metal]", state="attached")
    page.select_option("#attr-category", labels["category"])
    page.select_option("#edit-source", labels["metal"])
    page.set_input_files("#edit-photo", str(photo))
    page.click("#edit-submit")
    page.wait_for_function("document.querySelectorAll('#edit-strip figure').length === 5", timeout=90_000)
    captions = page.eval_on_selector_all("#edit-strip figcaption", "els => els.map(e => e.textContent)")
    as_shot = {m: m.replace("_", " ") + (" (as shot)" if m == labels["metal"] else "")
               for m in ("yellow_gold", "white_gold", "rose_gold", "silver")}
    assert captions == ["your photo", *as_shot.values()]
    assert "256x256 px" in page.inner_text("#edit-status") and "not stored" in page.inner_text("#edit")
    references = []
    for i in (0, 1):  # the shop's own rose gold, redder than the studio's
        rose = render_one_layers(4242, i, 256, metal="rose_gold")[0].image * 255 * np.array([1.12, 0.97, 0.8])
        references.append(tmp_path / f"rose{i}.png")
        Image.fromarray(np.clip(rose, 0, 255).astype(np.uint8)).save(references[-1])
    page.select_option("#edit-reference-metal", "rose_gold")
    page.set_input_files("#edit-references", [str(p) for p in references])
    page.click("#edit-submit")
    page.wait_for_function("document.querySelector('#edit-status').textContent.includes('your 2 photos')",
                           timeout=90_000)
    assert "rose gold in the colour of your 2 photos of it" in page.inner_text("#edit-status")
    page.set_input_files("#edit-references", [])
    pendant = tmp_path / "pendant.png"
    Image.fromarray(render_one(4242, 3, 256)[0]).save(pendant)  # a ruby pendant
    page.select_option("#edit-attribute", "gemstone")  # the stones change on the photo too, read by their tint
    page.set_input_files("#edit-photo", str(pendant))
    page.click("#edit-submit")
    page.wait_for_function("document.querySelector('#edit-status').textContent.includes('Its gemstone')",
                           timeout=90_000)
    captions = page.eval_on_selector_all("#edit-strip figcaption", "els => els.map(e => e.textContent)")
    assert captions == ["your photo", "diamond", "ruby (as shot)", "sapphire", "emerald"]
    page.close()


def test_studio_cuts_out_an_uploaded_photo_and_offers_both_layers(server, browser, tmp_path):
    from PIL import Image

    from jewelgan.studio.dataset import render_one

    photo = tmp_path / "pendant.jpg"
    image, _ = render_one(4242, 3, 256)
    Image.fromarray(image).resize((300, 200)).save(photo, quality=92)
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#cutout-photo", str(photo))
    page.click("#cutout-submit")
    page.wait_for_function("document.querySelectorAll('#cutout-strip figure').length === 2", timeout=60_000)
    assert "300 x 200" in page.inner_text("#cutout-status")
    assert page.get_attribute("#cutout-download", "download") == "pendant-cutout.png"
    assert page.get_attribute("#cutout-shadow-download", "download") == "pendant-shadow.png"
    href = page.get_attribute("#cutout-download", "href")
    assert href.startswith("data:image/png;base64,") and page.is_visible("#cutout-download")
    page.close()


def test_studio_bulk_job_shows_progress_to_done(server, browser):
    page = browser.new_page()
    page.goto(server + "/")
    page.wait_for_selector("#attr-metal option[value=silver]", state="attached")
    page.fill("#job-n", "40")
    page.click("#job-submit")
    page.wait_for_function("document.querySelector('#job-status').textContent.startsWith('done')", timeout=60_000)
    assert page.eval_on_selector("#job-progress", "p => p.value === p.max && p.max === 40")
    assert page.is_visible("#job-download")
    page.close()


def test_studio_fits_a_phone_and_works_from_the_keyboard(server, browser):
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(server + "/")
    page.wait_for_selector("#attr-metal option[value=silver]", state="attached")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.focus("#count")
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    page.keyboard.press("Enter")  # submits the form like the button
    page.wait_for_function("document.querySelectorAll('#grid .tile').length === 2")
    page.focus("#grid .tile >> nth=0")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail", state="hidden")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.close()


def test_two_participants_take_the_study_end_to_end(server, browser, study_file):
    from jewelgan.study import StudyStore, format_results, summarise

    store = StudyStore(study_file)
    ann, bob = store.invite(["ann", "bob"])
    page = browser.new_page(viewport={"width": 390, "height": 800})
    page.goto(f"{server}/study/{ann}")
    page.click("#start")
    for k in range(4):  # the labelled examples come first
        assert page.inner_text("#example-kind").startswith("This one is")
        page.click("#example-next")
    for k in range(8):
        page.wait_for_selector("#judge:not([hidden])")
        page.wait_for_function(f"document.querySelector('#image-index').textContent === '{k + 1}'")
        if k % 3 == 0:
            page.check(f"input[name=quality][value='{1 + k % 5}']")
        page.click("#answer-real" if k % 2 == 0 else "#answer-generated")
    page.wait_for_selector("#done:not([hidden])")
    assert page.inner_text("#done-count") == "8"

    page = browser.new_page()
    page.goto(f"{server}/study/{bob}")
    page.click("#start")
    for _ in range(4):
        page.click("#example-next")
    for k in range(3):
        page.wait_for_function(f"document.querySelector('#image-index').textContent === '{k + 1}'")
        page.keyboard.press("g")  # keys answer too
    page.wait_for_function("document.querySelector('#image-index').textContent === '4'")
    page.reload()  # a closed tab: the next visit resumes at image 4, without the examples again
    page.wait_for_selector("#judge:not([hidden])")
    assert page.inner_text("#image-index") == "4"
    for k in range(3, 8):
        page.wait_for_function(f"document.querySelector('#image-index').textContent === '{k + 1}'")
        page.keyboard.press("r")
    page.wait_for_selector("#done:not([hidden])")

    rows = StudyStore(study_file).rows()
    assert len(rows) == 16 and {r["name"] for r in rows} == {"ann", "bob"}
    assert sum(r["name"] == "bob" and not r["real"] for r in rows) == 3
    assert [r["quality"] for r in rows if r["name"] == "ann" and r["quality"]] == [1, 4, 2]
    res = summarise(rows)
    assert res["fool_rate"]["n"] == 8 and res["real_called_real"]["n"] == 8
    assert res["agreement"]["raters"] == 2 and res["agreement"]["images"] == 8
    assert "fool rate (generated judged real)" in format_results(res)
    page.close()


def test_studio_try_on_places_drags_and_downloads(server, browser, tmp_path):
    import numpy as np
    from PIL import Image

    photo = tmp_path / "me.png"
    Image.fromarray(np.full((240, 320, 3), (200, 170, 150), np.uint8)).save(photo)
    page = browser.new_page(viewport={"width": 900, "height": 1400}, accept_downloads=True)
    page.goto(server + "/")
    page.wait_for_selector("#attr-category option[value=pendant]", state="attached")
    page.select_option("#attr-category", "pendant")
    page.set_input_files("#tryon-photo", str(photo))
    page.click("#tryon-submit")
    page.wait_for_selector("#tryon-stage:not([hidden])", timeout=60_000)
    assert "drag it into place" in page.inner_text("#tryon-note") or "Placed on" in page.inner_text("#tryon-note")
    assert "not stored" in page.inner_text("#tryon")
    box = page.locator("#tryon-canvas").bounding_box()
    sx = box["width"] / 320
    # drag the piece from the middle to (240, 60) in photo pixels
    page.mouse.move(box["x"] + 160 * sx, box["y"] + 120 * sx)
    page.mouse.down()
    page.mouse.move(box["x"] + 200 * sx, box["y"] + 90 * sx, steps=4)
    page.mouse.move(box["x"] + 240 * sx, box["y"] + 60 * sx, steps=4)
    page.mouse.up()
    page.locator("#tryon-scale").fill("0.2")
    with page.expect_download() as info:
        page.click("#tryon-download")
    out = tmp_path / "tryon.png"
    info.value.save_as(out)
    composite = np.asarray(Image.open(out).convert("RGB")).astype(int)
    changed = np.abs(composite - (200, 170, 150)).sum(-1) > 60
    ys, xs = np.nonzero(changed)
    # the piece went where it was dragged: its centre of mass sits on the drop point, and the pixels that
    # changed most (the stone and the metal, not the faint chain) lie around it
    assert abs(xs.mean() - 240) < 8 and ys.min() < 60 < ys.max() and abs(ys.mean() - 60) < 0.2 * np.ptp(ys)
    assert page.evaluate("tryon.scale") == 0.2 and np.ptp(ys) >= 30  # a pendant 64 px wide hangs taller
    page.close()
