"""A newcomer's path, timed: a fresh clone -> `make data` (the venv, the soundfonts, the real
test notes) -> the server answering -> the Verify page in Chromium -> the first verdict.

    python benchmarks/newcomer.py [--clone DIR] [--keep]

Clones this repository (its committed state) into ``--clone`` (default: a new temporary
folder), runs ``make data`` there (pip's wheel cache makes the install minutes, not tens of
minutes), starts the workbench as ``make run`` does, and, as a newcomer would, opens the
Home page, goes on to Verify, clicks Enrol (the corpus instrument the page shows first) and
drops a 1.5-s synthesized note on "A clip to test". Prints the seconds of each step and the
total. Needs Debian's chromium and Python's playwright (tests/test_browser.py's needs).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
IDLE = ("document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'"
        " && !!document.querySelector('[data-testid=stMain] h1')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clone", help="where to clone (default: a new temporary folder)")
    p.add_argument("--keep", action="store_true", help="leave the clone (default: removed at the end)")
    args = p.parse_args()
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    root = Path(args.clone or tempfile.mkdtemp(prefix="newcomer_"))
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    subprocess.run(["git", "clone", "-q", str(REPO), str(root / "repo")], check=True)
    repo = root / "repo"
    times["git clone"] = time.perf_counter() - t0
    t = time.perf_counter()
    subprocess.run(["make", "data"], cwd=repo, check=True, stdout=subprocess.DEVNULL)
    times["make data (venv, soundfonts, real notes)"] = time.perf_counter() - t
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIE_")}
    env["MIE_LIBRARY"] = str(root / "library")
    t = time.perf_counter()
    server = subprocess.Popen([str(repo / ".venv" / "bin" / "streamlit"), "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true"], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.perf_counter() - t > 120:
                    raise SystemExit("the server did not answer within 2 minutes")
                time.sleep(0.2)
        times["server answering"] = time.perf_counter() - t
        clip = root / "tone_a4.wav"
        x = np.arange(int(1.5 * 16000)) / 16000
        sf.write(clip, (0.3 * np.sin(2 * np.pi * 440 * x) * np.exp(-2 * x)).astype(np.float32), 16000)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            t = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")  # where `make run` opens: Home (the warm-up starts here)
            page.wait_for_function(IDLE, timeout=180000)
            times["Home page ready"] = time.perf_counter() - t
            t = time.perf_counter()
            page.get_by_role("link", name="Verify").first.click()
            page.get_by_role("button", name="Enrol", exact=True).wait_for(timeout=180000)
            page.wait_for_function(IDLE, timeout=180000)
            times["Verify page ready"] = time.perf_counter() - t
            t = time.perf_counter()
            page.get_by_role("button", name="Enrol", exact=True).click()
            page.wait_for_selector("text=/Enrolled: /", timeout=180000)
            times["Enrol (5 corpus notes)"] = time.perf_counter() - t
            t = time.perf_counter()
            page.locator("[data-testid=stFileUploader]").filter(has_text="A clip to test").locator(
                "input[type=file]").set_input_files(str(clip))
            page.wait_for_selector("text=/(ACCEPT|REJECT): probability .*tone_a4/", timeout=180000)
            times["first verdict"] = time.perf_counter() - t
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
        if not args.keep:
            subprocess.run(["rm", "-rf", str(root)])
    for step, s in times.items():
        print(f"{step:45s} {s:7.1f} s")
    print(f"{'clone to first verdict':45s} {time.perf_counter() - t0:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
