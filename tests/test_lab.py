"""JupyterLab as readers start it: `make lab`'s command serves `nbs/` (as root too), and a committed notebook opens
in a real headless browser with its outputs rendered — printed text and figures — without running anything."""
import os, re, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_allows_root():
    recipe = re.search(r"^lab:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(encoding="utf-8"), flags=re.M)
    assert recipe and "jupyter lab nbs" in recipe.group(1) and "--allow-root" in recipe.group(1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "Base URL of a JupyterLab serving nbs/ on 127.0.0.1 (no token, no browser, no update checks)."
    port, log = _free_port(), tmp_path_factory.mktemp("lab") / "lab.log"
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    cmd += ["--allow-root"] if os.getuid() == 0 else []
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT / "nbs", stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url + "api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"jupyter lab did not answer within 60 s:\n{log.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_notebook_opens_in_jupyterlab_with_its_outputs(lab, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(lab + "lab/tree/05_synth.ipynb", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-OutputArea-output", timeout=90_000)
    page.wait_for_selector(".jp-RenderedImage img", timeout=90_000)
    texts = page.locator(".jp-OutputArea-output.jp-RenderedText").all_text_contents()  # off-screen ones too
    images = page.evaluate("() => [...document.querySelectorAll('.jp-RenderedImage img')]"
                           ".filter(i => i.complete && i.naturalWidth > 0).length")
    page.close()
    assert images >= 1, "no figure rendered in JupyterLab"
    assert any(t.strip() for t in texts), "no printed output rendered in JupyterLab"
