"Extra checks for jand.lexicon: snapping, case/punctuation/number preservation, ranking, word lists, the beam-search scorer."
import math, random, time
from collections import Counter
import numpy as np
import pytest
import torch
import editdistance
from jand.core import DataError
from jand.charset import BLANK, Charset
from jand.decoding import beam_decode, greedy_decode, prefix_beam_search
from jand.lexicon import (Lexicon, LexiconScorer, allowed_distance, apply_case, case_pattern, deletions, is_number,
                          lbc_changes, lbc_correct, lbc_correct_lines, read_wordlist, split_token, words_of)

LEX = Lexicon(Counter({"the": 100, "The": 20, "cat": 10, "cot": 3, "hat": 5, "mat": 2, "sat": 2, "house": 4,
                       "London": 3, "I": 7, "McDonald": 2, "well-known": 2, "don't": 3, "été": 2, "Été": 1}))


@pytest.mark.parametrize("line,expected", [
    ("the cst", "the cat"),                       # one edit
    ("Tje", "The"), ("TJE", "THE"), ("tje", "the"),  # case pattern restored
    ('"Tje,', '"The,'), ("(cst).", "(cat)."),       # punctuation around the word kept
    ("the  cst\tsat", "the  cat\tsat"),             # whitespace kept exactly
    ("londen", "London"), ("LONDEN", "LONDON"),     # a name keeps its capitals unless the input is upper case
    ("mcdonalt", "McDonald"),
    ("well-knwn", "well-known"), ("dont't", "don't"),
    ("éte", "été"), ("Éte", "Été"), ("ÉTÈ", "ÉTÉ"),
    ("houze", "house"), ("hoUZe", "house"),        # mixed case: the lexicon's spelling
    ("zzzzzz", "zzzzzz"),                          # nothing near: kept
])
def test_snapping_examples(line, expected):
    assert lbc_correct(line, LEX) == expected


@pytest.mark.parametrize("line", ["1984", "3rd", "12.5", "cat5", "1st.", "(2)", "...", "-", "", "   "])
def test_numbers_and_punctuation_untouched(line):
    assert lbc_correct(line, LEX) == line


def test_in_lexicon_words_untouched_even_when_a_more_frequent_word_is_near():
    assert lbc_correct("cot mat sat hat", LEX) == "cot mat sat hat"
    assert lbc_changes("cot THE Cat", LEX) == []


def test_tie_breaking_by_frequency_then_alphabet():
    assert lbc_correct("xat", LEX) == "cat"         # cat 10 > hat 5 > mat, sat 2: all one edit away
    lex = Lexicon(Counter({"bat": 2, "rat": 2, "hat": 1}))
    assert lbc_correct("zat", lex) == "bat"         # equal counts: alphabetical
    lex = Lexicon(Counter({"cart": 100, "cat": 1}))
    assert lex.candidates("caat", 1) == [("cart", 1, 100), ("cat", 1, 1)]
    assert lbc_correct("caat", lex) == "cart"


def test_nearest_first():
    lex = Lexicon(Counter({"house": 1, "horse": 1000}))
    assert lbc_correct("housr", lex) == "house"    # one edit beats two, whatever the counts


def test_min_length_and_distance_caps():
    assert lbc_correct("ct", LEX) == "ct"
    assert lbc_correct("ct", LEX, min_length=2) == "cat"
    assert [allowed_distance(n) for n in (1, 3, 5, 6, 9)] == [1, 1, 1, 2, 2]
    assert allowed_distance(30, 3, None) == 3
    assert lbc_correct("hxuze", LEX) == "hxuze"      # two edits on a 5-letter word: above the cap
    assert lbc_correct("hxuze", LEX, max_ratio=None) == "house"


def test_changes_and_lines():
    assert lbc_changes("the cst, tje", LEX) == [(2, "cst,", "cat,"), (4, "tje", "the")]
    assert lbc_correct_lines(["tje", "cst"], LEX) == ["the", "cat"]
    assert lbc_correct("teh", LEX) == "teh"  # a transposition is two edits: above the cap for 3 letters


def test_tokenisation_helpers():
    assert split_token("«Madame»,") == ("«", "Madame", "»,")
    assert split_token("l'été.") == ("", "l'été", ".")
    assert is_number("1961") and is_number("3rd") and not is_number("third")
    assert words_of("Il a 3 chats, «ça» va !") == ["Il", "a", "chats", "ça", "va"]
    assert [case_pattern(w) for w in ("É", "ÉTÉ", "Été", "été", "eTé")] == ["title", "upper", "title", "lower", "mixed"]
    assert apply_case("strasse", "upper") == "STRASSE"


def brute(lex, q, d):
    out = [(k, editdistance.eval(q, k), n) for k, n in lex.counts.items() if editdistance.eval(q, k) <= d]
    return sorted(out, key=lambda x: (x[1], -x[2], x[0]))


@pytest.mark.parametrize("prefix_length", [3, 5, 7, 50])
def test_deletion_index_matches_brute_force(prefix_length):
    rng = random.Random(prefix_length)
    alpha = "abcdeé"
    vocab = Counter({"".join(rng.choice(alpha) for _ in range(rng.randint(1, 10))): rng.randint(1, 9) for _ in range(400)})
    lex = Lexicon(vocab, prefix_length=prefix_length)
    for _ in range(300):
        q = "".join(rng.choice(alpha) for _ in range(rng.randint(1, 11)))
        for d in (1, 2):
            assert lex.candidates(q, d) == brute(lex, q, d), (q, d)


def test_deletions():
    assert deletions("ab", 2) == {"ab", "a", "b", ""}
    assert deletions("aa", 1) == {"aa", "a"}


