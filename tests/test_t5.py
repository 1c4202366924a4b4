"Extra checks for jand.t5: the error simulator's rates, pair selection, the guard, training, saving and loading offline."
import json, math, os, random
from collections import Counter
from dataclasses import replace
import pytest
import torch
import editdistance
from jand.core import DataError, Report
from jand.metrics import cer
import jand.t5 as t5
from jand.errors import (ConfusionModel, Pair, align, line_cer, previous_lines, recognizer_pairs, select_pairs,
                         simulate_pairs)
from jand.t5 import CorrectionResult, T5Corrector, T5CorrectorConfig, benchmark_corrector, format_input, guard_decision, \
    normalised_change

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)
TINY = T5CorrectorConfig(d_model=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=16, d_ff=64, batch_size=16,
                         gen_batch_size=16)
WORDS = ("the of and to in was he that it his her for had with as you not on she at by which but have from this were "
         "all one they my are said when there been would so their an no into what more if who very out about time upon "
         "some could only then other must over than any did little such great before them may after well never two").split()


def lines(n, seed=0, lo=4, hi=9):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


# ---------------------------------------------------------------- alignment and the simulator

def test_align_cost_is_the_edit_distance():
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 12)))
        ops = align(a, b)
        assert sum(o != "=" for o, *_ in ops) == editdistance.eval(a, b)
        assert "".join(t for _, t, _ in ops) == a and "".join(p for _, _, p in ops) == b


KNOWN = ConfusionModel(sub_rate=0.05, del_rate=0.02, ins_rate=0.01, merge_rate=0.06, split_rate=0.02)


def test_simulated_cer_tracks_the_expected_cer():
    texts = lines(1500, seed=1)
    rng = random.Random(2)
    noisy = [KNOWN.corrupt(t, rng) for t in texts]
    expected = sum(KNOWN.expected_cer(t) * len(t) for t in texts) / sum(map(len, texts))
    got = cer(texts, noisy).value / 100
    assert abs(got - expected) / expected < 0.08, (got, expected)


@pytest.mark.parametrize("target", [0.02, 0.1, 0.25])
def test_cer_target_sets_the_line_cer(target):
    texts = lines(600, seed=3)
    rng = random.Random(4)
    noisy = [ConfusionModel().corrupt(t, rng, cer_target=target) for t in texts]
    got = cer(texts, noisy).value / 100
    assert abs(got - target) / target < 0.12, (got, target)


def test_from_pairs_recovers_the_rates_it_was_simulated_with():
    texts = lines(2000, seed=5)
    rng = random.Random(6)
    fit = ConfusionModel.from_pairs((t, KNOWN.corrupt(t, rng)) for t in texts)
    assert fit.n_pairs == 2000 and fit.n_chars == sum(map(len, texts))
    for name in ("sub_rate", "del_rate", "ins_rate", "merge_rate", "split_rate"):
        true, est = getattr(KNOWN, name), getattr(fit, name)
        assert abs(est - true) / true < 0.2, (name, est, true)
    # and a model fitted on its own output reproduces the CER
    noisy = [fit.corrupt(t, random.Random(i)) for i, t in enumerate(texts[:800])]
    ref = [KNOWN.corrupt(t, random.Random(i)) for i, t in enumerate(texts[:800])]
    assert abs(cer(texts[:800], noisy).value - cer(texts[:800], ref).value) < 1.5


def test_observed_substitutions_are_reused():
    pairs = [("aaaa aaaa", "oaaa aaao")] * 50
    fit = ConfusionModel.from_pairs(pairs)
    assert fit.sub_counts["a"] == {"o": 100}
    rng = random.Random(0)
    subs = Counter()
    for _ in range(300):
        for o, t, p in align("aaaaaaaa", fit.corrupt("aaaaaaaa", rng)):
            if o == "s": subs[p] += 1
    assert subs.most_common(1)[0][0] == "o" and subs["o"] / sum(subs.values()) > 0.8


