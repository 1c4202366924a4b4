"""The data spec (`KIND[:ARG][@WEIGHT]` joined by `+`), the DataBundle it opens, and weighted width-bucketed sampling.

Small corpora are written in the IAM and folder layouts from synthetic lines (`jand.readers.write_iam` /
`write_folder`), once per test session; synthetic sources use a tiny `SynthConfig` at height 32.
"""
from __future__ import annotations
import pickle, shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from jand.core import DataError, Line
from jand.charset import Charset
from jand.images import load_image
from jand.loading import BucketBatchSampler
from jand.readers import write_iam
from jand.reading import SPLITS
from jand.formats import write_folder
from jand.synth import SynthConfig, SynthCorpus, render_line
from jand.sources import (DataBundle, LineLoader, SourceSpec, WeightedBucketBatchSampler, format_data_spec,
                          open_data, parse_data_spec, synth_config)

CFG = SynthConfig(seed=0, n_train=12, n_val=3, n_test=3, writers=(6, 2, 2), height=32)
IAM_OPTS = {"iam": {"check_counts": False}}


def small_samples(seed: int, domain: str = "fr"):
    c = SynthCorpus(SynthConfig(seed=seed, n_train=5, n_val=2, n_test=2, writers=(2, 1, 1), height=32,
                                domains=(domain,), weights=(1.0,)))
    return [s for sp in SPLITS for s in c.samples(sp, workers=1)]


@pytest.fixture(scope="session")
def corpora(tmp_path_factory):
    d = tmp_path_factory.mktemp("sources")
    iam, folder = small_samples(41), small_samples(42, "hist")
    return {"dir": d, "iam": write_iam(iam, d / "IAM"), "folder": write_folder(folder, d / "lines"),
            "iam_samples": iam, "folder_samples": folder}


@pytest.fixture(scope="session")
def bundle(corpora):
    return open_data(f"iam:{corpora['iam']}@0.5+folder:{corpora['folder']}@0.2+synth@0.3", synth=CFG, reader_options=IAM_OPTS)


# ------------------------------------------------------------------------------------------------ parsing -----
@pytest.mark.parametrize("spec, expected", [
    ("synth", [("synth", "", 1.0, "synth")]),
    ("synth:en", [("synth", "en", 1.0, "synth-en")]),
    ("synth:fr", [("synth", "fr", 1.0, "synth-fr")]),
    ("synth:hist", [("synth", "hist", 1.0, "synth-hist")]),
    ("synth:en,fr", [("synth", "en,fr", 1.0, "synth-en-fr")]),
    ("synth:hist, en@2", [("synth", "en,hist", 2.0, "synth-en-hist")]),
    ("iam:/data/IAM@0.7+synth@0.3", [("iam", "/data/IAM", 0.7, "iam"), ("synth", "", 0.3, "synth")]),
    ("synth:en+synth:fr+synth:hist", [("synth", d, 1.0, f"synth-{d}") for d in ("en", "fr", "hist")]),
    ("rimes:/d/RIMES + bentham:/d/B@.5", [("rimes", "/d/RIMES", 1.0, "rimes"), ("bentham", "/d/B", 0.5, "bentham")]),
    ("folder:/a+folder:/b@3+iam:/i", [("folder", "/a", 1.0, "folder-1"), ("folder", "/b", 3.0, "folder-2"), ("iam", "/i", 1.0, "iam")]),
    ("folder:/srv/me@home", [("folder", "/srv/me@home", 1.0, "folder")]),
    ("folder:/srv/me@home@1e1", [("folder", "/srv/me@home", 10.0, "folder")]),
    ("folder:/data/v@2@1", [("folder", "/data/v@2", 1.0, "folder")]),
    ("folder:/data/v@2", [("folder", "/data/v", 2.0, "folder")]),
    ("folder:/data/x/", [("folder", "/data/x", 1.0, "folder")]),
])
def test_parse_examples(spec, expected):
    got = parse_data_spec(spec, check_paths=False)
    assert [(s.kind, s.arg, s.weight, s.name) for s in got] == expected
    assert parse_data_spec(format_data_spec(got), check_paths=False) == got  # canonical text round trip


