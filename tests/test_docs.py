"""The documentation site, built without Quarto (`jand.docs.build_site`), opened in a real headless browser.

The site is built into a temporary folder, served by `http.server` on 127.0.0.1, and every page is opened in Debian's
Chromium driven by Playwright: no console or page errors, no failed request, every image loaded, every link inside
the site resolves (HTTP 200, and the `#anchor` exists on the target page), the sidebar lists every notebook in
reading order, the API entries carry their parameter tables, and the results page renders the tables. The home page
screenshot is saved to `figures/docs_home.png` when JAND_UPDATE_FIGURES is set (a plain test run changes no
tracked file).

Skipped, saying why, only where no Chromium binary or no Playwright package is there (`make test` installs
Chromium with apt when it can: `make browser`). Set JAND_CHROMIUM to use another Chromium binary.
"""
import functools, http.server, os, re, shutil, threading, urllib.error, urllib.parse, urllib.request
from pathlib import Path
import pytest
from jand.core import atomic_write_bytes
from jand.docs import RESULTS_PAGE, build_site, experiment_pages, page_name, reading_order

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "figures" / "docs_home.png"
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The whole site, built from the repo's notebooks; results: the repo's tables plus one sample table."
    from jand.results import write_table
    res = tmp_path_factory.mktemp("results")
    for f in (ROOT / "results").glob("*.*"): shutil.copy(f, res / f.name)
    write_table("zz_docs_sample", [{"model": "teacher", "cer": 1.23}, {"model": "student", "cer": 2.34}],
                "Sample table (written by tests/test_docs.py)", out=res)
    return build_site(tmp_path_factory.mktemp("docs") / "site", nbs=ROOT / "nbs", results=res, quiet=True)


@pytest.fixture(scope="module")
def server(site):
    "Base URL of a static server on 127.0.0.1 (free port) serving the site."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site.out)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown(); srv.server_close(); thread.join(5)


_PAGE_FACTS = """() => ({
  title: document.title,
  h1: (document.querySelector('main h1') || {}).textContent || '',
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  brokenImages: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 100)),
  sidebar: [...document.querySelectorAll('nav.sidebar > ol > li > a')].map(a => a.getAttribute('href')),
  current: [...document.querySelectorAll('nav.sidebar a[aria-current=page]')].map(a => a.getAttribute('href')),
  styled: getComputedStyle(document.querySelector('.topbar')).display === 'flex',
  mainHeight: document.querySelector('main').scrollHeight,
})"""


@pytest.fixture(scope="module")
def crawl(site, server, browser):
    "Every page of the site (the built ones and any page a link reaches), opened in Chromium: url path -> facts."
    page = browser.new_page(viewport=VIEWPORT)
    errors = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    todo, facts = [p.name for p in site.pages], {}
    while todo:
        name = todo.pop(0)
        if name in facts: continue
        errors.clear()
        resp = page.goto(server + name, wait_until="load")
        f = page.evaluate(_PAGE_FACTS)
        f["status"], f["errors"] = resp.status if resp else None, list(errors)
        facts[name] = f
        for url in f["links"]:
            u = urllib.parse.urlsplit(url)
            if url.startswith(server) and u.path.endswith(".html"):
                todo.append(u.path[len(urllib.parse.urlsplit(server).path):])
    shot = (page.goto(server + "index.html", wait_until="load"), page.screenshot())[1]
    page.close()
    return facts, shot


def test_the_site_builds_with_nothing_left_unlinked(site):
    assert site.report.n_skipped == 0, f"build problems: {dict(site.report.skipped)} e.g. {site.report.examples}"
    names = [p.name for p in site.pages]
    assert names[0] == "index.html" and names[-1] == RESULTS_PAGE
    assert len(names) == len(list(reading_order(ROOT / "nbs"))) + len(experiment_pages(ROOT / "nbs")) + 1
    assert (site.out / "style.css").is_file() and not any(site.out.parent.glob(".site.tmp-*"))


def test_every_page_renders_without_errors(crawl, site):
    facts, _ = crawl
    assert set(facts) >= {p.name for p in site.pages}
    for name, f in facts.items():
        assert f["status"] == 200, f"{name}: HTTP {f['status']}"
        assert not f["errors"], f"{name}: {f['errors']}"
        assert not f["brokenImages"], f"{name}: images that did not load: {f['brokenImages']}"
        assert f["styled"], f"{name}: the stylesheet did not apply"
        assert f["h1"].strip() and f["title"].strip(), f"{name}: no heading or title"
        assert f["mainHeight"] > 300, f"{name}: the page is nearly empty"
        dup = sorted({i for i in f["ids"] if f["ids"].count(i) > 1})
        assert not dup, f"{name}: duplicate ids {dup[:5]}"


