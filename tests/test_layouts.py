"""Issue 14: real corpora as users have them. Each layout of `layouts.py` (written from the published format
descriptions, not by jand's writers) goes through the command line as a user would run it:
`jand check-data` → `jand train` (tiny) → `jand eval` → `jand predict`, and its read report is checked."""
from __future__ import annotations
import contextlib, io, json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jand.cli import main
from jand.core import Line
from jand.images import load_image
from jand.sources import open_data
import layouts

TEXTS = ["A MOVE to stop", "from nominating", "Labour life Peers", "cafe naive a lete", "Tom and Jerry",
         "is to be made", "a meeting of", "M Ps tomorrow", "xyz abc"]
SPLITS = {0: "train", 1: "val", 2: "test"}


def fake_image(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    a = np.full((14 + i % 3, 40 + 4 * i), 255, np.uint8)
    a[3:-3, 2:-2] = rng.integers(0, 200, (a.shape[0] - 6, a.shape[1] - 4), dtype=np.uint8)
    return a


def samples():
    return [(Line(f"p01-00{i // 3}-{i % 3:02d}", TEXTS[i], "", SPLITS[i // 3]), fake_image(i)) for i in range(9)]


# layout → (spec options, kept, skipped by reason, changed by reason, counts scheme or None, text in the report's source)
EXPECTED = {
    "iam-official": ("?check_counts=false", 9, {}, {}, ("iam", "official"), "official split"),
    "iam-openslr": ("?split=auto&check_counts=false", 9, {}, {}, ("iam", "aachen"), "aachen split, files in"),
    "parquet": ("", 9, {}, {}, None, "(parquet)"),
    "rimes-lines": ("?check_counts=false", 9, {}, {}, ("rimes", "2011-lines"), "line images"),
    "page-2013": ("", 9, {"empty transcription": 3}, {}, None, "page:"),
    "page-2019": ("?crop=box", 9, {}, {}, None, "page:"),
    "page-baseline": ("", 9, {}, {"polygon made around its Baseline (the line has no Coords)": 9}, None, "page:"),
    "page-resized": ("", 9, {}, {"coordinates scaled from the size the XML declares to the image's": 9}, None, "page:"),
    "alto-v4": ("", 9, {}, {}, None, "alto:"),
    "folder-repeated": ("", 9, {}, {"id includes its split folder (the name repeats in another split)": 9}, None, "folder:"),
}


def cli(*argv) -> tuple:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def spec_of(name: str, root: Path) -> str:
    kind, _ = layouts.LAYOUTS[name]
    return f"{kind}:{root}{EXPECTED[name][0]}"


@pytest.mark.parametrize("name", list(EXPECTED))  # all 8 chains take about 30 s on 2 busy CPU cores
def test_layout_from_check_data_to_predict(tmp_path, name):
    kind, write = layouts.LAYOUTS[name]
    _, kept, skipped, changed, scheme, source = EXPECTED[name]
    spec = spec_of(name, write(samples(), tmp_path / "corpus"))
    # the read report
    bundle = open_data(spec)
    rep = bundle.reports[bundle.specs[0].name]
    assert rep.kept == kept and dict(rep.skipped) == skipped and dict(rep.changed) == changed, str(rep)
    assert getattr(rep, "counts_key", None) == scheme and source in rep.source, rep.source
    assert Counter(l.split for sp in ("train", "val", "test") for l in bundle.lines(sp)) == {"train": 3, "val": 3, "test": 3}
    assert sorted(l.text for sp in ("train", "val", "test") for l in bundle.lines(sp)) == sorted(TEXTS)
    for l in bundle.lines("test"): assert bundle.load(l).shape[0] >= 8  # every line loads
    # check-data → train → eval → predict, as a user runs them
    rc, out, err = cli("check-data", spec, "--json")
    assert rc == 0, out + err
    res = json.loads(out)
    assert res["readable"] and sum(r["lines"] for r in next(iter(res["sources"].values()))["splits"].values()) == 9
    run = tmp_path / "run"
    rc, out, err = cli("train", "--out", run, "--data", spec, "--model", "student", "--height", "32", "--epochs", "1",
                       "--max-minutes", "0.2", "--batch-size", "4", "--no-augment", "--no-progress-bar")
    assert rc == 0 and (run / "model.pt").exists(), err[-2000:]
    rc, out, err = cli("eval", "--model", run / "model.pt", "--data", spec, "--split", "test", "--out", tmp_path / "lines.csv")
    assert rc == 0 and "CER" in out, err[-2000:]
    assert len((tmp_path / "lines.csv").read_text().splitlines()) == 1 + 3
    images = tmp_path / "images"; images.mkdir()
    for k, l in enumerate(bundle.lines("test")): Image.fromarray(bundle.load(l)).save(images / f"{k}.png")
    rc, out, err = cli("predict", "--model", run / "model.pt", images, "--format", "json")
    assert rc == 0 and len(json.loads(out)) == 3, err


def test_check_data_and_predict_report_problems(tmp_path):
    root = layouts.folder_repeated(samples(), tmp_path / "f")
    rc, out, err = cli("check-data", f"folder:{root}")
    assert rc == 0 and "readable: yes" in out and "test/0001" in out  # the changed ids are shown with an example
    for p in (root / "val").glob("*"): p.unlink()
    rc, out, err = cli("check-data", f"folder:{root}")
    assert rc == 1 and "val: the dataset is empty (folder has no val lines (train 3, test 3)" in out
    rc, out, err = cli("check-data", f"iam:{tmp_path}")
    assert rc == 1 and "lines.txt not found" in out


# ---------------------------------------------------------------- IAM and RIMES detection, reader level ----------
def test_iam_split_layouts_detected_and_chosen(tmp_path):
    from jand.readers import read_iam, read_rimes
    root = layouts.iam_official(samples(), tmp_path / "IAM", val2=["p01-001-02"])
    lines, rep = read_iam(root, check_counts=False)
    assert rep.counts_key == ("iam", "official") and "largeWriterIndependentTextLineRecognitionTask" in rep.source
    assert Counter(l.split for l in lines) == {"train": 3, "val": 3, "test": 3} and rep.counted["val"] == 2  # validationset2 not counted
    layouts.iam_openslr(samples(), root)  # both layouts present: the Aachen lists are preferred, the official split on request
    assert read_iam(root, check_counts=False)[1].counts_key == ("iam", "aachen")
    assert read_iam(root, split="official", check_counts=False)[1].counts_key == ("iam", "official")
    top = layouts.iam_openslr(samples(), tmp_path / "IAM2")
    (top / "ascii" / "lines.txt").rename(top / "lines.txt")  # ascii.tgz unpacked at the root
    assert len(read_iam(top, check_counts=False)[0]) == 9


def test_iam_and_rimes_roots_holding_only_parquet(tmp_path):
    from jand.readers import read_iam, read_rimes
    lines, rep = read_iam(layouts.parquet_lines(samples(), tmp_path / "IAM-line", jpeg=True), check_counts=False)
    assert (rep.kept, rep.counts_key, {l.source for l in lines}) == (9, ("iam", "aachen"), {"iam"})
    with pytest.raises(Exception, match="train has 3 lines, published 6482"): read_iam(tmp_path / "IAM-line")
    lines, rep = read_rimes(layouts.parquet_lines(samples(), tmp_path / "RIMES-line", layout="shards"), check_counts=False)
    assert (rep.kept, rep.counts_key) == (9, ("rimes", "2011-lines"))
    from jand.formats import read_parquet
    lines, rep = read_parquet(layouts.parquet_lines(samples(), tmp_path / "auto", layout="default"))  # the Hub's copies
    assert Counter(l.split for l in lines) == {"train": 3, "val": 3, "test": 3} and lines[0].id == "default/test/0000-000000"
    lines, rep = read_rimes(layouts.rimes_lines(samples(), tmp_path / "RIMES"), check_counts=False)
    assert lines[0].id == "train2011-0-00" and load_image(lines[0].image).shape == samples()[0][1].shape


def test_reproduce_full_checks_real_corpora_before_training(tmp_path):
    (tmp_path / "data" / "IAM").mkdir(parents=True)  # an IAM folder without lines.txt
    rc, out, err = cli("reproduce", "--profile", "full", "--data-root", tmp_path / "data", "--out", tmp_path / "runs")
    assert rc == 2 and "unreadable corpus, so no training was started" in err and "lines.txt not found" in err, err
    assert not (tmp_path / "runs").exists()


def test_train_help_names_the_spec_options(capsys):
    with pytest.raises(SystemExit): main(["train", "--help"])
    out = capsys.readouterr().out
    assert "iam:/data/IAM?split=official" in out and "  iam: split_scheme=auto" in out and "  page: flat_split=train" in out