def test_a_list_of_sources_lets_paths_hold_a_plus():
    got = parse_data_spec(["folder:/data/a+b@0.5", " synth "], check_paths=False)
    assert [(s.arg, s.weight, s.name) for s in got] == [("/data/a+b", 0.5, "folder"), ("", 1.0, "synth")]


def test_home_is_expanded_and_existing_paths_pass(corpora):
    assert parse_data_spec("folder:~/x", check_paths=False)[0].arg == str(Path("~/x").expanduser())
    assert parse_data_spec(f"iam:{corpora['iam']}")[0].arg == str(corpora["iam"])


BAD = [  # (spec, text the message must contain — always the spec part and the problem)
    ("", "empty data spec"), ("   ", "empty data spec"), ("+", "empty data spec"), ([], "empty data spec"),
    ("synth+", "source 2 is empty"), ("+synth", "source 1 is empty"), ("synth++iam:/x", "source 2 is empty"),
    ("latin", "part 'latin': unknown source kind 'latin'"), ("latin:/x@0.5", "unknown source kind 'latin'"),
    ("IAM:/x", "unknown source kind 'IAM'"), (":/x", "unknown source kind ''"),
    ("iam", "part 'iam': missing path"), ("iam:", "missing path"), ("iam:  @0.5", "missing path"), ("rimes@0.5", "missing path"),
    ("iam:/no/such/IAM", "path '/no/such/IAM' does not exist"), ("bentham:/no/such@2", "part 'bentham:/no/such@2': path '/no/such' does not exist"),
    ("synth@0", "bad weight '0'"), ("synth@-1", "bad weight '-1'"), ("synth@x", "bad weight 'x'"), ("synth@", "bad weight ''"),
    ("synth@nan", "bad weight 'nan'"), ("synth@inf", "bad weight 'inf'"), ("synth:en@1.2.3", "bad weight '1.2.3'"),
    ("iam:/x@0", "part 'iam:/x@0': bad weight '0'"), ("iam:/x@-2.5", "bad weight"), ("folder:/x@1e-400", "bad weight"),
    ("synth:", "empty domain name"), ("synth:en,", "empty domain name"), ("synth:de", "unknown synthetic domain(s) 'de'"),
    ("synth:en,EN", "unknown synthetic domain(s) 'EN'"), ("synth:en,en", "domain(s) en named twice"),
    ("synth+synth", "part 'synth': duplicate source"), ("synth@1+synth@2", "duplicate source: it names the same source as 'synth@1'"),
    ("synth:en,fr+synth:fr,en", "duplicate source"), (["synth", 3], "sources must be strings"),
]


@pytest.mark.parametrize("spec, problem", BAD)
def test_bad_specs_name_the_part_and_the_problem(spec, problem):
    with pytest.raises(DataError, match=None) as e:
        parse_data_spec(spec)
    assert isinstance(e.value, ValueError)
    assert problem in str(e.value), str(e.value)


def test_bad_paths_and_duplicate_paths(corpora, tmp_path):
    f = tmp_path / "file.txt"; f.write_text("x")
    with pytest.raises(DataError, match="is not a folder"): parse_data_spec(f"folder:{f}")
    root = corpora["folder"]
    for other in (f"{root}/", f"{root}/../{root.name}"):
        with pytest.raises(DataError, match="duplicate source"): parse_data_spec(f"folder:{root}+folder:{other}")
    # the same folder under two kinds is two sources (read two ways)
    assert [s.name for s in parse_data_spec(f"folder:{root}+iam:{corpora['iam']}")] == ["folder", "iam"]


def test_source_spec_text():
    assert str(SourceSpec("synth", "", 0.25, "synth")) == "synth@0.25"
    assert str(SourceSpec("iam", "/x", 1 / 3, "iam")) == f"iam:/x@{1/3!r}"
    assert str(SourceSpec("folder", "/x@7", 1.0, "folder")) == "folder:/x@7@1"
    assert str(SourceSpec("folder", "/x@home", 1.0, "folder")) == "folder:/x@home"