def test_every_internal_link_resolves(crawl, server):
    facts, _ = crawl
    checked, bad = set(), []
    for name, f in facts.items():
        for url in f["links"]:
            if not url.startswith(server): continue  # the repository link goes out of the site
            u = urllib.parse.urlsplit(url)
            path, frag = u.path[len(urllib.parse.urlsplit(server).path):] or "index.html", u.fragment
            if (path, frag) in checked: continue
            checked.add((path, frag))
            if path in facts:
                ids = facts[path]["ids"]  # as browsers do: the fragment as written, then percent-decoded
                if frag and frag not in ids and urllib.parse.unquote(frag) not in ids: bad.append(f"{name} -> {path}#{frag}: no such anchor")
                continue
            try:
                with urllib.request.urlopen(server + path, timeout=10) as r: status = r.status
            except urllib.error.HTTPError as e: status = e.code
            if status != 200: bad.append(f"{name} -> {path}: HTTP {status}")
    assert checked, "no internal links found"
    assert not bad, f"{len(bad)} broken internal links: {bad[:10]}"


def test_sidebar_lists_every_notebook_in_reading_order(crawl):
    facts, _ = crawl
    expected = [page_name(p) for p in reading_order(ROOT / "nbs")] + [n for _, _, n in experiment_pages(ROOT / "nbs")] + [RESULTS_PAGE]
    assert expected[0] == "index.html" and "charset.html" in expected and "docs.html" in expected
    for name, f in facts.items():
        assert f["sidebar"] == expected, f"{name}: sidebar {f['sidebar']}"
        assert f["current"] == [name], f"{name}: current page marked as {f['current']}"


def test_api_entries_have_signatures_and_parameter_tables(server, browser, crawl):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server + "charset.html#charset.encode", wait_until="load")
    entry = page.locator('[id="charset.encode"]')
    assert entry.locator("pre.signature").inner_text().strip() == "Charset.encode(text:str, where='text') -> list"
    rows = entry.locator("table.params tbody tr td:first-child").all_inner_texts()
    assert rows == ["text", "where", "Returns"], rows
    assert page.locator('[id="charset"] table.params').count() == 1  # the class entry: its dataclass fields
    assert entry.is_visible() and page.evaluate("window.scrollY") > 0  # the anchor scrolled the page to the entry
    page.goto(server + "core.html", wait_until="load")
    assert "What produced the report" in page.locator('[id="report"] table.params').inner_text()
    page.close()


def test_results_page_renders_the_tables(server, browser, crawl):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server + RESULTS_PAGE, wait_until="load")
    sample = page.locator('[id="zz_docs_sample"]')
    assert "Sample table" in sample.locator("h2").inner_text()
    cells = sample.locator("table td").all_inner_texts()
    assert "teacher" in cells and "student" in cells, cells
    assert page.locator("section.results-table").count() == len(list((ROOT / "results").glob("*.md"))) + 1
    page.close()


def test_home_page_screenshot_is_saved(crawl):
    _, shot = crawl
    from PIL import Image
    import io
    img = Image.open(io.BytesIO(shot))
    assert img.size == (VIEWPORT["width"], VIEWPORT["height"])
    lo, hi = img.convert("L").getextrema()
    assert hi - lo > 100, "the screenshot is blank"
    assert len(shot) > 10_000
    if os.environ.get("JAND_UPDATE_FIGURES"):  # a test run leaves the committed figure alone unless asked
        atomic_write_bytes(SCREENSHOT, shot)


def test_notebook_figures_render_on_their_pages(server, browser, crawl):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server + page_name("10_backbone.ipynb"), wait_until="load")
    shown = page.evaluate("() => [...document.querySelectorAll('main img')]"
                          ".filter(i => i.complete && i.naturalWidth > 0).map(i => i.src.slice(0, 16))")
    assert any(s.startswith("data:image/") for s in shown), f"no figure rendered on the backbone page: {shown}"
    assert "receptive field: 77 px" in page.locator("main").inner_text()  # a printed output, too
    page.close()


def _shown_tables(nb_path:Path) -> list:
    "The result tables an executed experiment notebook shows: `results/<name>.md` of each `lab.write` it displays."
    import json
    names = []
    for c in json.loads(nb_path.read_text())["cells"]:
        shown = "".join(t for o in c.get("outputs", []) for t in o.get("data", {}).get("text/plain", []))
        names += [m.split("/")[-1] for m in re.findall(r"md=(results/\w+)\.md", shown)]
    return names


def _first_row(md:Path) -> list:
    "The cells of the first data row of the first Markdown table in `md`."
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    return [c.strip() for c in rows[1].strip("|").split("|")]


def test_experiment_pages_show_their_result_tables(server, browser, crawl):
    page = browser.new_page(viewport=VIEWPORT)
    checked = 0
    for src, _, name in experiment_pages(ROOT / "nbs"):
        tables = _shown_tables(src)
        if not tables: continue  # committed bare (until the next reproduction) or showing its table another way
        page.goto(server + name, wait_until="load")
        text = page.locator("main table").all_inner_texts()
        assert text, f"{name}: no table rendered"
        for table in tables:
            row = _first_row(ROOT / "results" / f"{table}.md")
            assert any(all(cell in t for cell in row[:2]) for t in text), f"{name}: {table}'s first row {row[:2]}"
        checked += 1
    assert checked >= 5, f"only {checked} experiment pages show a result table"  # bare ones wait for a reproduction
    page.close()