def test_corrupt_is_deterministic_by_rng_and_never_substitutes_a_character_by_itself_nor_a_space():
    cm = ConfusionModel(sub_rate=0.5, del_rate=0, ins_rate=0, merge_rate=0, split_rate=0)
    t = "abcdefghij xyz 0123 .,;"
    assert cm.corrupt(t, random.Random(3)) == cm.corrupt(t, random.Random(3)) == cm.corrupt(t, 3)
    assert len({cm.corrupt(t, s) for s in range(10)}) > 5
    every = ConfusionModel(sub_rate=1.0, del_rate=0, ins_rate=0, merge_rate=0, split_rate=0)  # capped at 95 %
    outs = [every.corrupt(t, s) for s in range(50)]
    assert all(len(o) == len(t) for o in outs)
    letters = [i for i, c in enumerate(t) if c != " "]
    changed = sum(o[i] != t[i] for o in outs for i in letters) / (50 * len(letters))
    assert 0.9 < changed < 0.99, changed  # a substitute is never the character itself
    assert all(o[i] == " " for o in outs for i, c in enumerate(t) if c == " ")  # a space is merged, not substituted
    assert ConfusionModel().corrupt("", 0) == ""


def test_confusion_model_save_load_and_errors(tmp_path):
    fit = ConfusionModel.from_pairs([("the cat sat", "tho cat sat"), ("hello world", "helloworld")])
    p = fit.save(tmp_path / "cm.json")
    assert ConfusionModel.load(p) == fit
    assert ConfusionModel.load(p).corrupt("the cat", 1) == fit.corrupt("the cat", 1)
    (tmp_path / "x.json").write_text("not json")
    with pytest.raises(DataError, match="x.json: not a JSON file"): ConfusionModel.load(tmp_path / "x.json")
    (tmp_path / "x.json").write_text('{"sub_rate": 0.1}')
    with pytest.raises(DataError, match="not a jand ConfusionModel file"): ConfusionModel.load(tmp_path / "x.json")
    with pytest.raises(DataError, match="no such file"): ConfusionModel.load(tmp_path / "none.json")


# ---------------------------------------------------------------- pairs

def test_previous_lines_stay_within_their_group():
    texts = ["a1", "b1", "a2", "a3", "b2"]
    assert previous_lines(texts, ["a", "b", "a", "a", "b"], 2) == [(), (), ("a1",), ("a1", "a2"), ("b1",)]
    with pytest.raises(ValueError, match="5 lines but 2 group keys"): previous_lines(texts, ["a", "b"])