# ------------------------------------------------------------------------------------------ synthetic configs --
def test_synth_configs_of_subsets():
    specs = parse_data_spec("synth+synth:en+synth:fr+synth:hist+synth:en,fr,hist")
    cfgs = [synth_config(s, CFG) for s in specs]
    assert cfgs[0] == CFG
    assert [c.seed for c in cfgs] == [0, 1, 2, 4, 7]
    assert [c.domains for c in cfgs[1:]] == [("en",), ("fr",), ("hist",), ("en", "fr", "hist")]
    assert cfgs[4].weights == CFG.weights
    # a domain the config does not list: the subset's domains are drawn equally
    only_en = replace(CFG, domains=("en",), weights=(1.0,))
    assert synth_config(parse_data_spec("synth:en,fr")[0], only_en).weights == (1.0, 1.0)
    with pytest.raises(DataError, match="weight 0"):
        synth_config(parse_data_spec("synth:hist")[0], replace(CFG, weights=(1.0, 1.0, 0.0)))
    with pytest.raises(ValueError, match="not a synthetic source"):
        synth_config(SourceSpec("iam", "/x", 1.0, "iam"), CFG)


def test_bare_synth_is_the_embedded_generator():
    b = open_data("synth", synth=CFG)
    for sp in SPLITS:
        assert b.lines(sp) == SynthCorpus(CFG).lines(sp)
    assert b.domains == ["synth-en", "synth-fr", "synth-hist"]


def test_two_synth_subsets_give_different_lines_and_names():
    b = open_data("synth:en+synth:fr", synth=CFG)
    assert b.domains == ["synth-en", "synth-fr"]
    for sp in SPLITS:
        by = {d: [l for l in b.lines(sp) if l.source == d] for d in b.domains}
        assert [len(v) for v in by.values()] == [CFG.size(sp)] * 2
        assert not {l.id for l in by["synth-en"]} & {l.id for l in by["synth-fr"]}
        assert not {l.text for l in by["synth-en"]} & {l.text for l in by["synth-fr"]}
    # a source draws the same lines wherever it stands in the spec
    assert open_data("synth:fr+synth:en", synth=CFG).lines("train")[:CFG.n_train] == b.lines("train")[CFG.n_train:]


def test_a_domain_made_by_two_synth_sources_is_numbered():
    b = open_data("synth+synth:en,hist@2", synth=CFG)
    assert b.domains == ["synth-en-1", "synth-fr", "synth-hist-1", "synth-en-2", "synth-hist-2"]
    lines = [l for sp in SPLITS for l in b.lines(sp)]
    assert {l.source for l in lines} <= set(b.domains)
    assert len({l.id for l in lines}) == len(lines)
    assert [b.source_of(l).name for l in lines[:3]] == ["synth"] * 3
    assert {b.source_of(l).name for l in b.lines("train")[CFG.n_train:]} == {"synth-en-hist"}
    # every line loads through its own source's corpus
    for l in (lines[0], lines[-1]):
        cfg = synth_config(b.source_of(l), CFG)
        split, i = l.image.removeprefix("synth:").split("/")
        assert np.array_equal(b.load(l), render_line(cfg, split, int(i))[1])


# ------------------------------------------------------------------------------------------------ the bundle --
def test_lines_per_split_and_sources(bundle, corpora):
    assert bundle.domains == ["iam", "folder", "synth-en", "synth-fr", "synth-hist"]
    expected = {sp: 2 * sum(l.split == sp for l, _ in corpora["iam_samples"]) + CFG.size(sp) for sp in SPLITS}
    assert {sp: len(bundle.lines(sp)) for sp in SPLITS} == expected == {"train": 22, "val": 7, "test": 7}
    for sp in SPLITS:
        lines = bundle.lines(sp)
        assert all(l.split == sp for l in lines)
        n = sum(l.split == sp for l, _ in corpora["iam_samples"])
        assert [l.source for l in lines[:2 * n]] == ["iam"] * n + ["folder"] * n  # spec order
        assert {l.source for l in lines} <= set(bundle.domains)
    ids = [l.id for sp in SPLITS for l in bundle.lines(sp)]
    assert len(ids) == len(set(ids))
    # corpus ids are kept when nothing clashes
    assert {l.id for l in bundle.lines("train") if l.source == "folder"} == {l.id for l, _ in corpora["folder_samples"] if l.split == "train"}
    desc = bundle.describe()
    assert desc["iam"] == {"source": "iam", "weight": 0.5, "train": 5, "val": 2, "test": 2}
    assert sum(r["train"] for d, r in desc.items() if r["source"] == "synth") == CFG.n_train
    with pytest.raises(ValueError, match="split must be one of"): bundle.lines("dev")
    lines = bundle.lines("train"); lines.clear()
    assert len(bundle.lines("train")) == 22  # callers get a copy


