"""The browser's part of drawing a map: WebGL canvases at the screen's resolution vs Plotly's default.

    python benchmarks/map_browser.py            # needs Chromium (see README); the shipped test notes

Draws the Embedding map figure (``ui.scatter_map``, 7,090 points, coloured by family) in
headless Chromium with Plotly's own plotly.js (the one the Python package ships), once with
``ui.MAP_CONFIG`` (``plotGlPixelRatio`` 1) and once with Plotly's default (2: four times the
pixels to clear, fill and composite). Each draw is a fresh ``Plotly.newPlot`` into a new div,
as Streamlit does when a map's figure changes, timed to the second animation frame after it
(the frame that shows it); the two are timed in alternation in one page, best of 7 each.
Chromium runs with ``--disable-gpu`` as in the browser test, so WebGL is drawn in software:
a browser with a GPU gains less.
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on sys.path)

DRAW = """async ([fig, config]) => {
  const div = document.createElement('div'); div.style.width = '1350px'; document.body.appendChild(div);
  const t = performance.now();
  await Plotly.newPlot(div, fig.data, fig.layout, config);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const dt = performance.now() - t;
  Plotly.purge(div); div.remove();
  return dt; }"""


def main():
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    import plotly
    import streamlit  # noqa: F401
    from playwright.sync_api import sync_playwright

    logging.getLogger("streamlit.runtime.caching.cache_data_api").setLevel(logging.ERROR)
    from mie_core.service import workbench
    from pages.common import ui

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        sys.exit("Chromium is not installed (apt-get install chromium)")
    cache = workbench.Cache()
    meta = cache.notes("test")
    coords = np.load(cache.root / "maps" / "mel122_test_tsne.npy")
    fig = json.loads(ui.scatter_map(coords, meta, "family", np.arange(len(meta))).to_json())
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    configs = {"plotGlPixelRatio 1 (ui.MAP_CONFIG)": ui.MAP_CONFIG, "plotGlPixelRatio 2 (Plotly's default)": {}}
    best = {k: float("inf") for k in configs}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_content("<html><body></body></html>")
        page.add_script_tag(path=str(plotly_js))
        for rep in range(8):  # the first round warms up (shader caches, JIT) and is not counted
            for name, config in configs.items():
                ms = page.evaluate(DRAW, [fig, config])
                if rep:
                    best[name] = min(best[name], ms)
        browser.close()
    for name, ms in best.items():
        print(f"{name}: {ms:.0f} ms from newPlot to the frame that shows it")
    a, b = best.values()
    print(f"ratio: {b / a:.2f}x faster at the screen's resolution ({len(meta)} points, software WebGL)")


if __name__ == "__main__":
    main()
