"Post-processing pipeline (jand.postprocess) and its CLI: stages, contexts, side-by-side scores, train-corrector."
import csv, json, os, subprocess, sys
from pathlib import Path
from types import SimpleNamespace
import pytest
import torch
from jand.core import Line
from jand.lexicon import Lexicon
from jand.t5 import CorrectionResult, T5Corrector
from jand.postprocess import (STAGES, STAGE_COLUMNS, apply_stages, page_key, parse_stages, stage_line_rows, stage_rows,
                              uses_lbc, uses_t5)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TINY_RUN = ["--model", "student", "--epochs", "1", "--batch-size", "8", "--synth-train", "16", "--synth-val", "8",
            "--synth-test", "8", "--height", "32", "--no-progress-bar"]
TINY_T5 = ["--kind", "seq2seq", "--d-model", "32", "--num-layers", "1", "--num-decoder-layers", "1", "--num-heads", "2", "--d-kv", "16",
           "--d-ff", "64", "--batch-size", "8"]
SYNTH = ["--synth-train", "16", "--synth-val", "8", "--synth-test", "8"]


def jand(*args, ok=True):
    r = subprocess.run([str(Path(sys.executable).parent / "jand"), *map(str, args)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if ok: assert r.returncode == 0, r.stderr[-3000:]
    return r


class FakeCorrector:
    "Stands in for a T5Corrector: records the contexts it was given, applies a fixed rewrite."
    def __init__(self, context_lines=1, rewrite=None):
        self.cfg, self.rewrite, self.seen, self.calls = SimpleNamespace(context_lines=context_lines), rewrite or {}, None, 0
    def correct(self, lines, contexts=None):
        self.seen, self.calls = contexts, self.calls + 1
        return [CorrectionResult(self.rewrite.get(l, l), l, -0.1, self.rewrite.get(l, l) != l, True, self.rewrite.get(l, l))
                for l in lines]


# ---------------------------------------------------------------- the library

def test_parse_stages_order_aliases_and_errors():
    assert parse_stages("t5+lbc,lbc") == ["none", "lbc", "t5+lbc"]
    assert parse_stages("ALL") == list(STAGES) and parse_stages("none") == ["none"] and parse_stages("raw,t5") == ["none", "t5"]
    for bad in ("lbc,bogus", "t5-lbc", "lexicon"):
        with pytest.raises(ValueError, match="unknown post-processing stage"): parse_stages(bad)
    with pytest.raises(ValueError, match="no post-processing stage"): parse_stages("")
    assert uses_t5(["none", "t5+lbc"]) and uses_lbc(["none", "t5+lbc"]) and not uses_lbc(["none", "t5"])


def test_lbc_stage_fixes_misspelled_words_given_a_covering_lexicon():
    truth = ["The quick brown fox jumps over the lazy dog.", "Pack my box with five dozen liquor jugs"]
    noisy = ["The quick brwn fox jumps ovr the lazy dog.", "Pack my box with fibe dozen liqour jugs"]
    out = apply_stages(noisy, "lbc", lexicon=Lexicon.from_texts(truth))
    assert out["lbc"].hyps == truth and out["none"].hyps == noisy
    rows = stage_rows(truth, out)
    assert rows[0]["cer_corpus_sensitive"] > 0 and rows[1]["cer_corpus_sensitive"] == 0 and rows[1]["lines_changed"] == 2
    assert set(STAGE_COLUMNS) <= set(rows[1])


def test_t5_context_is_the_previous_recognized_lines_of_the_same_page():
    lines = [Line("p1-00", "", "x"), Line("p1-01", "", "x"), Line("p2-00", "", "x"), Line("p1-02", "", "x")]
    hyps = ["a1", "a2", "b1", "a3"]
    fake = FakeCorrector(context_lines=2)
    apply_stages(hyps, "t5", corrector=fake, groups=[page_key(l) for l in lines])
    assert fake.seen == [(), ("a1",), (), ("a1", "a2")]
    fake0 = FakeCorrector(context_lines=0)
    apply_stages(hyps, "t5", corrector=fake0, groups=[page_key(l) for l in lines])
    assert fake0.seen == [(), (), (), ()]


def test_t5_plus_lbc_is_t5_then_lbc_and_reuses_the_t5_output():
    truth = ["the old house by the river"]
    fake = FakeCorrector(rewrite={"the old hous by the rivr": "the old house by the rivr"})  # T5 fixes one word
    out = apply_stages(["the old hous by the rivr"], "all", corrector=fake, lexicon=Lexicon.from_texts(truth))
    assert out["t5"].hyps == ["the old house by the rivr"]
    assert out["lbc"].hyps == truth and out["t5+lbc"].hyps == truth
    assert out["t5+lbc"].seconds >= out["t5"].seconds
    assert fake.calls == 1  # t5+lbc applies LBC to the t5 output instead of running the corrector again
    per_line = stage_line_rows(truth, out, ids=["l0"])[0]
    assert per_line["hyp"] == "the old hous by the rivr" and per_line["hyp_t5"] == "the old house by the rivr"
    assert per_line["char_edits_t5"] == 1 and per_line["char_edits_t5+lbc"] == 0 and per_line["word_edits_lbc"] == 0


def test_stages_need_their_tools():
    with pytest.raises(ValueError, match="need a corrector"): apply_stages(["x"], "t5+lbc", lexicon=Lexicon.from_texts(["x"]))
    with pytest.raises(ValueError, match="need a lexicon"): apply_stages(["x"], "lbc")


# ---------------------------------------------------------------- the command line, on a tiny run

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pp") / "run"
    jand("train", "--out", out, *TINY_RUN)
    return out


@pytest.fixture(scope="module")
def corrector(run):
    out = run.parent / "corrector"
    r = jand("train-corrector", "--run", run, "--out", out, "--steps", "3", "--copies", "1", "--context-lines", "1",
             "--device", "cpu", "--threads", "1", "--no-progress-bar", *TINY_T5)
    assert "corrector written to" in r.stdout
    return out


def test_eval_lexicon_of_the_training_words_on_request(run, tmp_path):
    r = jand("eval", "--model", run / "model.pt", "--postprocess", "lbc", "--lexicon", "train", *SYNTH)
    assert "LBC lexicon: Lexicon(" in r.stdout and "from the training lines of run" in r.stdout
    r = jand("eval", "--model", run / "model.pt", "--postprocess", "lbc", "--lexicon", "fr", *SYNTH)
    assert "from the 'fr' frequency list" in r.stdout
    r = jand("eval", "--model", run / "model.pt", "--lexicon", "fr", *SYNTH, ok=False)
    assert r.returncode != 0 and "--lexicon is used only by the lbc stages" in r.stderr


def test_eval_with_lbc_prints_both_stages_and_writes_per_stage_columns(run, tmp_path):
    words = tmp_path / "words.txt"; words.write_text("zebra\nquixotic\n", encoding="utf-8")
    r = jand("eval", "--model", run / "model.pt", "--postprocess", "lbc", "--wordlist", words, "--out", tmp_path / "lines.csv", *SYNTH)
    table = [l for l in r.stdout.splitlines() if l.startswith("| ")]
    assert table[0].startswith("| stage | cer_corpus_sensitive | wer_corpus_sensitive")
    assert [l.split("|")[1].strip() for l in table[1:]] == ["none", "lbc"]
    assert "word list" in r.stdout and "frequency list (the language of run" in r.stdout  # the default lexicon
    rows = list(csv.DictReader(open(tmp_path / "lines.csv", encoding="utf-8")))
    assert len(rows) == 8 and {"id", "ref", "hyp", "hyp_lbc", "char_edits_lbc", "word_edits_lbc"} <= set(rows[0])
    assert not any(k.startswith("hyp_t5") for k in rows[0])


def test_train_corrector_writes_a_loadable_corrector(corrector):
    c = T5Corrector.load(corrector, device="cpu")
    assert c.steps_trained == 3 and c.cfg.d_model == 32 and c.cfg.context_lines == 1
    summary = json.loads((corrector / "training.json").read_text(encoding="utf-8"))
    assert summary["val_lines"] == 8 and summary["train_lines"] == 16 and summary["steps"] == 3
    tuning = summary["val_lines_tuning"]  # the other validation pages are held out to choose the guard
    assert json.loads((corrector / "confusion.json").read_text(encoding="utf-8"))["n_pairs"] == tuning < 8
    assert not [p for p in corrector.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_eval_all_stages_with_a_corrector(run, corrector, tmp_path):
    r = jand("eval", "--model", run / "model.pt", "--postprocess", "all", "--corrector", corrector, "--out", tmp_path / "l.csv", *SYNTH)
    stages = [l.split("|")[1].strip() for l in r.stdout.splitlines() if l.startswith("| ")][1:]
    assert stages == list(STAGES)
    rows = list(csv.DictReader(open(tmp_path / "l.csv", encoding="utf-8")))
    assert {"hyp_lbc", "hyp_t5", "hyp_t5+lbc"} <= set(rows[0])


def test_clear_errors(run, corrector, tmp_path):
    for args, msg in [(["--postprocess", "spell"], "unknown post-processing stage 'spell'"),
                      (["--postprocess", "t5"], "needs --corrector"),
                      (["--postprocess", "t5", "--corrector", tmp_path / "nope"], "no such directory"),
                      (["--postprocess", "t5", "--corrector", run], "no corrector.json")]:
        r = jand("eval", "--model", run / "model.pt", *args, ok=False)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.strip().startswith("jand: error:") and len(r.stderr.strip().splitlines()) == 1
    r = jand("train-corrector", "--run", run, "--out", run / "c", ok=False)
    assert r.returncode == 2 and "run folder" in r.stderr
    r = jand("train-corrector", "--run", run, "--out", tmp_path / "c", "--pretrained", tmp_path / "t5-small", ok=False)
    assert r.returncode == 2 and "jand never downloads" in r.stderr
    (tmp_path / "busy").mkdir(); (tmp_path / "busy" / "x.txt").write_text("x")
    r = jand("train-corrector", "--run", run, "--out", tmp_path / "busy", ok=False)
    assert r.returncode == 2 and "not a jand corrector folder" in r.stderr


def test_help_documents_the_post_processing_options():
    assert "train-corrector" in jand("--help").stdout
    h = jand("eval", "--help").stdout
    assert "--postprocess" in h and "--corrector" in h and "--wordlist" in h and "t5+lbc" in h
    h = jand("train-corrector", "--help").stdout
    for opt in ("--run", "--out", "--pretrained", "--steps", "--context-lines", "--beam", "--no-guard"):
        assert opt in h


def test_eval_unknown_lexicon_language_fails_before_reading(run):
    r = jand("eval", "--model", run / "model.pt", "--postprocess", "lbc", "--lexicon", "xx", *SYNTH, ok=False)
    assert r.returncode != 0 and "no frequency list for language 'xx'" in r.stderr and "CER" not in r.stdout


def test_pretrain_then_fine_tune_on_a_run(run, tmp_path):
    pre = tmp_path / "pre"
    r = jand("pretrain-corrector", "--out", pre, "--steps", "2", "--lines", "10", "--device", "cpu", "--threads", "1",
             "--no-progress-bar", *TINY_T5)
    assert "pretrained corrector written to" in r.stdout and (pre / "training.json").is_file()
    assert json.loads((pre / "training.json").read_text())["lines"] == 20  # 10 per language, en and fr
    out = tmp_path / "tuned"
    r = jand("train-corrector", "--run", run, "--out", out, "--pretrained", pre, "--steps", "2", "--copies", "1",
             "--device", "cpu", "--threads", "1", "--no-progress-bar", "--kind", "seq2seq")
    summary = json.loads((out / "training.json").read_text())
    assert summary["pretrained"] == str(pre) and summary["steps"] == 2
    assert summary["corrector"]["d_model"] == json.loads((pre / "corrector.json").read_text())["config"]["d_model"]


TINY_EDIT = ["--d-model", "32", "--encoder-layers", "1", "--num-heads", "2", "--d-kv", "16", "--d-ff", "64"]


def test_edit_corrector_is_the_default_pretrained_then_fine_tuned_then_used(run, tmp_path):
    pre, out = tmp_path / "pre", tmp_path / "tuned"
    jand("pretrain-corrector", "--out", pre, "--steps", "2", "--lines", "10", "--device", "cpu", "--threads", "1",
         "--no-progress-bar", *TINY_EDIT)
    assert json.loads((pre / "corrector.json").read_text())["format"] == "jand-edit-corrector-1"
    jand("train-corrector", "--run", run, "--out", out, "--pretrained", pre, "--steps", "2", "--copies", "1",
         "--device", "cpu", "--threads", "1", "--no-progress-bar", "--lr", "0.0001")
    summary = json.loads((out / "training.json").read_text())
    assert summary["corrector"]["d_model"] == 32 and summary["corrector"]["lr"] == 0.0001  # its shape, new options
    r = jand("eval", "--model", run / "model.pt", "--postprocess", "t5", "--corrector", out, *SYNTH)
    assert [l.split("|")[1].strip() for l in r.stdout.splitlines() if l.startswith("| ")][1:] == ["none", "t5"]
    r = jand("train-corrector", "--run", run, "--out", tmp_path / "x", "--pretrained", pre, "--kind", "seq2seq",
             ok=False)
    assert r.returncode == 2 and "is an edit corrector" in r.stderr


def test_edit_corrector_guard_is_chosen_on_held_out_pages_unless_told_not_to(run, tmp_path):
    common = ["--run", run, "--steps", "2", "--copies", "1", "--device", "cpu", "--threads", "1", "--no-progress-bar",
              "--min-prob", "0.55", *TINY_EDIT]
    jand("train-corrector", "--out", tmp_path / "chosen", *common)
    summary = json.loads((tmp_path / "chosen" / "training.json").read_text())
    guard = summary["guard"]
    assert guard["lines"] + summary["val_lines_tuning"] == summary["val_lines"] == 8
    assert guard["min_prob"] in [r["min_prob"] for r in guard["sweep"]]
    assert json.loads((tmp_path / "chosen" / "corrector.json").read_text())["config"]["min_prob"] == guard["min_prob"]
    jand("train-corrector", "--out", tmp_path / "kept", "--guard-share", "0", *common)
    summary = json.loads((tmp_path / "kept" / "training.json").read_text())
    assert summary["guard"] is None and summary["val_lines_tuning"] == 8 and summary["corrector"]["min_prob"] == 0.55
