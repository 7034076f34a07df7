"""The studio page's layout (issue 43, item 5) in headless Chromium against a real uvicorn on loopback, at a desktop
width and at a 390 px phone: every panel keeps its column and its width before and after results, a selected
piece and a try-on appear; panels stack in page order without overlapping; each label stays on the row of its
control. Skipped without Chromium, like test_serve_browser.py. With JEWELGAN_DOCS_SCREENSHOT=1 the screenshots
replace docs/images/studio_desktop.png and studio_phone.png."""

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jewelgan.serve import ServeSettings, create_app

CHROMIUM = os.environ.get("JEWELGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("browser tests need Chromium: `apt-get install chromium` (or set JEWELGAN_CHROMIUM) to run them",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need `pip install playwright`")
from test_serve_browser import browser  # noqa: E402,F401  (one Chromium per module, launched the same way)
DOCS = Path(__file__).parent.parent / "docs" / "images"
PANELS = ["results", "detail", "edit", "tryon", "bulk"]
# every label whose control sits beside it (the left-hand controls put their labels above, by design)
PAIRS = ["interp-to", "edit-photo", "edit-attribute", "tryon-photo", "tryon-scale", "tryon-angle", "job-n",
         "job-format"]

BOXES = """ids => Object.fromEntries(ids.map(id => {
  const r = document.getElementById(id).getBoundingClientRect();
  return [id, {x: r.x, y: r.y + window.scrollY, w: r.width, h: r.height}];
}))"""
LABELLED = """ids => ids.map(id => {
  const c = document.getElementById(id).getBoundingClientRect();
  const l = document.querySelector(`label[for="${id}"]`).getBoundingClientRect();
  return {id, label: [l.left, l.right, l.top, l.bottom], control: [c.left, c.right, c.top, c.bottom]};
})"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, live_server):
    port = free_port()
    return live_server(create_app(ServeSettings(port=port, jobs_dir=tmp_path_factory.mktemp("jobs"))).state.asgi, port)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 480 x 360 'photo': a warm gradient with a darker band, for the try-on panel."""
    y, x = np.mgrid[0:360, 0:480]
    rgb = np.stack([190 + 40 * x / 480, 160 + 30 * y / 360, 140 + 0 * x], -1)
    rgb[150:210] *= 0.8
    path = tmp_path_factory.mktemp("photo") / "me.png"
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return path


def columns(page) -> dict:
    return page.evaluate(BOXES, ["controls", *PANELS])


def assert_stacked(boxes: dict, shown: list[str]) -> None:
    """The shown panels share one left edge and one width, in page order, each below the one before."""
    first = boxes[shown[0]]
    for above, below in zip(shown, shown[1:]):
        assert boxes[below]["x"] == first["x"] and boxes[below]["w"] == first["w"], (below, boxes)
        assert boxes[below]["y"] >= boxes[above]["y"] + boxes[above]["h"], (above, below, boxes)


def assert_labels_beside_controls(page) -> None:
    for pair in page.evaluate(LABELLED, PAIRS):
        (l_left, l_right, l_top, l_bottom), (c_left, c_right, c_top, c_bottom) = pair["label"], pair["control"]
        # on one row: the label's middle lies within the control's height, and the control follows it closely
        assert c_top <= (l_top + l_bottom) / 2 <= c_bottom, pair
        assert 0 <= c_left - l_right <= 16, pair


@pytest.mark.parametrize("width, height, name", [(1280, 900, "desktop"), (390, 844, "phone")])
def test_panels_keep_their_column_and_labels_stay_beside_their_controls(server, browser, photo, tmp_path, width,
                                                                         height, name):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("#attr-category option[value=pendant]", state="attached")
    before = columns(page)
    assert_stacked(before, ["results", "edit", "tryon", "bulk"])

    page.fill("#count", "4")
    page.click("#generate")
    page.wait_for_function("document.querySelectorAll('#grid .tile img').length === 4")
    page.click("#grid .tile >> nth=1")
    page.wait_for_selector("#detail:not([hidden])")
    page.set_input_files("#tryon-photo", str(photo))
    page.click("#tryon-submit")
    page.wait_for_selector("#tryon-stage:not([hidden])", timeout=60_000)
    after = columns(page)
    assert_stacked(after, PANELS)
    for panel in ["results", "edit", "tryon", "bulk"]:  # nothing jumped column or changed width
        assert (after[panel]["x"], after[panel]["w"]) == (before[panel]["x"], before[panel]["w"]), panel
    controls, panels = after["controls"], after["results"]
    if name == "desktop":  # the controls in a narrow column on the left, every panel in the wide one beside it
        assert controls["x"] + controls["w"] < panels["x"] and panels["w"] > 2.5 * controls["w"]
        assert controls["y"] == panels["y"]
    else:  # one column: the controls first, every panel below them at the same width, nothing wider than a phone
        assert controls["x"] == panels["x"] and controls["w"] == panels["w"]
        assert panels["y"] >= controls["y"] + controls["h"]
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_labels_beside_controls(page)

    shot = tmp_path / f"studio_{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] == width
    if os.environ.get("JEWELGAN_DOCS_SCREENSHOT"):
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOCS / shot.name)
    assert not errors
    page.close()