def test_simulated_pairs_have_noisy_contexts_from_the_same_copy():
    texts = lines(20, seed=7)
    groups = [i // 5 for i in range(20)]
    pairs = simulate_pairs(texts, groups=groups, copies=2, seed=3, context_lines=1)
    assert len(pairs) == 40
    for k in range(2):
        block = pairs[20 * k:20 * (k + 1)]
        for i, p in enumerate(block):
            assert p.target == texts[i]
            assert p.context == (() if i % 5 == 0 else (block[i - 1].source,))
    assert simulate_pairs(texts, seed=3) == simulate_pairs(texts, seed=3)
    assert simulate_pairs(texts, seed=3) != simulate_pairs(texts, seed=4)
    assert [p.source for p in simulate_pairs(texts, cer_target=None, model=ConfusionModel(0, 0, 0, 0, 0))] == texts


def test_recognizer_pairs():
    pairs = recognizer_pairs(["the cat", "sat down"], ["the cot", "satdown"], groups=["p", "p"])
    assert pairs[1] == Pair("satdown", "sat down", ("the cot",), "real")
    with pytest.raises(ValueError, match="2 truths but 1 predictions"): recognizer_pairs(["a", "b"], ["a"])


def test_select_pairs_filters_by_line_cer_and_adds_clean_pairs():
    noisy = [Pair("the cot sat on the mat", "the cat sat on the mat")] * 40   # 1 edit / 22: 4.5 %
    too_noisy = [Pair("xyz", "the cat")] * 3
    almost = [Pair("a" * 150 + "b", "a" * 151)] * 2                          # 0.66 %
    clean = [Pair("we went home", "we went home")] * 30
    rep = Report("sel")
    out = select_pairs(noisy + too_noisy + almost + clean, clean_share=0.2, seed=0, report=rep)
    assert len(out) == 50 and sum(p.origin == "clean" for p in out) == 10
    assert all(p.source == p.target for p in out if p.origin == "clean")
    assert rep.skipped == Counter({"line CER above 50%": 3, "line CER below 1%": 2, "clean pair beyond clean_share": 20})
    assert rep.kept == 50
    # not enough clean pairs: identity copies of kept pairs fill the share
    out = select_pairs(noisy, clean_share=0.5, seed=0)
    assert len(out) == 80 and sum(p.source == p.target for p in out) == 40
    # bounds are inclusive, the order is seeded
    b = [Pair("ab", "aa"), Pair("abcdefghij", "abcdefghiX")]                # 50 % and 10 %
    assert len(select_pairs(b, min_cer=0.1, max_cer=0.5, clean_share=0)) == 2
    assert select_pairs(noisy + clean, seed=1) == select_pairs(noisy + clean, seed=1)
    with pytest.raises(ValueError, match="clean_share"): select_pairs(noisy, clean_share=1.0)
    assert math.isclose(line_cer("abc", "abcd"), 0.25)


def test_format_input():
    assert format_input("x") == "correct: x"
    assert format_input("x", ("p1", "p2", "p3"), 2) == "context: p2 | p3 | correct: x"
    assert format_input("x", ("p1", ""), 2) == "context: p1 | correct: x"
    assert format_input("x", ("p1",), 0) == "correct: x"
    assert format_input("x", ("0123456789",), 1, max_context_chars=4) == "context: 6789 | correct: x"


# ---------------------------------------------------------------- the guard

@pytest.mark.parametrize("orig,cand,score,expected", [
    ("the cot sat", "the cat sat", -0.05, (True, "accepted")),
    ("the cot sat", "the cat sat", -0.6, (False, "low confidence")),
    ("the cot sat", "the cat sat", float("nan"), (False, "low confidence")),
    ("the cot sat", "a cat", -0.01, (False, "change too large")),
    ("the cot sat", "", -0.01, (False, "change too large")),
    ("same", "same", -50.0, (True, "unchanged")),
    ("abcdefghij", "abcXXXghij", -0.1, (True, "accepted")),     # 3 edits / 10 = 0.3: the limit is inclusive
    ("abcdefghij", "abcXXXXhij", -0.1, (False, "change too large")),
])
def test_guard_decision(orig, cand, score, expected):
    assert guard_decision(orig, cand, score, min_logp=-0.5, max_change=0.3) == expected


def test_normalised_change():
    assert normalised_change("", "") == 0 and normalised_change("", "x") == 1
    assert math.isclose(normalised_change("abcd", "abc"), 0.25)


def test_correct_applies_the_guard_to_the_model_outputs(monkeypatch):
    "Stubbed generation: the plumbing of `correct` (order, batching, guard, reasons) is checked exactly."
    c = T5Corrector(replace(TINY, gen_batch_size=2))
    proposals = {"the cot sat": ("the cat sat", -0.1), "we went hone": ("we went home", -2.0),
                 "a fine day": ("a fine day", -0.3), "it was good": ("something else entirely", -0.01)}
    seen = []
    def fake_generate(self, texts, max_tokens, num_beams):
        seen.append((len(texts), num_beams))
        lines = [t.split("correct: ", 1)[1] for t in texts]
        return [proposals[l][0] for l in lines], [proposals[l][1] for l in lines]
    monkeypatch.setattr(t5, "_generate", fake_generate)
    lines_in = list(proposals)
    res = c.correct(lines_in)
    assert [r.original for r in res] == lines_in
    assert [r.text for r in res] == ["the cat sat", "we went hone", "a fine day", "it was good"]
    assert [r.reason for r in res] == ["accepted", "low confidence", "unchanged", "change too large"]
    assert [r.changed for r in res] == [True, False, False, False]
    assert [r.accepted for r in res] == [True, False, True, False]
    assert res[1].candidate == "we went home" and res[1].score == -2.0
    assert seen == [(2, 4), (2, 4)]
    res = c.correct(lines_in, guard=False, num_beams=2)
    assert [r.text for r in res] == [proposals[l][0] for l in lines_in] and seen[-1] == (2, 2)


# ---------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def trained():
    "A tiny corrector trained for 40 steps on an identity-heavy mix."
    texts = lines(300, seed=11)
    pairs = select_pairs(simulate_pairs(texts, seed=1), clean_share=0.5, seed=0)
    c = T5Corrector(TINY)
    stats = c.fit(pairs, steps=40, seed=0, progress_bar=False)
    return c, stats


def test_fit_lowers_the_loss_and_is_deterministic(trained):
    c, stats = trained
    assert stats["steps"] == 40 == c.steps_trained and len(stats["losses"]) == 40
    assert sum(stats["losses"][-5:]) < sum(stats["losses"][:5])
    pairs = select_pairs(simulate_pairs(lines(40, seed=2), seed=1), seed=0)
    a = T5Corrector(TINY, seed=3).fit(pairs, steps=3, seed=5, progress_bar=False)["losses"]
    b = T5Corrector(TINY, seed=3).fit(pairs, steps=3, seed=5, progress_bar=False)["losses"]
    assert a == b


def test_guard_keeps_clean_lines(trained):
    c, _ = trained
    clean = lines(40, seed=99)
    guarded = c.correct(clean)
    kept = sum(r.text == r.original for r in guarded) / len(clean)
    assert kept >= 0.9, Counter(r.reason for r in guarded)
    assert all(r.accepted or r.text == r.original for r in guarded)
    # the guard is doing the work: without it, the briefly trained model rewrites most clean lines
    raw = c.correct(clean, guard=False)
    assert [r.candidate for r in raw] == [r.candidate for r in guarded]
    assert sum(r.changed for r in raw) / len(clean) >= 0.5


def test_correct_inputs_and_edge_cases(trained):
    c, _ = trained
    with pytest.raises(TypeError, match="not a single string"): c.correct("the cat")
    with pytest.raises(ValueError, match="2 lines but 1 contexts"): c.correct(["a", "b"], [()])
    res = c.correct(["", "   ", "x" * (c.cfg.max_len + 5), "the cat"])
    assert [r.reason for r in res[:3]] == ["empty", "empty", "too long"]
    assert all(r.text == r.original and math.isnan(r.score) for r in res[:3])
    assert isinstance(res[3], CorrectionResult) and not math.isnan(res[3].score) and res[3].score <= 0
    assert c.correct([]) == []
    no_ctx = T5Corrector(replace(TINY, context_lines=0))
    assert no_ctx.inputs(["x"], [("prev",)]) == ["correct: x"]       # the ablation ignores contexts
    assert c.inputs(["x"], [("prev",)]) == ["context: prev | correct: x"]


def test_fit_skips_and_counts_too_long_pairs():
    c = T5Corrector(replace(TINY, max_len=20))
    rep = Report("fit")
    stats = c.fit([Pair("the cot", "the cat"), Pair("y" * 40, "x" * 40)], steps=2, progress_bar=False, report=rep)
    assert stats["n_pairs"] == 1 and rep.skipped["longer than max_len bytes"] == 1
    with pytest.raises(ValueError, match="no usable training pairs"): c.fit([Pair("y" * 40, "x" * 40)], steps=1)


def test_save_load_roundtrip_and_atomic_replace(trained, tmp_path):
    c, _ = trained
    target = tmp_path / "corr"
    c.save(target)
    (target / "marker").write_text("old")
    c.save(target)                                                     # replaces the whole folder
    assert not (target / "marker").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corr"]      # no temporary folder left behind
    back = T5Corrector.load(target)
    assert back.cfg == c.cfg and back.steps_trained == c.steps_trained
    sd, sd2 = c.model.state_dict(), back.model.state_dict()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    meta = json.loads((target / "corrector.json").read_text())
    assert meta["tokenizer"] == "byt5" and meta["config"]["d_model"] == 32


def test_from_local_checkpoints_and_clear_errors(trained, tmp_path):
    c, _ = trained
    plain = tmp_path / "plain"
    c.model.save_pretrained(plain)
    c.tok.save_pretrained(plain)                                       # a checkpoint with tokenizer files
    local = T5Corrector.from_local(plain)
    assert local.cfg.d_model == 32 and local.n_params == c.n_params
    assert local.correct(["the cat sat"])[0].candidate == c.correct(["the cat sat"])[0].candidate
    with pytest.raises(DataError, match="no such directory"): T5Corrector.from_local(tmp_path / "nope")
    with pytest.raises(DataError, match="jand never downloads"): T5Corrector.from_local("google/byt5-small")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a directory"): T5Corrector.from_local(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no config.json"): T5Corrector.from_local(tmp_path / "empty")
    bad = tmp_path / "bad"; bad.mkdir(); (bad / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="bad: cannot load a T5 model"): T5Corrector.from_local(bad)
    with pytest.raises(DataError, match="no corrector.json"): T5Corrector.load(plain)
    # a checkpoint without tokenizer files whose vocabulary is not ByT5's
    from transformers import T5ForConditionalGeneration
    odd = tmp_path / "odd"
    T5ForConditionalGeneration(TINY.t5_config(vocab_size=500)).save_pretrained(odd)
    with pytest.raises(DataError, match="not ByT5's"): T5Corrector.from_local(odd)


def test_benchmark_corrector(trained, capsys):
    c, _ = trained
    out = benchmark_corrector(c, n_lines=4, lines=lines(4, seed=1))
    assert out["lines"] == 4 and out["lines_per_s"] > 0
    assert "lines/s" in capsys.readouterr().out
