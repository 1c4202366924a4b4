"""Round trips and a table of bad inputs for jand.readers (IAM, RIMES 2011, Bentham R0, plain folders).

Every corpus is written by its `write_*` function from a few fake line images, then read back; the bad-input
table breaks one thing in a freshly written corpus and checks that the reader either counts the skip (reason
and file named in the report) or raises a `DataError` whose message names the problem and the file.
"""
from __future__ import annotations
import re, shutil
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jand.core import DataError, Line
from jand.images import load_image
from jand.normalise import IAMNorm, BenthamNorm
from jand import readers as R, reading
from jand.readers import read_iam, read_rimes, read_bentham, read_corpus, write_iam, write_rimes, write_bentham
from jand.reading import hash_fraction
from jand.formats import read_folder, write_folder
import layouts

READ_ONLY = {"parquet": layouts.parquet_lines, "page": layouts.page_xml, "alto": layouts.alto_xml}

# ---------------------------------------------------------------- fake corpus ---------------------------------
SPLIT_OF_FORM = {0: "train", 1: "val", 2: "test"}
TEXTS = ["A MOVE to stop Mr. Gaitskell", "from nominating any more", 'Labour "life" Peers, he\'s',
         "café naïve à l'été", "Tom & Jerry 3 < 4", "is to be made at", "a meeting of Labour", "M Ps tomorrow.", "x"]


def ids():
    return [f"p01-00{f}-{k:02d}" for f in range(3) for k in range(3)]


