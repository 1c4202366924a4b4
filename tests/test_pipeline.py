"""End to end through the data layer: synthetic lines → disk layout → reader → dataset → batches."""
from pathlib import Path
import numpy as np
import pytest
import torch
from jand.charset import Charset
from jand.cli import write_synth
from jand.loading import LineDataset, load_line, make_loader
from jand.preprocess import AugmentConfig, PreprocessConfig, prepare
from jand.readers import read_corpus
from jand.synth import SPLITS, SynthConfig, SynthCorpus

CFG = SynthConfig(seed=5, n_train=12, n_val=4, n_test=4)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return {fmt: write_synth(root / fmt, CFG, fmt, workers=1) for fmt in ("folder", "iam", "bentham", "rimes")}


@pytest.mark.parametrize("fmt", ["folder", "iam", "bentham"])
def test_disk_images_are_the_generated_pixels(written, fmt):
    opts = {} if fmt == "folder" else {"check_counts": False}
    lines, report = read_corpus(fmt, written[fmt], **opts)
    assert report.n_skipped == 0 and len(lines) == 20
    corpus = SynthCorpus(CFG)
    truth = {l.id: l for s in SPLITS for l in corpus.lines(s)}
    for line in lines[:6]:
        assert line.text == truth[line.id].text and line.split == truth[line.id].split
        assert np.array_equal(load_line(line), corpus.load(truth[line.id]))  # PNG is lossless


def test_rimes_pages_give_back_every_line_box(written):
    lines, report = read_corpus("rimes", written["rimes"], check_counts=False)
    assert report.n_skipped == 0 and len(lines) == 20
    corpus = SynthCorpus(CFG)
    texts = sorted(l.text for s in SPLITS for l in corpus.lines(s))
    assert sorted(l.text for l in lines) == texts
    img = load_line(lines[0])
    assert img.ndim == 2 and img.shape[0] >= 32  # cropped line, not the whole page


def test_training_and_inference_share_one_preprocessing_path(written):
    lines, _ = read_corpus("folder", written["folder"])
    cs = Charset.from_texts(l.text for l in lines)
    train_view = LineDataset(lines, cs, aug=AugmentConfig(p=0.0))
    for i in range(3):
        assert torch.equal(train_view[i]["image"], prepare(load_line(train_view.lines[i]), PreprocessConfig()))


def test_batches_from_disk_cover_every_line_once(written):
    lines, _ = read_corpus("iam", written["iam"], check_counts=False)
    cs = Charset.from_texts(l.text for l in lines)
    ds = LineDataset(lines, cs, aug=AugmentConfig())
    seen = [i for b in make_loader(ds, batch_size=6, workers=0) for i in b["ids"]]
    assert sorted(seen) == sorted(l.id for l in lines)
