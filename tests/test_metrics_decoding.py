"Extra checks for jand.metrics and jand.decoding: bad inputs, randomized properties, brute-force references."
import itertools, math, random, string, time
from collections import defaultdict
import numpy as np
import pytest
import torch
from jand.charset import Charset
from jand.metrics import (Score, aggregate, cer, edits, line_counts, line_details, score, score_all, score_row, tokens, wer,
                          DETAIL_FIELDS)
from jand.decoding import (CharNGram, beam_decode, ctc_collapse, greedy_decode, greedy_ids, log_softmax_np,
                           prefix_beam_search)

NEG_INF = float("-inf")

# ---------------------------------------------------------------- metrics

def levenshtein(a, b):
    "Textbook dynamic programme, the reference for `edits`."
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1): cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]

def random_line(rng, alphabet="abcAB éß.,", max_len=12):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len)))

def test_edits_matches_reference_dp():
    rng = random.Random(0)
    for _ in range(300):
        a, b = random_line(rng), random_line(rng)
        assert edits(a, b) == levenshtein(a, b)
        assert edits(a.split(), b.split()) == levenshtein(a.split(), b.split())

def test_identical_lines_score_zero_in_every_variant():
    rng = random.Random(1)
    for _ in range(50):
        refs = [random_line(rng) for _ in range(rng.randint(1, 6))]
        refs[0] = refs[0] + " x"  # at least one non-empty reference word and character
        for s in score_all(refs, list(refs)).values():
            assert s.value == 0.0 and s.edits == 0, s

def test_values_are_in_range_and_consistent():
    rng = random.Random(2)
    for _ in range(100):
        n = rng.randint(1, 6)
        refs = [random_line(rng) for _ in range(n)]; refs[0] += " ok"
        hyps = [random_line(rng) for _ in range(n)]
        scores = score_all(refs, hyps)
        for s in scores.values():
            assert s.value >= 0 and s.n_lines == n
            if s.variant == "line-max": assert s.value <= 100.0 + 1e-9  # each line is in [0, 1]
            else: assert s.value == pytest.approx(100 * s.edits / s.ref_len)
        rows = line_details(refs, hyps)
        assert sum(r["char_edits"] for r in rows) == scores["cer_corpus_sensitive"].edits
        assert sum(r["ref_words"] for r in rows) == scores["wer_corpus_sensitive"].ref_len
        assert scores["cer_corpus_folded"].edits <= scores["cer_corpus_sensitive"].edits + sum(r.count("ß") for r in refs + hyps)

def test_hand_computed_values():
    assert cer(["abc"], ["abd"]).value == pytest.approx(100 / 3)
    assert cer(["abcd", "a"], ["abcd", "b"]).value == pytest.approx(20.0)
    assert cer(["abcd", "a"], ["abcd", "b"], "line-max").value == pytest.approx(50.0)
    assert wer(["the cat  sat"], ["the\tbat sat down"]).value == pytest.approx(200 / 3)  # any whitespace separates words
    assert wer(["Stop."], ["stop"], case="folded").value == pytest.approx(100.0)   # punctuation stays attached
    assert cer(["STRASSE"], ["straße"], case="folded").value == 0.0                 # casefold maps ß to ss
    assert cer(["e\u0301"], ["é"]).value == 0.0                                      # NFC on both sides

def test_score_all_matches_single_calls():
    refs, hyps = ["A MOVE to stop", "Mr. Gaitskell"], ["a move to stop", "Mr Gaitskel"]
    scores = score_all(refs, hyps)
    assert len(scores) == 8 and len(set(scores)) == 8
    for key, s in scores.items():
        assert s == score(refs, hyps, s.metric, s.variant, s.case) and key == s.key
    row = score_row(scores, ndigits=None)
    assert row == {k: s.value for k, s in scores.items()}
    assert str(scores["wer_line-max_folded"]).startswith("WER ") and "(line-max, case-folded, 2 lines)" in str(scores["wer_line-max_folded"])