def fake_image(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    a = np.full((10 + i, 24 + 5 * i), 255, np.uint8)
    a[2:-2, 2:-2] = rng.integers(0, 256, (a.shape[0] - 4, a.shape[1] - 4), dtype=np.uint8)
    return a


def samples():
    return [(Line(lid, TEXTS[i], "", split=SPLIT_OF_FORM[i // 3], writer=f"{i // 3:03d}"), fake_image(i))
            for i, lid in enumerate(ids())]


def expected(with_writer=True):
    return [(l.id, l.text, l.split) + ((l.writer,) if with_writer else ()) for l, _ in samples()]


def build(kind: str, root: Path) -> Path:
    if kind == "rimes": return write_rimes(samples(), root, lines_per_page=3, page_ext=".png")
    if kind in READ_ONLY: return READ_ONLY[kind](samples(), root)  # layouts jand reads but does not write
    return R.WRITERS[kind](samples(), root)


def read(kind: str, root: Path, **kw):
    if kind in ("iam", "rimes", "bentham"): kw.setdefault("check_counts", False)
    return read_corpus(kind, root, **kw)


# ---------------------------------------------------------------- round trips ---------------------------------
def test_iam_roundtrip_aachen(tmp_path):
    root = build("iam", tmp_path / "IAM")
    lines, rep = read_iam(root, check_counts=False)
    assert [(l.id, l.text, l.split, l.writer) for l in lines] == expected()
    assert rep.kept == 9 and rep.n_skipped == 0
    for l, (_, a) in zip(lines, samples()):
        assert l.source == "iam" and l.box is None
        assert np.array_equal(load_image(l.image), a)
    row = (root / "ascii/lines.txt").read_text().splitlines()[-3]
    assert re.fullmatch(r"p01-002-00 ok \d+ 4 0 0 54 16 a\|meeting\|of\|Labour", row)
    assert (root / "ascii/forms.txt").read_text().splitlines()[1].startswith("p01-000 000 ")


def test_iam_roundtrip_official_and_val2(tmp_path):
    root = build("iam", tmp_path / "IAM")
    lines, rep = read_iam(root, "official", check_counts=False)
    assert [(l.id, l.text, l.split, l.writer) for l in lines] == expected()
    off = root / "largeWriterIndependentTextLineRecognitionTask"
    (off / "validationset1.txt").write_text("p01-001-00\np01-001-01\n")
    (off / "validationset2.txt").write_text("p01-001-02\n")
    split = lambda **kw: Counter(l.split for l in read_iam(root, "official", check_counts=False, **kw)[0])
    assert split() == {"train": 3, "val": 3, "test": 3}
    assert split(val2="train") == {"train": 4, "val": 2, "test": 3}
    assert split(val2="test") == {"train": 3, "val": 2, "test": 4}
    lines, rep = read_iam(root, "official", val2="drop", check_counts=False)
    assert len(lines) == 8 and rep.skipped["in validationset2 (val2='drop')"] == 1
    with pytest.raises(ValueError, match="val2 must be"): read_iam(root, "official", val2="keep")


def test_iam_split_entries_forms_paths_and_laia_names(tmp_path):
    root = build("iam", tmp_path / "IAM")
    aachen = root / "splits/aachen"
    (aachen / "train.uttlist").write_text("# forms\np01-000\n")                      # a form id: all its lines
    (aachen / "validation.uttlist").unlink(); (aachen / "va.lst").write_text("lines/p01/p01-001/p01-001-00.png\np01-001-01\np01-001-02\n")
    lines, rep = read_iam(root, check_counts=False)
    assert [(l.id, l.split) for l in lines] == [(i, s) for i, _, s, _ in expected()]
    (aachen / "validation.uttlist").write_text("p01-001\n")
    with pytest.raises(DataError, match="ambiguous split files"): read_iam(root, check_counts=False)
    (aachen / "va.lst").unlink()
    other = tmp_path / "mysplits"; shutil.copytree(aachen, other); shutil.rmtree(aachen)
    assert len(read_iam(root, check_counts=False, splits_dir=other)[0]) == 9


def test_iam_lines_not_in_a_split_err_flags_and_forms(tmp_path):
    root = build("iam", tmp_path / "IAM")
    (root / "splits/aachen/test.uttlist").write_text("p01-002-00\n")
    txt = root / "ascii/lines.txt"
    txt.write_text(txt.read_text().replace("p01-000-01 ok", "p01-000-01 err"))
    lines, rep = read_iam(root, check_counts=False)
    assert len(lines) == 7 and rep.skipped["not in any split file"] == 2
    lines, rep = read_iam(root, keep_err=False, check_counts=False)
    assert len(lines) == 6 and rep.skipped["segmentation flagged err (keep_err=False)"] == 1
    (root / "ascii/forms.txt").unlink()
    assert {l.writer for l in read_iam(root, check_counts=False)[0]} == {""}


def test_iam_text_normalisation_options(tmp_path):
    root = build("iam", tmp_path / "IAM")
    txt = root / "ascii/lines.txt"
    txt.write_text(re.sub(r"(p01-000-00 ok( \S+){6}) \S+", r"\1 He|said|&quot;|yes|.|&quot;|do|n't", txt.read_text()))
    assert read_iam(root, check_counts=False)[0][0].text == 'He said "yes." don\'t'
    assert read_iam(root, check_counts=False, norm=IAMNorm(join_punctuation=False, join_contractions=False))[0][0].text == 'He said " yes . " do n\'t'
    with pytest.raises(TypeError, match="must be a IAMNorm"): read_iam(root, norm=BenthamNorm())


def test_rimes_roundtrip_lossless(tmp_path):
    root = build("rimes", tmp_path / "RIMES")
    lines, rep = read_rimes(root, val_fraction=0, check_counts=False)
    assert [l.text for l in lines] == TEXTS
    assert [l.split for l in lines] == ["train"] * 6 + ["test"] * 3       # RIMES has no val: re-derived by the reader
    assert [l.id for l in lines[:4]] == ["train2011-0-00", "train2011-0-01", "train2011-0-02", "train2011-1-00"]
    assert lines[-1].id == "eval2011-0-02" and lines[-1].image.endswith("images_gray/eval2011-0.png")
    for l, (_, a) in zip(lines, samples()):
        assert l.source == "rimes" and np.array_equal(load_image(l.image, l.box), a)
    xml = (root / "training_2011.xml").read_text()
    assert '<SinglePage FileName="images_gray/train2011-0.png">' in xml and 'Value="Labour &quot;life&quot; Peers, he\'s"' in xml


def test_rimes_validation_by_page_hash_and_jpeg_pages(tmp_path):
    root = write_rimes(samples(), tmp_path / "RIMES", lines_per_page=2)  # .jpg pages, like the real ones
    pages = [f"train2011-{k}.jpg" for k in range(3)]
    frac = sorted(hash_fraction(p) for p in pages)[1] + 1e-9               # exactly the two lowest-hash pages go to val
    lines, _ = read_rimes(root, val_fraction=frac, check_counts=False)
    want = {p[:-4] for p in pages if hash_fraction(p) < frac}
    assert len(want) == 2
    assert {l.id.rsplit("-", 1)[0] for l in lines if l.split == "val"} == want
    assert Counter(l.split for l in lines)["test"] == 3
    for l, (_, a) in zip(lines, samples()):
        crop = load_image(l.image, l.box)
        assert crop.shape == a.shape and np.abs(crop.astype(int) - a).mean() < 5  # JPEG is lossy
    assert {l.split for l in read_rimes(root, val_fraction=1.0, check_counts=False)[0][:6]} == {"val"}


@pytest.mark.parametrize("subfolder", [False, True])
def test_bentham_roundtrip(tmp_path, subfolder):
    root = write_bentham(samples(), tmp_path / "bentham", subfolder=subfolder)
    base = root / "BenthamDatasetR0-GT" if subfolder else root
    assert (base / "Transcriptions/p01-001-01.txt").read_text() == "Tom &amp; Jerry 3 &lt; 4\n"
    assert (base / "Partitions/ValidationLines.lst").read_text() == "p01-001-00\np01-001-01\np01-001-02\n"
    lines, rep = read_bentham(root, check_counts=False)
    assert [(l.id, l.text, l.split) for l in lines] == expected(with_writer=False)
    assert all(np.array_equal(load_image(l.image), a) for l, (_, a) in zip(lines, samples()))
    if subfolder: assert read_bentham(base, check_counts=False)[0] == lines   # the subfolder itself works too


def test_bentham_gaps_and_entities(tmp_path):
    root = write_bentham(samples(), tmp_path / "b")
    (root / "Transcriptions/p01-000-00.txt").write_text("the &amp; <gap/> of &lt;del&gt;it&lt;/del&gt;\n")
    assert read_bentham(root, check_counts=False)[0][0].text == "the & of it"
    kept = read_bentham(root, check_counts=False, norm=BenthamNorm(drop_gaps=False, gap_symbol="#"))[0][0].text
    assert kept == "the & # of it"


@pytest.mark.parametrize("subfolders", [True, False])
def test_folder_roundtrip(tmp_path, subfolders):
    root = write_folder(samples(), tmp_path / "f", subfolders=subfolders)
    lines, rep = read_folder(root)
    want = expected(with_writer=False) if subfolders else [(i, t, "train") for i, t, _ in expected(with_writer=False)]
    assert sorted((l.id, l.text, l.split) for l in lines) == sorted(want)
    assert rep.n_skipped == 0
    if not subfolders:
        tv = read_folder(root, val_fraction=0.3, test_fraction=0.3)[0]
        for l in tv:
            h = hash_fraction(l.id)
            assert l.split == ("val" if h < 0.3 else "test" if h < 0.6 else "train")
        assert read_folder(root, flat_split="test")[0][0].split == "test"


def test_folder_other_extensions_and_nested_ids(tmp_path):
    root = tmp_path / "f"
    for name, ext in [("train/a", ".jpg"), ("train/sub/b", ".tif"), ("test/c", ".jpeg"), ("val/d", ".PNG")]:
        p = root / (name + ext); p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fake_image(1)).save(p, format={".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF"}.get(ext, "PNG"))
        (root / (name + ".gt.txt")).write_text(f" text of {name}\n\n")
    (root / "train/notes.json").write_text("{}")  # other file types are ignored
    lines, rep = read_folder(root)
    assert sorted((l.id, l.split, l.text) for l in lines) == [
        ("a", "train", "text of train/a"), ("c", "test", "text of test/c"), ("d", "val", "text of val/d"), ("sub/b", "train", "text of train/sub/b")]
    assert rep.n_skipped == 0


def test_every_reader_through_read_corpus(tmp_path):
    for kind in R.READERS:
        lines, rep = read(kind, build(kind, tmp_path / kind))
        assert (len(lines), rep.n_skipped, {l.source for l in lines}) == (9, 0, {kind})
    with pytest.raises(ValueError, match="unknown corpus kind"): read_corpus("hebrew", tmp_path)


def test_published_counts_pass_when_they_match(tmp_path, monkeypatch):
    root = build("iam", tmp_path / "IAM")
    monkeypatch.setitem(reading.PUBLISHED_COUNTS, ("iam", "aachen"), ({"train": 3, "val": 3, "test": 3}, "test table"))
    assert len(read_iam(root)[0]) == 9
    monkeypatch.setitem(reading.PUBLISHED_COUNTS, ("iam", "aachen"), ({"train": 3, "val": 4, "test": 3}, "test table"))
    with pytest.raises(DataError, match="val has 3 lines, published 4") as e: read_iam(root)
    assert "check_counts=False" in str(e.value) and e.value.report.kept == 9
    # official scheme: lines of validationset2 never count towards the published train/test sizes, wherever val2 puts them
    off = root / "largeWriterIndependentTextLineRecognitionTask"
    (off / "validationset1.txt").write_text("p01-001-00\n"); (off / "validationset2.txt").write_text("p01-001-01\np01-001-02\n")
    monkeypatch.setitem(reading.PUBLISHED_COUNTS, ("iam", "official"), ({"train": 3, "test": 3}, "test table"))
    for val2 in ("val", "train", "test", "drop"):
        assert len(read_iam(root, "official", val2=val2)[0]) == (7 if val2 == "drop" else 9)


def test_truncated_image_passes_the_header_check_but_not_loading(tmp_path):
    root = build("bentham", tmp_path / "b")
    img = root / "Images/Lines/p01-000-00.png"
    img.write_bytes(img.read_bytes()[:60])
    lines, rep = read_bentham(root, check_counts=False)           # the header is intact: kept ...
    assert len(lines) == 9
    with pytest.raises(DataError, match="truncated") as e: load_image(lines[0].image)   # ... and loading names it
    assert "p01-000-00.png" in str(e.value)
    lines, rep = read_bentham(root, check_counts=False, check_images="full")
    assert len(lines) == 8 and "truncated" in str(rep) and "p01-000-00.png" in str(rep)
    assert len(read_bentham(root, check_counts=False, check_images=False)[0]) == 9
    with pytest.raises(ValueError, match="check_images must be"): read_bentham(root, check_images="yes")


def test_writers_refuse_bad_samples(tmp_path):
    l, a = samples()[0]
    bad = [((Line("p01-000-00", "a|b", "", "train"), a), "iam", "word separator"),
           ((Line("nodash", "ab", "", "train"), a), "iam", "form-NN"),
           ((Line("p01-000-00", "ab", "", "dev"), a), "folder", "split must be"),
           ((Line("p01-000-00", "", "", "train"), a), "bentham", "non-empty line"),
           ((l, a.astype(np.float32)), "rimes", "2-D uint8"),
           ((l, np.zeros((2, 3, 3), np.uint8)), "folder", "2-D uint8")]
    for sample, kind, msg in bad:
        with pytest.raises(ValueError, match=msg): R.WRITERS[kind]([sample], tmp_path / kind)
    with pytest.raises(ValueError, match="duplicate id"): write_folder([(l, a), (l, a)], tmp_path / "dup")


def test_write_iam_forms_with_several_writers(tmp_path):
    mixed = [(Line(l.id, l.text, "", l.split, writer="w9" if l.id == "p01-001-01" else l.writer), a) for l, a in samples()]
    with pytest.warns(UserWarning, match="1 form.*p01-001.*several writers"): root = write_iam(mixed, tmp_path / "IAM")
    lines, _ = read_iam(root, check_counts=False)
    assert [l.writer for l in lines] == ["000"] * 3 + [""] * 3 + ["002"] * 3


# ---------------------------------------------------------------- bad inputs ----------------------------------
def iam_img(root, lid="p01-000-00"):
    form = lid.rsplit("-", 1)[0]
    return root / "lines" / form.split("-")[0] / form / f"{lid}.png"

def rimes_page(root, name="train2011-0"): return root / "images_gray" / f"{name}.png"
def bentham_img(root, lid="p01-000-00"): return root / "Images/Lines" / f"{lid}.png"
def bentham_txt(root, lid="p01-000-00"): return root / "Transcriptions" / f"{lid}.txt"
def folder_img(root, lid="p01-000-00", split="train"): return root / split / f"{lid}.png"
def folder_gt(root, lid="p01-000-00", split="train"): return root / split / f"{lid}.gt.txt"

def empty(p): p.write_bytes(b"")
def junk(p): p.write_bytes(b"this is not an image at all")
def truncate(p): p.write_bytes(p.read_bytes()[:60])
def append(p, text): p.write_bytes(p.read_bytes() + (text.encode() if isinstance(text, str) else text))
def replace(p, old, new): p.write_text(p.read_text().replace(old, new, 1))

def edit_first_rimes_line(root, drop=(), **attrs):
    path = root / "training_2011.xml"
    tree = ET.parse(path); el = next(tree.getroot().iter("Line"))
    for k in drop: del el.attrib[k]
    el.attrib.update(attrs); tree.write(path, encoding="utf-8")

def duplicate_first_rimes_page(root):
    path = root / "training_2011.xml"
    tree = ET.parse(path); doc = tree.getroot()
    doc.append(ET.fromstring(ET.tostring(doc[0]))); tree.write(path, encoding="utf-8")

def copy_to_test(root):
    for suffix in (".png", ".gt.txt"): shutil.copy(root / "train" / f"p01-000-00{suffix}", root / "test" / f"p01-000-00{suffix}")

def only_images(root):
    for p in root.rglob("*.gt.txt"): p.unlink()


SKIP, ERROR = "skip", "error"
BAD_INPUTS = [
    # id, kind, mutation, reader options, outcome, reason (skip) or message (error), file named, lines kept / skipped
    ("iam-missing-image", "iam", lambda r: iam_img(r).unlink(), {}, SKIP, "image file not found", "p01-000-00.png", 8, 1),
    ("iam-zero-byte-image", "iam", lambda r: empty(iam_img(r)), {}, SKIP, "image file is empty (0 bytes)", "p01-000-00.png", 8, 1),
    ("iam-corrupt-image", "iam", lambda r: junk(iam_img(r)), {}, SKIP, "image unreadable", "p01-000-00.png (not a readable image", 8, 1),
    ("iam-truncated-image", "iam", lambda r: truncate(iam_img(r)), {"check_images": "full"}, SKIP, "image unreadable", "p01-000-00.png (image data is truncated", 8, 1),
    ("iam-non-utf8-row", "iam", lambda r: append(r / "ascii/lines.txt", b"p01-000-07 ok 1 1 0 0 9 9 caf\xe9\n"), {}, SKIP, "row is not UTF-8 text", "lines.txt:15 (byte 29)", 9, 1),
    ("iam-empty-transcription", "iam", lambda r: replace(r / "ascii/lines.txt", "x\n", "|\n"), {}, SKIP, "empty transcription", "lines.txt:14", 8, 1),
    ("iam-unknown-split-entry", "iam", lambda r: append(r / "splits/aachen/train.uttlist", "zzz-999-00\n"), {}, SKIP, "split entry names no line or form of lines.txt", "train.uttlist:4 (zzz-999-00)", 9, 1),
    ("iam-official-unknown-entry", "iam", lambda r: append(r / "largeWriterIndependentTextLineRecognitionTask/testset.txt", "zzz-999\n"), {"split_scheme": "official"}, SKIP, "split entry names no line or form of lines.txt", "testset.txt:4 (zzz-999)", 9, 1),
    ("iam-short-row", "iam", lambda r: append(r / "ascii/lines.txt", "p01-000-09 ok 154\n"), {}, SKIP, "malformed lines.txt row", "lines.txt:15 (has 3 fields, expected 9", 9, 1),
    ("iam-bad-flag", "iam", lambda r: append(r / "ascii/lines.txt", "p01-000-09 maybe 1 1 0 0 9 9 a|b\n"), {}, SKIP, "malformed lines.txt row", "field 2 is 'maybe'", 9, 1),
    ("iam-bad-number", "iam", lambda r: append(r / "ascii/lines.txt", "p01-000-09 ok 1 1 0 zero 9 9 a|b\n"), {}, SKIP, "malformed lines.txt row", "must be integers", 9, 1),
    ("iam-duplicate-id", "iam", lambda r: append(r / "ascii/lines.txt", "p01-000-00 ok 1 1 0 0 9 9 again\n"), {}, SKIP, "duplicate id", "p01-000-00 in", 9, 1),
    ("iam-malformed-forms-row", "iam", lambda r: append(r / "ascii/forms.txt", "lonely\n"), {}, SKIP, "malformed forms.txt row", "forms.txt:5", 9, 1),
    ("iam-no-lines-txt", "iam", lambda r: (r / "ascii/lines.txt").unlink(), {}, ERROR, "IAM lines.txt not found", "ascii/lines.txt", 0, 0),
    ("iam-no-split-file", "iam", lambda r: (r / "splits/aachen/test.uttlist").unlink(), {}, ERROR, "split file not found: expected test.uttlist or te.lst", "splits/aachen", 0, 0),
    ("iam-line-in-two-splits", "iam", lambda r: append(r / "splits/aachen/test.uttlist", "p01-000-00\n"), {}, ERROR, "cannot be in two splits", "test.uttlist", 0, 0),
    ("iam-empty-dataset", "iam", lambda r: [empty(r / "splits/aachen" / n) for n in ("train.uttlist", "validation.uttlist", "test.uttlist")], {}, ERROR, "no usable lines: kept 0, skipped 9: 9 × not in any split file", "iam", 0, 0),
    ("iam-wrong-counts", "iam", lambda r: None, {"check_counts": True}, ERROR, "train has 3 lines, published 6482", "check_counts=False", 0, 0),
    ("iam-official-wrong-counts", "iam", lambda r: None, {"check_counts": True, "split_scheme": "official"}, ERROR, "test has 3 lines, published 1861", "check_counts=False", 0, 0),
    ("iam-strict-missing-image", "iam", lambda r: iam_img(r).unlink(), {"strict": True}, ERROR, "image file not found", "p01-000-00.png", 0, 0),
    ("iam-strict-malformed-row", "iam", lambda r: append(r / "ascii/lines.txt", "p01-000-09 ok 154\n"), {"strict": True}, ERROR, "malformed lines.txt row", "lines.txt:15", 0, 0),

    ("rimes-missing-page", "rimes", lambda r: rimes_page(r).unlink(), {}, SKIP, "image file not found", "train2011-0.png", 6, 3),
    ("rimes-zero-byte-page", "rimes", lambda r: empty(rimes_page(r, "eval2011-0")), {}, SKIP, "image file is empty (0 bytes)", "eval2011-0.png", 6, 3),
    ("rimes-corrupt-page", "rimes", lambda r: junk(rimes_page(r)), {}, SKIP, "image unreadable", "train2011-0.png (not a readable image", 6, 3),
    ("rimes-truncated-page", "rimes", lambda r: truncate(rimes_page(r)), {"check_images": "full"}, SKIP, "image unreadable", "train2011-0.png (image data is truncated", 6, 3),
    ("rimes-empty-value", "rimes", lambda r: edit_first_rimes_line(r, Value="  "), {}, SKIP, "empty transcription", "page images_gray/train2011-0.png, Line 0", 8, 1),
    ("rimes-missing-attribute", "rimes", lambda r: edit_first_rimes_line(r, drop=("Left",)), {}, SKIP, "malformed Line element (needs Left, Top, Right, Bottom and Value)", "training_2011.xml: page images_gray/train2011-0.png, Line 0", 8, 1),
    ("rimes-non-numeric-box", "rimes", lambda r: edit_first_rimes_line(r, Top="top"), {}, SKIP, "malformed Line element (needs Left, Top, Right, Bottom and Value)", "Line 0", 8, 1),
    ("rimes-inverted-box", "rimes", lambda r: edit_first_rimes_line(r, Left="90", Right="30"), {}, SKIP, "empty or inverted box", "(90, 20, 30, 30)", 8, 1),
    ("rimes-box-outside-page", "rimes", lambda r: edit_first_rimes_line(r, Left="5000", Right="6000"), {}, SKIP, "box outside the page image", "(5000, 20, 6000, 30) on", 8, 1),
    ("rimes-duplicate-page", "rimes", duplicate_first_rimes_page, {}, SKIP, "duplicate id", "train2011-0-00 in", 9, 3),
    ("rimes-malformed-xml", "rimes", lambda r: (r / "eval_2011_annotated.xml").write_text((r / "eval_2011_annotated.xml").read_text()[:-40]), {}, ERROR, "malformed XML at line", "eval_2011_annotated.xml", 0, 0),
    ("rimes-missing-xml", "rimes", lambda r: (r / "training_2011.xml").unlink(), {}, ERROR, "RIMES XML file not found", "training_2011.xml", 0, 0),
    ("rimes-wrong-counts", "rimes", lambda r: None, {"check_counts": True}, ERROR, "test has 3 lines, published 778", "check_counts=False", 0, 0),
    ("rimes-strict-corrupt-page", "rimes", lambda r: junk(rimes_page(r)), {"strict": True}, ERROR, "not a readable image", "train2011-0.png", 0, 0),

    ("bentham-missing-image", "bentham", lambda r: bentham_img(r).unlink(), {}, SKIP, "image file not found", "p01-000-00.png", 8, 1),
    ("bentham-zero-byte-image", "bentham", lambda r: empty(bentham_img(r)), {}, SKIP, "image file is empty (0 bytes)", "p01-000-00.png", 8, 1),
    ("bentham-corrupt-image", "bentham", lambda r: junk(bentham_img(r)), {}, SKIP, "image unreadable", "p01-000-00.png (not a readable image", 8, 1),
    ("bentham-truncated-image", "bentham", lambda r: truncate(bentham_img(r)), {"check_images": "full"}, SKIP, "image unreadable", "p01-000-00.png (image data is truncated", 8, 1),
    ("bentham-non-utf8", "bentham", lambda r: bentham_txt(r).write_bytes(b"caf\xe9\n"), {}, SKIP, "transcription is not UTF-8", "p01-000-00.txt (not UTF-8 text (byte 3", 8, 1),
    ("bentham-empty-transcription", "bentham", lambda r: bentham_txt(r).write_text("\n"), {}, SKIP, "empty transcription", "p01-000-00.txt", 8, 1),
    ("bentham-gap-only", "bentham", lambda r: bentham_txt(r).write_text("<gap/>\n"), {}, SKIP, "empty transcription", "p01-000-00.txt", 8, 1),
    ("bentham-missing-transcription", "bentham", lambda r: bentham_txt(r).unlink(), {}, SKIP, "transcription file not found", "p01-000-00.txt", 8, 1),
    ("bentham-unknown-entry", "bentham", lambda r: append(r / "Partitions/TrainLines.lst", "no_such_line\n"), {}, SKIP, "partition entry names no line (no image, no transcription)", "TrainLines.lst:4 (no_such_line)", 9, 1),
    ("bentham-duplicate-entry", "bentham", lambda r: append(r / "Partitions/TrainLines.lst", "p01-000-00\n"), {}, SKIP, "duplicate id", "TrainLines.lst:4", 9, 1),
    ("bentham-in-two-partitions", "bentham", lambda r: append(r / "Partitions/TestLines.lst", "p01-000-00\n"), {}, ERROR, "cannot be in two partitions", "TestLines.lst", 0, 0),
    ("bentham-no-partitions", "bentham", lambda r: shutil.rmtree(r / "Partitions"), {}, ERROR, "Bentham folder not found", "Partitions", 0, 0),
    ("bentham-empty-dataset", "bentham", lambda r: [empty(r / "Partitions" / n) for n in ("TrainLines.lst", "ValidationLines.lst", "TestLines.lst")], {}, ERROR, "no usable lines", "9 × not in any partition file", 0, 0),
    ("bentham-wrong-counts", "bentham", lambda r: None, {"check_counts": True}, ERROR, "test has 3 lines, published 860", "check_counts=False", 0, 0),
    ("bentham-strict-non-utf8", "bentham", lambda r: bentham_txt(r).write_bytes(b"caf\xe9\n"), {"strict": True}, ERROR, "transcription is not UTF-8", "p01-000-00.txt", 0, 0),

    ("folder-image-without-gt", "folder", lambda r: folder_gt(r).unlink(), {}, SKIP, "image without .gt.txt", "p01-000-00.png", 8, 1),
    ("folder-gt-without-image", "folder", lambda r: folder_img(r).unlink(), {}, SKIP, ".gt.txt without image", "p01-000-00.gt.txt", 8, 1),
    ("folder-zero-byte-image", "folder", lambda r: empty(folder_img(r)), {}, SKIP, "image file is empty (0 bytes)", "p01-000-00.png", 8, 1),
    ("folder-corrupt-image", "folder", lambda r: junk(folder_img(r)), {}, SKIP, "image unreadable", "p01-000-00.png (not a readable image", 8, 1),
    ("folder-truncated-image", "folder", lambda r: truncate(folder_img(r)), {"check_images": "full"}, SKIP, "image unreadable", "p01-000-00.png (image data is truncated", 8, 1),
    ("folder-non-utf8", "folder", lambda r: folder_gt(r).write_bytes(b"\xff\xfetext"), {}, SKIP, "transcription is not UTF-8", "p01-000-00.gt.txt (not UTF-8 text (byte 0", 8, 1),
    ("folder-empty-transcription", "folder", lambda r: folder_gt(r).write_text(" \n"), {}, SKIP, "empty transcription", "p01-000-00.gt.txt", 8, 1),
    ("folder-duplicate-id", "folder", copy_to_test, {}, SKIP, "duplicate id", "p01-000-00 in", 9, 1),
    ("folder-several-images", "folder", lambda r: shutil.copy(folder_img(r), r / "train/p01-000-00.jpg"), {}, SKIP, "several images for one .gt.txt", "p01-000-00.gt.txt (p01-000-00.jpg, p01-000-00.png)", 8, 1),
    ("folder-outside-split-folders", "folder", lambda r: shutil.copy(folder_gt(r), r / "stray.gt.txt"), {}, SKIP, "outside the train/val/test folders", "stray.gt.txt", 9, 1),
    ("folder-empty-dataset", "folder", only_images, {}, ERROR, "no usable lines: kept 0, skipped 9: 9 × image without .gt.txt", "p01-", 0, 0),
    ("folder-nothing-at-all", "folder", lambda r: shutil.rmtree(r) or r.mkdir(), {}, ERROR, "no usable lines: kept 0, skipped 0", "f", 0, 0),
    ("folder-missing", "folder", lambda r: shutil.rmtree(r), {}, ERROR, "folder not found", "f", 0, 0),
    ("folder-strict-empty-transcription", "folder", lambda r: folder_gt(r).write_text("\n"), {"strict": True}, ERROR, "empty transcription", "p01-000-00.gt.txt", 0, 0),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input(tmp_path, case):
    name, kind, mutate, options, outcome, text, where, n_kept, n_skipped = case
    root = build(kind, tmp_path / ("f" if kind == "folder" else kind))
    mutate(root)
    if outcome == ERROR:
        with pytest.raises(DataError) as e: read(kind, root, **options)
        msg = str(e.value)
        assert text in msg and where in msg, msg
        return
    lines, rep = read(kind, root, **options)
    assert rep.skipped[text] == n_skipped, str(rep)
    assert any(where in ex for ex in rep.examples[text]), str(rep)
    assert text in str(rep) and where in str(rep)
    assert len(lines) == rep.kept == n_kept, str(rep)