def test_summary_reports_and_repr(bundle):
    text = bundle.summary()
    assert text.splitlines()[0] == f"data: {bundle.spec}"
    for name in ("iam", "folder", "synth", "synth-en", "synth-hist"):
        assert name in text
    assert set(bundle.reports) == {"iam", "folder", "synth"}
    assert bundle.reports["iam"].kept == 9 and bundle.reports["synth"].kept == 18
    assert "DataBundle(" in repr(bundle)
    assert parse_data_spec(bundle.spec) == bundle.specs


def test_unified_charset_covers_every_source(bundle):
    cs = bundle.charset()
    assert isinstance(cs, Charset)
    texts = {d: "".join(l.text for sp in SPLITS for l in bundle.lines(sp) if l.source == d) for d in bundle.domains}
    for d, t in texts.items():
        assert t and not cs.unknown(t), d
    assert cs == Charset.from_texts(texts.values())
    assert bundle.charset() is cs  # cached
    assert set("".join(l.text for l in bundle.lines("train") if l.source == "iam")) <= set(cs.symbols)


def test_load_synth_and_disk_lines(bundle, corpora):
    images = {l.id: a for l, a in corpora["folder_samples"]}
    for sp in SPLITS:
        f = next(l for l in bundle.lines(sp) if l.source == "folder")
        assert np.array_equal(bundle.load(f), images[f.id])  # lossless PNG
        i = next(l for l in bundle.lines(sp) if l.source == "iam")
        assert np.array_equal(bundle.load(i), load_image(i.image))
        s = next(l for l in bundle.lines(sp) if l.source.startswith("synth"))
        split, k = s.image.removeprefix("synth:").split("/")
        assert np.array_equal(bundle.load(s), render_line(CFG, split, int(k))[1])
    foreign = replace(bundle.lines("train")[-1], source="synth-xx")
    with pytest.raises(DataError, match="not a synthetic source here"): bundle.load(foreign)


def test_the_loader_pickles_small_and_loads_the_same(bundle):
    blob = pickle.dumps(bundle.load)
    assert len(blob) < 5000
    loader = pickle.loads(blob)
    assert isinstance(loader, LineLoader)
    for l in (bundle.lines("val")[0], bundle.lines("val")[-1]):
        assert np.array_equal(loader(l), bundle.load(l))


def test_domain_index_is_stable(bundle, corpora):
    again = open_data(bundle.spec, synth=CFG, reader_options=IAM_OPTS)
    for sp in SPLITS:
        for l in bundle.lines(sp):
            k = bundle.domain_index(l)
            assert bundle.domains[k] == l.source and again.domain_index(l) == k
    # the labels follow the spec, not the lines: a synthetic domain with no line in a split keeps its index
    swapped = open_data(f"synth+iam:{corpora['iam']}", synth=CFG, reader_options=IAM_OPTS)
    assert swapped.domains == ["synth-en", "synth-fr", "synth-hist", "iam"]
    assert swapped.domain_index(next(l for l in swapped.lines("test") if l.source == "iam")) == 3
    with pytest.raises(DataError, match="not a source of this bundle"):
        bundle.domain_index(Line("x-1", "a", "x.png", source="rimes"))


def test_weights_give_each_source_its_share(bundle):
    for sp in SPLITS:
        lines = bundle.lines(sp)
        w = bundle.weights(lines)
        assert w.shape == (len(lines),) and abs(w.sum() - 1) < 1e-12
        share = Counter()
        for l, x in zip(lines, w): share[bundle.source_of(l).name] += x
        assert share == pytest.approx({"iam": 0.5, "folder": 0.2, "synth": 0.3})
    # empirically: draws by these weights give each source its share, whatever its size
    lines = bundle.lines("train")
    s = WeightedBucketBatchSampler([len(l.text) for l in lines], bundle.weights(lines), 8, n=30_000, seed=1)
    got = Counter(bundle.source_of(lines[i]).name for b in s for i in b)
    assert sum(got.values()) == 30_000
    for name, share in {"iam": 0.5, "folder": 0.2, "synth": 0.3}.items():
        assert abs(got[name] / 30_000 - share) < 0.015, (name, got)