@pytest.mark.parametrize("call, message", [
    (lambda: cer(["a", "b"], ["a"]), "refs has 2 lines but hyps has 1"),
    (lambda: cer("abc", ["abc"]), "not a single string"),
    (lambda: cer([], []), "no lines to score"),
    (lambda: cer(["", ""], ["x", ""]), "every reference line is empty"),
    (lambda: wer([" ", ""], ["x", ""]), "corpus WER is undefined"),
    (lambda: cer(["a"], ["a"], variant="mean"), "variant must be one of"),
    (lambda: cer(["a"], ["a"], case="lower"), "case must be one of"),
    (lambda: score(["a"], ["a"], metric="ser"), "metric must be one of"),
    (lambda: aggregate([]), "no lines to score"),
    (lambda: line_details(["a"], ["a"], ids=[1, 2]), "ids has 2 entries"),
])
def test_bad_inputs(call, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")):
        call()

def test_empty_reference_rules():
    # corpus: the empty line's hypothesis length is all edits, nothing in the denominator
    s = cer(["abcd", ""], ["abcd", "xyz"])
    assert (s.edits, s.ref_len) == (3, 4) and s.value == pytest.approx(75.0)
    assert cer(["abcd", ""], ["abcd", "xyz"], "line-max").value == pytest.approx(50.0)
    assert cer(["", ""], ["", ""], "line-max").value == 0.0
    assert list(line_details(["a"], ["b"])[0]) == list(DETAIL_FIELDS)

# ---------------------------------------------------------------- decoding

def lse(a, b):
    return max(a, b) + math.log1p(math.exp(-abs(a - b))) if max(a, b) > NEG_INF else NEG_INF

def reference_beam(lp, beam, lm=None, alpha=0.0, beta=0.0, symbols=()):
    "Textbook prefix beam search (Hannun et al. 2014), every class tried in every frame, no cuts."
    def bonus(k):
        b = beta * len(k)
        if lm is not None:
            text = "".join(symbols[c - 1] for c in k)
            b += alpha * sum(lm(text[:i], ch) for i, ch in enumerate(text))
        return b
    beams = {(): (0.0, NEG_INF)}
    for row in lp.tolist():
        nb, nnb = defaultdict(lambda: NEG_INF), defaultdict(lambda: NEG_INF)
        for pre, (pb, pnb) in beams.items():
            nb[pre] = lse(nb[pre], lse(pb, pnb) + row[0])
            for c in range(1, len(row)):
                new = pre + (c,)
                if pre and c == pre[-1]:
                    nnb[new] = lse(nnb[new], pb + row[c])
                    nnb[pre] = lse(nnb[pre], pnb + row[c])
                else:
                    nnb[new] = lse(nnb[new], lse(pb, pnb) + row[c])
        keys = sorted(set(nb) | set(nnb), key=lambda k: -(lse(nb[k], nnb[k]) + bonus(k)))[:beam]
        beams = {k: (nb[k], nnb[k]) for k in keys}
    return {k: lse(*v) for k, v in beams.items() if lse(*v) > NEG_INF}

@pytest.mark.parametrize("beam, beta", [(1, 0.0), (2, 0.0), (3, 1.5), (5, -1.0), (8, 0.0)])
def test_beam_search_matches_textbook_reference(beam, beta):
    "The exact cut (`_beam_floor`) and the merge bookkeeping change nothing."
    cs = Charset(tuple("abcd"))
    g = torch.Generator().manual_seed(beam)
    for _ in range(10):
        lp = (torch.randn(12, len(cs), generator=g) * 2).log_softmax(-1)
        ours = {h.ids: h.logp for h in prefix_beam_search(lp, cs, beam=beam, beta=beta)}
        ref = reference_beam(log_softmax_np(lp.numpy()), beam, beta=beta)
        assert set(ours) == set(ref)
        for k in ref: assert ours[k] == pytest.approx(ref[k], abs=1e-9)

def test_beam_search_with_lm_matches_reference():
    cs = Charset(tuple("act "))
    lm = CharNGram(3).fit(["a cat", "cat at a", "tact"])
    g = torch.Generator().manual_seed(7)
    for _ in range(5):
        lp = (torch.randn(10, len(cs), generator=g) * 2).log_softmax(-1)
        hyps = prefix_beam_search(lp, cs, beam=4, lm=lm, alpha=0.7, beta=0.3)
        ref = reference_beam(log_softmax_np(lp.numpy()), 4, lm=lm, alpha=0.7, beta=0.3, symbols=cs.symbols)
        assert {h.ids for h in hyps} == set(ref)
        for h in hyps: assert h.logp == pytest.approx(ref[h.ids], abs=1e-9)

def brute_force(lp):
    "Exact text probabilities and the best path, by enumerating every path."
    T, C = lp.shape
    texts, best_path, best = defaultdict(lambda: NEG_INF), None, NEG_INF
    for path in itertools.product(range(C), repeat=T):
        s = float(sum(lp[t, c] for t, c in enumerate(path)))
        texts[tuple(ctc_collapse(path))] = lse(texts[tuple(ctc_collapse(path))], s)
        if s > best: best, best_path = s, path
    return texts, best_path

def test_exhaustive_beam_finds_the_most_probable_text_and_greedy_the_best_path():
    cs = Charset(("a", "b"))
    g = torch.Generator().manual_seed(3)
    for _ in range(10):
        lp = torch.randn(6, 3, generator=g).log_softmax(-1)
        texts, best_path = brute_force(lp.double().numpy())
        assert greedy_ids(lp) == ctc_collapse(best_path)
        top = prefix_beam_search(lp, cs, beam=1000)[0]
        map_text = max(texts, key=texts.get)
        assert top.ids == map_text and top.logp == pytest.approx(texts[map_text], abs=1e-6)

def test_beam_width_one_equals_greedy_on_peaked_posteriors():
    cs = Charset(tuple(string.ascii_lowercase[:9]))
    rng = np.random.default_rng(4)
    for _ in range(50):
        T, C = 40, len(cs)
        probs = rng.dirichlet(np.ones(C), size=T) * 0.02        # 2 % of the mass spread at random
        probs[np.arange(T), rng.integers(0, C, size=T)] += 0.98
        lp = torch.tensor(np.log(probs))
        assert beam_decode(lp, cs, beam=1) == greedy_decode(lp, cs)
        assert beam_decode(lp, cs, beam=10, prune=math.log(1e-3)) == greedy_decode(lp, cs)

def test_beam_width_one_is_not_best_path():
    "On flat posteriors width 1 already differs from greedy: it ranks prefixes by their total probability."
    cs = Charset(("a", "b"))
    lp = torch.tensor([[0.05, 0.9, 0.05], [0.35, 0.25, 0.4]]).log()
    assert greedy_decode(lp, cs) == "ab"
    h = prefix_beam_search(lp, cs, beam=1)[0]
    # P(a) = 0.9·0.35 + 0.9·0.25 (+ 0.05·0.25 by `-a`, lost with the empty prefix that width 1 dropped) > P(ab) = 0.36
    assert h.text == "a" and math.exp(h.logp) == pytest.approx(0.9 * 0.35 + 0.9 * 0.25)

def test_batches_match_single_items_and_padding_is_ignored():
    cs = Charset(tuple("abc"))
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(4, 15, len(cs), generator=g) * 3).log_softmax(-1)
    lengths = torch.tensor([15, 7, 0, 11])
    padded = x.clone()
    for i, n in enumerate(lengths.tolist()): padded[i, n:] = torch.randn(15 - n, len(cs), generator=g) * 9
    for decode in (greedy_decode, beam_decode):
        texts = decode(padded, cs, lengths=lengths)
        assert texts == [decode(x[i, :n], cs) for i, n in enumerate(lengths.tolist())]
        assert texts[2] == ""
        texts2, ids = decode(padded, cs, lengths=lengths.numpy(), with_ids=True)
        assert texts2 == texts and [cs.decode(i) for i in ids] == texts

