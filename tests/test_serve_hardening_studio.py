"""The studio page against a server with API keys (issue 43, item 5), in headless Chromium against a real
uvicorn on loopback: the first click after typing a key works, each panel reports its own progress and
errors, and the try-on note is in plain words. Skipped without Chromium, like test_serve_browser.py."""

import io
import os
import shutil
import socket

import numpy as np
import pytest
from PIL import Image

from jewelgan.serve import ServeSettings, create_app
from jewelgan.serve.access import add_key
from jewelgan.serve.routes_tryon import plain_note

CHROMIUM = os.environ.get("JEWELGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.parametrize("lost, says", [
    ("automatic placement needs the optional extra: pip install 'jewelgan[tryon]' (mediapipe 0.10.14, whose wheel "
     "ships the landmark models); or give --anchor X,Y", "This server cannot look for faces or hands in photos"),
    ("no face found in the photo, so there are no ear lobes to place earrings on; give --anchor X,Y",
     "No face found in the photo"),
    ("automatic placement knows earrings, pendant, ring; for a brooch, give --anchor X,Y", "Only earrings"),
])
def test_the_try_on_note_is_plain_language(lost, says):
    note = plain_note(lost)
    assert note.startswith(says) and "drag it into place" in note
    assert "pip" not in note and "--anchor" not in note and "mediapipe" not in note


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory, live_server):
    if not CHROMIUM:
        pytest.skip("browser tests need Chromium: `apt-get install chromium` (or set JEWELGAN_CHROMIUM)")
    root = tmp_path_factory.mktemp("studio")
    key = add_key(root / "keys.txt", "shop-a")
    port = free_port()
    asgi = create_app(ServeSettings(port=port, keys_file=root / "keys.txt", jobs_dir=root / "jobs")).state.asgi
    return live_server(asgi, port), key


@pytest.fixture(scope="module")
def browser(keyed_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need `pip install playwright`")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_first_click_after_typing_a_key_generates(keyed_server, browser):
    url, key = keyed_server
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.wait_for_selector("#key-row:not([hidden])")
    page.fill("#count", "3")
    page.fill("#api-key", key)  # typed, and the very next thing is the click
    page.click("#generate")  # the click takes the focus from the key: the models load, then it generates
    page.wait_for_function("document.querySelectorAll('#grid .tile img').length === 3", timeout=30_000)
    assert not errors
    page.close()


def test_generate_without_a_key_says_so(keyed_server, browser):
    url, _ = keyed_server
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.wait_for_selector("#key-row:not([hidden])")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').textContent.includes('API key')")
    assert "error" in page.get_attribute("#status", "class") and not errors
    page.close()


def test_each_panel_reports_its_own_errors_and_the_try_on_note_is_plain(keyed_server, browser, tmp_path):
    url, key = keyed_server
    page = browser.new_page(viewport={"width": 900, "height": 1400})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.fill("#api-key", key)
    page.press("#api-key", "Tab")
    page.wait_for_selector("#attr-category option[value=pendant]", state="attached")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    page.set_input_files("#edit-photo", str(junk))
    page.click("#edit-submit")
    page.wait_for_function("document.querySelector('#edit-status').classList.contains('error')", timeout=30_000)
    assert "photo" in page.inner_text("#edit-status") and page.inner_text("#status") == "Ready: 1 model(s)."

    big = tmp_path / "big.png"
    buf = io.BytesIO()
    Image.new("1", (12_000, 12_000), 1).save(buf, "PNG")
    big.write_bytes(buf.getvalue())
    page.set_input_files("#tryon-photo", str(big))
    page.click("#tryon-submit")
    page.wait_for_function("document.querySelector('#tryon-status').classList.contains('error')", timeout=30_000)
    assert "pixels" in page.inner_text("#tryon-status") and not page.inner_text("#edit-status").count("pixels")

    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), (200, 170, 150), np.uint8)).save(wall)
    page.select_option("#attr-category", "pendant")
    page.set_input_files("#tryon-photo", str(wall))
    page.click("#tryon-submit")
    page.wait_for_selector("#tryon-stage:not([hidden])", timeout=60_000)
    note = page.inner_text("#tryon-note")
    assert "drag it" in note.lower() and "pip" not in note and "--anchor" not in note and "landmarks" not in note
    assert page.inner_text("#tryon-status") == "" and not errors
    page.close()
