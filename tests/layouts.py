"""Corpora laid out as users download them, written from the published format descriptions (FORMATS.md, PAPER.md §4)
and not by jand's own `write_*` functions: IAM with only the official task files or only OpenSLR's splits, Teklia-style
parquet, RIMES line images, Transkribus-style PAGE 2013, PAGE 2019, ALTO v4 without `SP`, and a folder whose file
names repeat across splits.

Every writer takes `samples`, `(Line, uint8 image)` pairs (ids `form-NN` such as `p01-000-00`, splits set), and
a root folder, and returns the root.
"""
from __future__ import annotations
import io
from collections import defaultdict
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}


def encode(a: np.ndarray, fmt: str = "PNG", rgb: bool = False) -> bytes:
    im = Image.fromarray(a).convert("RGB") if rgb else Image.fromarray(a)
    buf = io.BytesIO(); im.save(buf, format=fmt)
    return buf.getvalue()


def put(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# ---------------------------------------------------------------- IAM as distributed -----------------------------
def iam_lines(samples, root: Path, lines_txt_at_root: bool = False) -> Path:
    "FKI's lines.tgz + ascii.tgz: `lines/a01/a01-000u/a01-000u-00.png`, `ascii/lines.txt` (9 fields, words joined by |)."
    rows = ["#--- lines.txt ---------------------------------------------------------------#",
            "# format: a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from", "#"]
    for line, a in samples:
        form = line.id.rsplit("-", 1)[0]
        put(root / "lines" / form.split("-")[0] / form / f"{line.id}.png", encode(a))
        words = line.text.replace("&", "&amp;").split()
        rows.append(f"{line.id} ok 154 {len(words)} 408 746 {a.shape[1]} {a.shape[0]} {'|'.join(words)}")
    put(root / ("lines.txt" if lines_txt_at_root else "ascii/lines.txt"), "\n".join(rows) + "\n")
    return root


def iam_official(samples, root: Path, val2: list = ()) -> Path:
    "IAM with only the official task's split files (line ids): trainset, validationset1/2, testset."
    iam_lines(samples, root)
    task = root / "largeWriterIndependentTextLineRecognitionTask"
    by = defaultdict(list)
    for line, _ in samples: by[line.split].append(line.id)
    put(task / "trainset.txt", "".join(i + "\n" for i in by["train"]))
    put(task / "validationset1.txt", "".join(i + "\n" for i in by["val"] if i not in val2))
    put(task / "validationset2.txt", "".join(i + "\n" for i in val2))
    put(task / "testset.txt", "".join(i + "\n" for i in by["test"]))
    put(task / "LargeWriterIndependentTextLineRecognitionTask.txt", "Large Writer Independent Line Recognition Task\n")
    return root


def iam_openslr(samples, root: Path) -> Path:
    "IAM with OpenSLR 56's splits.zip unpacked: `splits/{train,validation,test}.uttlist`, form ids."
    iam_lines(samples, root)
    forms = defaultdict(dict)
    for line, _ in samples: forms[line.split][line.id.rsplit("-", 1)[0]] = None
    for split, name in SPLIT_NAMES.items():
        put(root / "splits" / f"{name}.uttlist", "".join(f + "\n" for f in forms[split]))
    return root


# ---------------------------------------------------------------- Hugging Face parquet ---------------------------
def parquet_lines(samples, root: Path, layout: str = "data", jpeg: bool = False) -> Path:
    "Teklia-style line sets: `image` struct {bytes, path: null} and `text`; layouts `data`, `shards`, `default`."
    import pyarrow as pa, pyarrow.parquet as pq
    by = defaultdict(list)
    for line, a in samples: by[line.split].append((line, a))
    for split, rows in by.items():
        name = SPLIT_NAMES[split]
        rel = {"data": f"data/{name}.parquet", "shards": f"data/{name}-00000-of-00001-5f3c2b1a.parquet",
               "default": f"default/{name}/0000.parquet"}[layout]
        images = [{"bytes": encode(a, "JPEG" if jpeg else "PNG", rgb=jpeg), "path": None} for _, a in rows]
        table = pa.table({"image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                          "text": [l.text for l, _ in rows]})
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / rel, row_group_size=2)
    return root


# ---------------------------------------------------------------- RIMES line images ------------------------------
def rimes_lines(samples, root: Path) -> Path:
    "Teklia's RIMES-2011-Lines.zip unpacked: `Images/*.jpg`, `Transcriptions/*.txt`, `Sets/*Lines.txt`."
    sets = defaultdict(list)
    for k, (line, a) in enumerate(samples):
        lid = f"{'eval' if line.split == 'test' else 'train'}2011-{k // 3}-{k % 3:02d}"
        put(root / "Images" / f"{lid}.jpg", encode(a, "JPEG"))
        put(root / "Transcriptions" / f"{lid}.txt", line.text + "\n")
        sets[line.split].append(lid)
    for split, name in (("train", "TrainLines"), ("val", "ValidationLines"), ("test", "TestLines")):
        put(root / "Sets" / f"{name}.txt", "".join(i + "\n" for i in sets[split]))
    return root


# ---------------------------------------------------------------- pages: PAGE-XML and ALTO ------------------------
def compose(entries, margin: int = 6, gap: int = 4):
    "One page image from line arrays stacked vertically; returns `(page, boxes)` with `(l, t, r, b)` per line."
    w = max(a.shape[1] for a in entries) + 2 * margin
    h = sum(a.shape[0] for a in entries) + gap * (len(entries) - 1) + 2 * margin
    page, y, boxes = np.full((h, w), 255, np.uint8), margin, []
    for a in entries:
        page[y:y + a.shape[0], margin:margin + a.shape[1]] = a
        boxes.append((margin, y, margin + a.shape[1], y + a.shape[0])); y += a.shape[0] + gap
    return page, boxes


def _pages(samples, per_page: int):
    by = defaultdict(list)
    for line, a in samples: by[line.split].append((line, a))
    for split, rows in by.items():
        for p in range(0, len(rows), per_page): yield split, p // per_page, rows[p:p + per_page]


def _rect(box) -> str:
    l, t, r, b = box
    return f"{l},{t} {r - 1},{t} {r - 1},{b - 1} {l},{b - 1}"


PAGE_NS = {"2013": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15",
           "2019": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"}


def _page_line(k: int, box, text: str, words: bool = False, coords: bool = True) -> str:
    """One PAGE TextLine: Coords (unless not `coords`: baseline-only ground truth), Baseline, and its text as its own
    TextEquiv or (`words`) as Word elements only."""
    l, t, r, b = box
    equiv = lambda s: f"<TextEquiv><Unicode>{escape(s)}</Unicode></TextEquiv>"
    body = ("".join(f'<Word id="w{k}_{j}"><Coords points="{_rect(box)}"/>{equiv(w)}</Word>' for j, w in enumerate(text.split()))
            if words else equiv(text))
    outline = f'<Coords points="{_rect(box)}"/>' if coords else ""
    return (f'\n   <TextLine id="line_{k + 1}" custom="readingOrder {{index:{k};}}">{outline}'
            f'<Baseline points="{l},{b - 2} {r - 1},{b - 2}"/>{body}</TextLine>')


def _region(tag: str, id: str, w: int, h: int, inside: str, custom: str = "") -> str:
    return f'\n  <{tag} id="{id}"{custom}><Coords points="0,0 {w},0 {w},{h} 0,{h}"/>{inside}</{tag}>'


EMPTY_LINE = '\n   <TextLine id="line_{n}"><Coords points="0,0 3,0 3,3 0,3"/><TextEquiv><Unicode/></TextEquiv></TextLine>'
ORDER = '<ReadingOrder><OrderedGroup id="ro1"><RegionRefIndexed index="0" regionRef="r1"/></OrderedGroup></ReadingOrder>'


def page_xml(samples, root: Path, version: str = "2013", per_page: int = 3, empty_line: bool = False,
             words: bool = False, coords: bool = True, scale: int = 1) -> Path:
    """PAGE pages in `train/ val/ test/`: Transkribus style for 2013 (lines nested in TextRegion, TableRegion,
    `custom` reading order; with `empty_line`, one extra line with an empty `<Unicode/>` per page); plain for 2019.
    Without `coords`, lines have a Baseline only; with `scale`, the XML describes a scan `scale` times the size of
    the image shipped beside it (coordinates and imageWidth/imageHeight scaled)."""
    for split, p, rows in _pages(samples, per_page):
        page, boxes = compose([a for _, a in rows])
        name, (h, w) = f"page_{p + 1:04d}", page.shape
        put(root / split / f"{name}.png", encode(page))
        boxes, h, w = [tuple(v * scale for v in box) for box in boxes], h * scale, w * scale
        lines = [_page_line(k, box, l.text, words, coords) for k, ((l, _), box) in enumerate(zip(rows, boxes))]
        if empty_line: lines.append(EMPTY_LINE.format(n=len(rows) + 1))
        if version == "2013":  # line 1 in the outer region, line 2 in an inner TextRegion, the rest in a table's cell
            table = _region("TableRegion", "t1", w, h, _region("TextRegion", "c1", w, h, "".join(lines[2:])))
            inner = _region("TextRegion", "r1a", w, h, "".join(lines[1:2]))
            regions = _region("TextRegion", "r1", w, h, lines[0] + inner + table, ' custom="readingOrder {index:0;}"')
            meta, order = "<Metadata><Creator>Transkribus</Creator><Created>2026-01-01T00:00:00</Created></Metadata>", ORDER
        else:
            regions = _region("TextRegion", "r1", w, h, "".join(lines))
            meta, order = "<Metadata><Creator>eScriptorium</Creator></Metadata>", ""
        put(root / split / f"{name}.xml", f'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="{PAGE_NS[version]}">'
            f'{meta}\n <Page imageFilename="{name}.png" imageWidth="{w}" imageHeight="{h}">{order}{regions}</Page></PcGts>\n')
    return root


ALTO_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">\n'
             "<Description><MeasurementUnit>{unit}</MeasurementUnit>\n"
             "<sourceImageInformation><fileName>{name}.png</fileName></sourceImageInformation></Description>\n")


def alto_xml(samples, root: Path, per_page: int = 3, unit: str = "pixel") -> Path:
    "ALTO v4 pages in `train/ val/ test/`, kraken style but without `SP` elements: strings joined by one space."
    for split, p, rows in _pages(samples, per_page):
        page, boxes = compose([a for _, a in rows])
        name, (h, w) = f"page_{p + 1:04d}", page.shape
        put(root / split / f"{name}.png", encode(page))
        lines = []
        for k, ((l, _), (x0, y0, x1, y1)) in enumerate(zip(rows, boxes)):
            strings = "".join(f"<String CONTENT={quoteattr(s)}/>" for s in l.text.split())
            shape = f'<Shape><Polygon POINTS="{_rect((x0, y0, x1, y1))}"/></Shape>'
            lines.append(f'\n  <TextLine ID="line_{k + 1}" HPOS="{x0}" VPOS="{y0}" WIDTH="{x1 - x0}" HEIGHT="{y1 - y0}" '
                         f'BASELINE="{y1 - 2}">{shape}{strings}</TextLine>')
        layout = (f'<Layout><Page ID="p1" WIDTH="{w}" HEIGHT="{h}" PHYSICAL_IMG_NR="1"><PrintSpace>'
                  f'<TextBlock ID="b1">{"".join(lines)}</TextBlock></PrintSpace></Page></Layout></alto>\n')
        put(root / split / f"{name}.xml", ALTO_HEAD.format(unit=unit, name=name) + layout)
    return root


# ---------------------------------------------------------------- folder with names repeated across splits -------
def folder_repeated(samples, root: Path) -> Path:
    "A kraken-style folder where every split numbers its lines from 0001 (`train/0001.png`, `val/0001.png`, …)."
    counts = defaultdict(int)
    for line, a in samples:
        counts[line.split] += 1
        base = root / line.split / f"{counts[line.split]:04d}"
        put(base.with_suffix(".png"), encode(a))
        put(base.with_name(base.name + ".gt.txt"), line.text + "\n")
    return root


LAYOUTS = {  # name → (source kind, writer)
    "iam-official": ("iam", iam_official), "iam-openslr": ("iam", iam_openslr),
    "parquet": ("parquet", parquet_lines), "rimes-lines": ("rimes", rimes_lines),
    "page-2013": ("page", lambda s, r: page_xml(s, r, "2013", empty_line=True)),
    "page-2019": ("page", lambda s, r: page_xml(s, r, "2019", words=True)),
    "page-baseline": ("page", lambda s, r: page_xml(s, r, "2019", coords=False)),
    "page-resized": ("page", lambda s, r: page_xml(s, r, "2019", scale=2)),
    "alto-v4": ("alto", alto_xml), "folder-repeated": ("folder", folder_repeated),
}