def test_logits_log_probs_and_dtypes_decode_alike():
    cs = Charset(tuple("abc"))
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(20, len(cs), generator=g) * 3
    expect = beam_decode(logits.log_softmax(-1), cs)
    assert beam_decode(logits, cs) == expect
    assert beam_decode(logits.double().numpy(), cs) == expect
    assert greedy_decode(logits.to(torch.bfloat16), cs) == greedy_decode(logits, cs)

@pytest.mark.parametrize("call, message", [
    (lambda cs, x: greedy_decode(x[0, :, :2], cs), "posteriors have 2 classes but the charset has 4"),
    (lambda cs, x: greedy_decode(x, cs, lengths=[1, 2, 3]), "lengths has 3 entries for a batch of 2"),
    (lambda cs, x: greedy_decode(x, cs, lengths=[1.5, 2]), "lengths must be integers"),
    (lambda cs, x: greedy_decode(x, cs, lengths=[-1, 2]), "lengths must be in"),
    (lambda cs, x: greedy_decode(x * float("nan"), cs), "NaN"),
    (lambda cs, x: beam_decode(x.exp(), cs), "look like probabilities"),
    (lambda cs, x: prefix_beam_search(x, cs), "decodes one line"),
    (lambda cs, x: beam_decode(x, cs, beam=0), "beam must be at least 1"),
])
def test_decoding_bad_inputs(call, message):
    cs = Charset(tuple("abc"))
    x = torch.randn(2, 5, len(cs)).log_softmax(-1)
    with pytest.raises(ValueError, match=message):
        call(cs, x)

def test_char_ngram_is_a_distribution():
    rng = random.Random(8)
    texts = ["".join(rng.choice("abc d") for _ in range(rng.randint(0, 15))) for _ in range(30)]
    for n in (1, 2, 4):
        lm = CharNGram(n, k=0.5).fit(texts)
        for prefix in ("", "a", "dd", "zzzz", "abc d"):
            total = sum(math.exp(lm(prefix, ch)) for ch in lm.vocab | {"§"})  # "§" stands for every unseen character
            assert total == pytest.approx(1.0)
    lm = CharNGram(2).fit(["ab", "ab", "ac"])
    assert lm("a", "b") > lm("a", "c") > lm("a", "z")

@pytest.mark.slow
def test_beam_search_speed_realistic_size():
    cs = Charset.from_texts([string.printable.strip() + " éèàçù"])
    x = (torch.randn(128, len(cs), generator=torch.Generator().manual_seed(9)) * 4).log_softmax(-1)
    t0 = time.perf_counter(); beam_decode(x, cs, beam=10); dt = time.perf_counter() - t0
    assert dt < 5.0, f"beam search took {dt:.2f} s for T=128, C={len(cs)}, beam 10"
