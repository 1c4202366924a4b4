"""Pages in, pages out: `jand predict` on Transkribus-style PAGE-XML and eScriptorium-style ALTO v4, round-tripped."""
import json, subprocess, sys
import xml.etree.ElementTree as ET
from pathlib import Path
import pytest
from lxml import etree
import layouts
from jand.formats import read_alto, read_page
from jand.synth import SynthConfig, SynthCorpus

CHANGED = {"page": ("TextEquiv",), "alto": ("String", "SP", "HYP")}  # what jand writes into each TextLine


def jand(*args):
    return subprocess.run([str(Path(sys.executable).parent / "jand"), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def samples():
    corpus = SynthCorpus(SynthConfig(n_train=0, n_val=0, n_test=6, height=48))
    return [(l, corpus.load(l)) for l in corpus.lines("test")]


def without_text(path, kind) -> bytes:
    "The file's canonical XML with the elements jand writes removed from every TextLine, whitespace-only text dropped."
    tree = etree.parse(str(path), etree.XMLParser(remove_blank_text=True))
    for line in tree.iter("{*}TextLine"):
        for el in [c for c in line if etree.QName(c).localname in CHANGED[kind]]:
            line.remove(el)
    return etree.tostring(tree, method="c14n2", strip_text=True)


def lines_of(path) -> dict:
    "Line id → (geometry, own text, confidence), read with the standard library's parser (not jand's)."
    found = {}
    for el in ET.parse(path).getroot().iter():
        if el.tag.rsplit("}", 1)[-1] != "TextLine":
            continue
        kids = {c.tag.rsplit("}", 1)[-1]: c for c in el}
        if "Coords" in kids:  # PAGE
            eq = kids.get("TextEquiv")
            text = eq.find("{*}Unicode").text if eq is not None else None
            found[el.get("id")] = (kids["Coords"].get("points"), text, eq.get("conf") if eq is not None else None)
        else:  # ALTO
            strings = [c for c in el if c.tag.endswith("String")]
            found[el.get("ID")] = ((el.get("HPOS"), el.get("VPOS"), el.get("WIDTH"), el.get("HEIGHT")),
                                   " ".join(s.get("CONTENT") for s in strings), [s.get("WC") for s in strings])
    return found


@pytest.mark.parametrize("kind", ["page", "alto"])
def test_a_page_round_trips(tmp_path, samples, kind):
    root = (layouts.page_xml(samples, tmp_path / "in", "2013") if kind == "page"
            else layouts.alto_xml(samples, tmp_path / "in"))
    r = jand("predict", "--model", "student", "--form", "eager", root, "--out", tmp_path / "out", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["image"]: row for row in json.loads(r.stdout)}
    written = sorted((tmp_path / "out").rglob("*.xml"))
    assert [p.relative_to(tmp_path / "out") for p in written] == [p.relative_to(root)
                                                                  for p in sorted(root.rglob("*.xml"))]
    for out in written:
        src = root / out.relative_to(tmp_path / "out")
        assert without_text(out, kind) == without_text(src, kind)  # everything else as it was
        before, after = lines_of(src), lines_of(out)
        assert list(after) == list(before)  # the same lines, in the same order
        for lid, (geometry, text, conf) in after.items():
            row = rows[f"{src}#{lid}"]
            assert geometry == before[lid][0] and text == row["text"]
            if kind == "page":
                assert float(conf) == pytest.approx(row["confidence"], abs=1e-4)
            else:
                assert [float(c) for c in conf] == pytest.approx([w["confidence"] for w in row["words"]], abs=1e-4)
    for image in root.rglob("*.png"):  # the pages' images, beside the written XML: jand's reader reads them back
        (tmp_path / "out" / image.relative_to(root)).write_bytes(image.read_bytes())
    reread, rep = (read_page if kind == "page" else read_alto)(tmp_path / "out")
    assert rep.kept == len(rows) and {l.text for l in reread} == {row["text"] for row in rows.values()}


def test_alto_words_sit_inside_their_line(tmp_path, samples):
    root = layouts.alto_xml(samples[:3], tmp_path / "in")
    assert jand("predict", "--model", "student", "--form", "eager", root, "--out", tmp_path / "out").returncode == 0
    for line in ET.parse(tmp_path / "out" / "test" / "page_0001.xml").getroot().iter("{*}TextLine"):
        left, width = float(line.get("HPOS")), float(line.get("WIDTH"))
        words = [(float(s.get("HPOS")), float(s.get("WIDTH"))) for s in line.iter("{*}String")]
        assert words == sorted(words) and all(left - 1 <= x and x + w <= left + width + 8 for x, w in words)
        assert all(len(s.get("CC")) == len(s.get("CONTENT")) for s in line.iter("{*}String"))


def test_pages_are_written_in_place_only_when_asked(tmp_path, samples):
    root = layouts.page_xml(samples[:3], tmp_path / "in", "2019")
    page = root / "test" / "page_0001.xml"
    before = page.read_bytes()
    r = jand("predict", "--model", "student", "--form", "eager", page)
    assert r.returncode == 2 and "exists: pass --overwrite" in r.stderr and page.read_bytes() == before
    (root / "mets.xml").write_text("<mets/>")
    r = jand("predict", "--model", "student", "--form", "eager", root, "--overwrite")
    assert r.returncode == 0 and "mets.xml: neither PAGE nor ALTO (passed over)" in r.stderr, r.stderr
    assert page.read_bytes() != before and "<TextEquiv conf=" in page.read_text()


SCHEMAS = Path(__file__).resolve().parents[1] / ".cache" / "schemas"  # fetched by `make schemas` (tools/schemas.py)


def schema(name: str):
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip(f"{name} not fetched: `make schemas` (tools/schemas.py) needs PyPI")
    return etree.XMLSchema(etree.parse(str(path)))


def valid_page_2019(samples, root: Path) -> Path:
    "eScriptorium-style PAGE 2019 pages, with the Metadata dates the schema requires."
    root = layouts.page_xml(samples, root, "2019")
    dates = "<Created>2026-01-01T00:00:00</Created><LastChange>2026-01-01T00:00:00</LastChange>"
    for xml in root.rglob("*.xml"):
        xml.write_text(xml.read_text().replace("</Creator>", "</Creator>" + dates))
    return root


def valid_transkribus_2019(samples, root: Path) -> Path:
    "Transkribus-style pages (nested regions, a table, reading order) in PAGE 2019, child regions before lines."
    root = layouts.page_xml(samples, root, "2013")
    rank = {"TextLine": 2, "TextEquiv": 3, "TextStyle": 4}
    for xml in root.rglob("*.xml"):
        text = xml.read_text().replace("2013-07-15", "2019-07-15")
        text = text.replace("</Created>", "</Created><LastChange>2026-01-01T00:00:00</LastChange>")
        doc = etree.fromstring(text.encode())
        for region in doc.iter("{*}TextRegion", "{*}TableRegion"):
            for child in sorted(region, key=lambda c: 1 if etree.QName(c).localname.endswith("Region")
                                else rank.get(etree.QName(c).localname, 0)):
                region.append(child)
        xml.write_bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))
    return root


VALID_PAGES = {"page": valid_page_2019, "transkribus": valid_transkribus_2019, "alto": layouts.alto_xml}


@pytest.mark.parametrize("kind", list(VALID_PAGES))
def test_written_pages_validate_against_the_published_schemas(tmp_path, samples, kind):
    xsd = schema("alto-4-4.xsd" if kind == "alto" else "page-2019.xsd")
    root = VALID_PAGES[kind](samples, tmp_path / "in")
    for xml in root.rglob("*.xml"):
        assert xsd.validate(etree.parse(str(xml))), (xml, xsd.error_log)  # valid pages in …
    r = jand("predict", "--model", "student", "--form", "eager", root, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    written = sorted((tmp_path / "out").rglob("*.xml"))
    assert written
    for xml in written:
        assert xsd.validate(etree.parse(str(xml))), (xml, xsd.error_log)  # … valid pages out