def test_lexicon_from_texts_counts_and_case(tmp_path):
    lex = Lexicon.from_texts(["The cat. the CAT, 1961", "London and the cat"], min_count=1)
    assert lex.count("the") == 3 and lex.count("cat") == 3 and "1961" not in lex
    assert lex.form["london"] == "London" and "london" in lex.cased and "the" not in lex.cased
    assert len(Lexicon.from_texts(["a b b c c c"], min_count=2)) == 2
    wl = tmp_path / "w.txt"; wl.write_text("\ufeffzebra\nrare\n", encoding="utf-8")  # a BOM is accepted
    lex = Lexicon.from_texts(["x x rare"], min_count=2, wordlist=wl)
    assert sorted(lex.counts) == ["rare", "x", "zebra"] and lex.count("rare") == 2


def test_wordlist_errors(tmp_path):
    with pytest.raises(DataError, match="no such word-list file"): read_wordlist(tmp_path / "none.txt")
    with pytest.raises(DataError, match="not a file"): read_wordlist(tmp_path)
    p = tmp_path / "w.txt"
    p.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(DataError, match=r"w.txt: not UTF-8 text \(byte 0xff at offset 3\)"): read_wordlist(p)
    p.write_text("ok\nnew york\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"w.txt:2: 'new york' holds whitespace"): read_wordlist(p)
    p.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="no words"): read_wordlist(p)
    with pytest.raises(DataError): Lexicon.from_texts(["a"], wordlist=tmp_path / "none.txt")
    p.write_text("cafe\u0301\n", encoding="utf-8")
    assert read_wordlist(p) == ["café"]  # NFC


def test_lbc_is_fast_on_thousands_of_lines():
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = Counter({"".join(rng.choice(letters) for _ in range(rng.randint(3, 10))): rng.randint(1, 50) for _ in range(5000)})
    lex = Lexicon(vocab)
    words = list(vocab)
    lines = []
    for _ in range(2000):
        ws = [rng.choice(words) for _ in range(8)]
        ws = [w[:1] + "x" + w[2:] if rng.random() < 0.3 else w for w in ws]
        lines.append(" ".join(ws))
    t0 = time.perf_counter(); lbc_correct_lines(lines, lex); secs = time.perf_counter() - t0
    assert secs < 10, secs


# ---------------------------------------------------------------- the beam-search scorer

CS = Charset(tuple(" acehost1"))


def frames(*probs):
    "Log-posteriors from per-frame {char: prob} dicts; the rest of the mass goes to the blank."
    x = np.full((len(probs), len(CS)), 1e-6)
    for t, d in enumerate(probs):
        for ch, p in d.items(): x[t, CS.encode(ch)[0]] = p
        x[t, BLANK] = max(1 - sum(d.values()), 1e-6)
    return torch.tensor(np.log(x / x.sum(1, keepdims=True)))


def spell(text, p=0.9):
    "Frames that read `text` with a blank between letters."
    out = []
    for ch in text: out += [{ch: p}, {}]
    return out


def test_scorer_turns_a_near_miss_into_a_lexicon_word():
    lex = Lexicon.from_texts(["the cat sat", "a hot tea"])
    x = frames(*spell("the "), {"c": 0.9}, {}, {"o": 0.5, "a": 0.4}, {}, {"t": 0.9}, {}, *spell(" sat"))
    assert greedy_decode(x, CS) == "the cot sat" == beam_decode(x, CS)
    assert beam_decode(x, CS, lm=LexiconScorer(lex), alpha=1.0) == "the cat sat"
    assert beam_decode(x, CS, lm=LexiconScorer(lex), alpha=0.0) == "the cot sat"
    assert beam_decode(x, CS, lm=LexiconScorer(lex, penalty=-0.01), alpha=1.0) == "the cot sat"  # too weak a penalty


def test_scorer_keeps_confident_out_of_lexicon_words_and_numbers():
    lex = Lexicon.from_texts(["the cat", "st"])
    x = frames(*spell("the 1st chest", p=0.999))
    assert beam_decode(x, CS, lm=LexiconScorer(lex), alpha=1.0) == "the 1st chest"
    h = prefix_beam_search(x, CS, lm=LexiconScorer(lex, penalty=-2.0), alpha=1.0)[0]
    assert h.text == "the 1st chest"
    assert math.isclose(h.score - h.logp, 4 * -2.0, abs_tol=1e-9)  # h, e, s, t of 'chest'; '1st' is free ('st' is listed)


def test_scorer_does_not_glue_words_to_escape_penalties():
    lex = Lexicon.from_texts(["the cat"])
    x = frames(*spell("the 1st chest", p=0.999))  # 'st' and 'chest' are both off the lexicon
    assert beam_decode(x, CS, lm=LexiconScorer(lex, penalty=-5.0), alpha=1.0) == "the 1st chest"


def test_scorer_rules():
    sc = LexiconScorer(["cat", "Cattle", "don't", "été"], penalty=-3.0)
    assert sc("", "c") == 0 and sc("", "x") == -3 and sc("x", "y") == -3  # every letter off the lexicon pays
    assert sc("the CA", "T") == 0 and sc("the cat", "t") == 0
    assert sc("the ca", " ") == -3 and sc("the ca", ",") == -3 and sc("the ca", "1") == -3 and sc("the cat", ",") == 0
    assert sc("the xq", " ") == 0          # already paid letter by letter
    assert sc("", " ") == 0 and sc("a, ", " ") == 0
    assert sc("room 1", "2") == 0 and sc("12", "c") == 0 and sc("12", "x") == -3  # digits are boundaries
    assert sc("don", "'") == 0 and sc("don'", "t") == 0
    assert sc("l'", "é") == 0 and sc("ét", "é") == 0 and sc("ét", "É") == 0
    assert LexiconScorer(LEX)("", "c") == 0
