"""The app in a real browser: Debian's Chromium driven by Playwright.

Starts ``streamlit run app.py`` on a free port (on the shipped cache when the
repository has one, else on the tiny test cache), opens every page, uploads a real
WAV and a non-audio file on Verify, selects points on the map with the lasso, saves a
screenshot of each page under ``screenshots/`` (git-ignored), and fails on any
exception shown in a page. It prints the three timings the app promises: first load
of each page, switching pages / changing the colouring, and upload-to-verdict.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGES = ["", "Verify", "Filter_bands", "Embedding_map", "Benchmark", "Probing", "Mel_vs_CQT", "Training_runs"]
SHOTS = REPO / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    shipped = REPO / "cache" / "manifest.json"
    env = dict(os.environ)
    if shipped.exists():
        env["MIE_CACHE"] = str(REPO / "cache")
        env["MIE_RUNS"] = str(tmp_path_factory.mktemp("noruns"))
    else:
        tiny = request.getfixturevalue("tiny_cache")
        env["MIE_CACHE"], env["MIE_RUNS"] = str(tiny["cache"]), str(tiny["runs"])
    port = free_port()
    log = open(tmp_path_factory.mktemp("st") / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    import urllib.request

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start")
    yield f"http://127.0.0.1:{port}", env["MIE_CACHE"]
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def settle(page, timeout: float = 60.0) -> None:
    """Wait until the script run is over (the status widget disappears) and a title is shown."""
    page.wait_for_selector("[data-testid=stMain] h1", timeout=timeout * 1000)
    page.wait_for_timeout(150)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                           timeout=timeout * 1000)


def assert_no_exception(page, where: str) -> None:
    assert page.locator("[data-testid=stException]").count() == 0, f"{where}: exception shown"
    text = page.locator("[data-testid=stMain]").inner_text()
    assert "Something went wrong" not in text and "Traceback" not in text, f"{where}: {text[:500]}"


def test_every_page_in_a_real_browser(server, browser, tmp_path):
    url, cache = server
    SHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    timings = {}
    for name in PAGES:
        t = time.perf_counter()
        page.goto(f"{url}/{name}")
        settle(page)
        timings[name or "home"] = time.perf_counter() - t
        assert_no_exception(page, name or "home")
        page.screenshot(path=str(SHOTS / f"{name or 'home'}.png"), full_page=True)
    print("\nfirst load (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    assert max(timings.values()) < 5.0, timings

    # switching pages through the sidebar, once everything is warm
    switch = {}
    for name, label in (("Embedding_map", "Embedding map"), ("Benchmark", "Benchmark"), ("", "app")):
        t = time.perf_counter()
        page.get_by_role("link", name=label).first.click()
        page.wait_for_url(f"**/{name}", timeout=10000)
        settle(page)
        switch[name or "home"] = time.perf_counter() - t
        assert_no_exception(page, f"switch to {name}")
    print("switching pages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in switch.items()))


def test_map_selection_and_colouring(server, browser):
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(f"{url}/Embedding_map")
    settle(page)
    # change the colouring
    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text="Colour by").click()
    option = page.get_by_role("option", name="playing style")
    option.wait_for()
    t = time.perf_counter()  # from the choice to the redrawn map
    option.click()
    page.wait_for_selector("text=Colour by", timeout=10000)
    page.wait_for_function("() => [...document.querySelectorAll('.legendtext')].some(e => e.textContent === 'pizzicato'"
                           " || e.textContent === 'arco' || e.textContent === 'normal')", timeout=30000)
    settle(page)
    print(f"\nrecolour: {time.perf_counter() - t:.2f} s")
    assert_no_exception(page, "recolour")
    # a lasso around the middle of the plot area selects points
    plot = page.locator(".js-plotly-plot .nsewdrag").first
    box = plot.bounding_box()
    cx, cy, w, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]
    page.mouse.move(cx - 0.45 * w, cy - 0.45 * h)
    page.mouse.down()
    for fx, fy in ((0.45, -0.45), (0.45, 0.45), (-0.45, 0.45), (-0.45, -0.44)):
        page.mouse.move(cx + fx * w, cy + fy * h, steps=8)
    page.mouse.up()
    page.wait_for_selector("text=Selected on", timeout=20000)
    settle(page)
    assert_no_exception(page, "map selection")
    page.screenshot(path=str(SHOTS / "embedding_map_selected.png"), full_page=True)


def _note_wav(path: Path, cache: str) -> Path:
    """A real 4-s note of the corpus (rendered from its soundfont) written as WAV."""
    import pandas as pd

    from mie_core import workbench

    notes = pd.read_parquet(Path(cache) / "embeddings" / "notes_test.parquet")
    row = notes.iloc[len(notes) // 2]
    try:
        x = workbench.play_note(row.to_dict())
    except workbench.MissingSoundfont:
        t = np.arange(64000) / 16000
        x = (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-t)).astype(np.float32)
    sf.write(path, x, 16000, subtype="PCM_16")
    return path


def test_verify_upload_verdict_and_bad_file(server, browser, tmp_path):
    url, cache = server
    wav = _note_wav(tmp_path / "note.wav", cache)
    # a file that claims to be audio but is not (Streamlit's uploader already refuses other extensions)
    bad = tmp_path / "not_really.wav"
    bad.write_text("definitely not audio\n" * 50)
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(f"{url}/Verify")
    settle(page)
    page.get_by_role("button", name="Enrol").click()
    page.wait_for_selector("text=Enrolled", timeout=30000)
    settle(page)
    uploader = page.locator("[data-testid=stFileUploader]").filter(has_text="A clip to test").locator("input[type=file]")
    t = time.perf_counter()
    uploader.set_input_files(str(wav))
    page.wait_for_selector("text=/(ACCEPT|REJECT): score/", timeout=30000)
    verdict_s = time.perf_counter() - t
    settle(page)
    print(f"\nupload-to-verdict: {verdict_s:.2f} s")
    assert_no_exception(page, "verify upload")
    text = page.locator("[data-testid=stMain]").inner_text()
    assert "Nearest corpus instruments" in text
    page.screenshot(path=str(SHOTS / "verify_verdict.png"), full_page=True)
    # a file that is not audio gets the library's message, and the page keeps working
    uploader.set_input_files(str(bad))
    page.wait_for_selector("text=not a readable audio file", timeout=30000)
    settle(page)
    assert_no_exception(page, "verify bad file")
    alerts = page.locator("[data-testid=stAlertContentError]").all_inner_texts()
    assert any("not_really.wav" in a and "not a readable audio file" in a for a in alerts), alerts
    page.screenshot(path=str(SHOTS / "verify_bad_file.png"), full_page=True)
    assert verdict_s < 1.0  # the promise: a 4-s clip from upload to verdict in under a second
