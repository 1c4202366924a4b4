"""Shared fixtures: a headless Chromium (Debian's, driven by Playwright) for the browser tests of the docs and JupyterLab.

Skipped, saying why, only where no Chromium binary or no Playwright package is there (`make test` installs Chromium
with apt when it can: `make browser`). Set JAND_CHROMIUM to use another Chromium binary.
"""
import os, shutil
from pathlib import Path
import pytest

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def chromium_path():
    "The Chromium binary to drive: $JAND_CHROMIUM, else `chromium` / `chromium-browser` on the PATH, else None."
    for c in (os.environ.get("JAND_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if c and Path(c).is_file() and os.access(c, os.X_OK): return c
    return None


@pytest.fixture(scope="session")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.skip("browser test skipped: no Chromium binary found (install Debian's `chromium`, e.g. `make browser`, or set JAND_CHROMIUM)")
    try: from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser test skipped: the Python package `playwright` is not installed (`pip install -e '.[dev]'`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=FLAGS)  # Debian's Chromium: Playwright downloads nothing
        yield b
        b.close()