def test_weights_are_normalised_over_the_sources_present(bundle):
    lines = [l for l in bundle.lines("train") if l.source in ("iam", "synth-fr")]
    w = bundle.weights(lines)
    by = Counter()
    for l, x in zip(lines, w): by[bundle.source_of(l).name] += x
    assert by == pytest.approx({"iam": 0.5 / 0.8, "synth": 0.3 / 0.8})
    assert bundle.weights([]).shape == (0,)
    with pytest.raises(DataError, match="not a source of this bundle"):
        bundle.weights([Line("x-1", "a", "x.png", source="iam-9")])


# ------------------------------------------------------------------------------------------- ids and options --
def test_clashing_corpus_ids_are_prefixed(corpora, tmp_path):
    copy = shutil.copytree(corpora["folder"], tmp_path / "copy")
    b = open_data(f"folder:{corpora['folder']}+folder:{copy}")
    assert b.domains == ["folder-1", "folder-2"]
    for sp in SPLITS:
        lines = b.lines(sp); half = len(lines) // 2
        assert [l.id for l in lines[half:]] == ["folder-2/" + l.id for l in lines[:half]]
        assert [l.source for l in lines] == ["folder-1"] * half + ["folder-2"] * half
    l = b.lines("train")[-1]
    assert np.array_equal(b.load(l), b.load(b.lines("train")[len(b.lines("train")) // 2 - 1]))


def test_a_synthetic_corpus_on_disk_does_not_clash_with_the_generator(tmp_path):
    cfg = replace(CFG, n_train=3, n_val=1, n_test=1)
    root = write_folder([s for sp in SPLITS for s in SynthCorpus(cfg).samples(sp, workers=1)], tmp_path / "synth-copy")
    b = open_data(f"folder:{root}+synth", synth=cfg)
    disk = [l for l in b.lines("train") if l.source == "folder"]
    gen = [l for l in b.lines("train") if l.source.startswith("synth")]
    assert all(l.id.startswith("folder/") for l in disk)
    by_id = {l.id.removeprefix("folder/"): l for l in disk}
    assert set(by_id) == {l.id for l in gen}
    assert all(by_id[l.id].text == l.text for l in gen)
    assert np.array_equal(b.load(by_id[gen[0].id]), b.load(gen[0]))  # the same pixels, one from disk, one redrawn
    # another seed: no possible clash, ids kept
    b2 = open_data(f"folder:{root}+synth", synth=replace(cfg, seed=9))
    assert {l.id for l in b2.lines("train") if l.source == "folder"} == {l.id for l in gen}


def test_reader_options_by_kind_and_by_name(corpora, tmp_path):
    with pytest.raises(DataError, match="check_counts=False"): open_data(f"iam:{corpora['iam']}")
    b = open_data(f"iam:{corpora['iam']}", reader_options={"iam": {"check_counts": False, "split_scheme": "official"}, "rimes": {}})
    assert len(b.lines("train")) == 5
    flat = write_folder(corpora["folder_samples"], tmp_path / "flat", subfolders=False)
    b = open_data(f"folder:{corpora['folder']}+folder:{flat}", reader_options={"folder": {"check_images": "full"}, "folder-2": {"flat_split": "test"}})
    assert [len(b.lines(sp)) for sp in SPLITS] == [5, 2, 2 + 9]
    for opts, msg in [({"iam": {"check_count": False}}, "has no option(s) check_count"),
                      ({"IAM": {}}, "neither a corpus kind"), ({"folder-3": {}}, "neither a corpus kind"),
                      ({"synth": {"seed": 1}}, "synth=SynthConfig"), ({"iam": False}, "must be a dict")]:
        with pytest.raises(ValueError, match=None) as e:
            open_data(f"iam:{corpora['iam']}+synth", synth=CFG, reader_options=opts)
        assert msg in str(e.value)


def test_open_data_reports_a_bad_spec_before_reading(corpora):
    with pytest.raises(DataError, match="part 'iam:/nope': path '/nope' does not exist"):
        open_data(f"folder:{corpora['folder']}+iam:/nope")


# ------------------------------------------------------------------------------------------ weighted sampler --
LENGTHS = np.random.default_rng(0).integers(5, 80, 600)
SRC = np.repeat([0, 1, 2], [450, 120, 30])
WTS = np.array([0.2, 0.3, 0.5])[SRC] / np.bincount(SRC)[SRC]


def test_weighted_sampler_draws_and_buckets():
    s = WeightedBucketBatchSampler(LENGTHS, WTS, 16, n=20_000, seed=2)
    batches = list(s)
    drawn = np.concatenate(batches)
    assert len(drawn) == 20_000 and len(s) == len(batches)
    assert sorted(drawn.tolist()) == sorted(s.draw().tolist())
    assert np.allclose(np.bincount(SRC[drawn]) / len(drawn), [0.2, 0.3, 0.5], atol=0.015)
    assert np.mean([np.ptp(LENGTHS[b]) for b in batches]) < 5  # batches are width-homogeneous
    assert all(isinstance(i, int) for i in batches[0])
    # the bucketing is BucketBatchSampler's, applied to the drawn lines
    idx = s.draw()
    inner = BucketBatchSampler(LENGTHS[idx], 16, seed=2)
    assert [idx[b].tolist() for b in inner] == batches


def test_weighted_sampler_is_deterministic_per_seed_and_epoch():
    a = WeightedBucketBatchSampler(LENGTHS, WTS, 8, seed=4)
    b = WeightedBucketBatchSampler(LENGTHS, WTS * 7, 8, seed=4)  # weights need not sum to 1
    assert list(a) == list(b) == list(a)
    e0 = list(a); a.set_epoch(1); e1 = list(a)
    assert e0 != e1
    b.set_epoch(1); assert list(b) == e1
    a.set_epoch(0); assert list(a) == e0
    assert list(WeightedBucketBatchSampler(LENGTHS, WTS, 8, seed=5)) != e0
    assert sum(map(len, e0)) == len(LENGTHS)  # n defaults to the number of lines
    zero = np.where(SRC == 0, 0.0, 1.0)
    assert not set(np.concatenate(list(WeightedBucketBatchSampler(LENGTHS, zero, 8)))) & set(np.flatnonzero(SRC == 0))


@pytest.mark.parametrize("replicas", [2, 3])
def test_weighted_sampler_shards(replicas):
    full = list(WeightedBucketBatchSampler(LENGTHS, WTS, 8, n=1000, seed=6))
    shards = [list(WeightedBucketBatchSampler(LENGTHS, WTS, 8, n=1000, seed=6, num_replicas=replicas, rank=r)) for r in range(replicas)]
    assert len({len(s) for s in shards}) == 1  # every rank gets as many batches
    assert len(shards[0]) == -(-len(full) // replicas)
    together = [b for s in shards for b in s]
    assert {tuple(b) for b in together} == {tuple(b) for b in full}  # the shards cover the draw (a few batches repeat)
    for r in range(replicas):  # rank r takes every replicas-th batch of the unsharded order
        assert shards[r][:len(full[r::replicas])] == full[r::replicas]
    for r in range(replicas):  # and each rank's shard is deterministic too
        s = WeightedBucketBatchSampler(LENGTHS, WTS, 8, n=1000, seed=6, num_replicas=replicas, rank=r)
        assert list(s) == shards[r] and len(s) == len(shards[r])


@pytest.mark.parametrize("kwargs, msg", [
    (dict(weights=WTS[:-1]), "one weight per line"), (dict(weights=-WTS), "non-negative"),
    (dict(weights=np.zeros_like(WTS)), "not all zero"), (dict(weights=np.where(SRC == 0, np.nan, 1.0)), "finite"),
    (dict(n=0), "n must be at least 1"), (dict(batch_size=0), "batch_size"), (dict(num_replicas=2, rank=2), "rank 2"),
])
def test_weighted_sampler_bad_inputs(kwargs, msg):
    args = dict(lengths=LENGTHS, weights=WTS, batch_size=8) | kwargs
    with pytest.raises(ValueError, match=msg):
        WeightedBucketBatchSampler(**args)


def test_drop_last_keeps_full_batches_only():
    s = WeightedBucketBatchSampler(LENGTHS, WTS, 7, n=500, drop_last=True)
    assert all(len(b) == 7 for b in s)
