"""Bad inputs across the readers, the predictor and the command line: every one ends in a clear outcome.

Each case breaks one thing in a tiny input made in `tmp_path` and asserts exactly one of:

- `OK`: the input is odd but valid (a JPEG named `.png`, a CMYK or 16-bit scan) and is read;
- `SKIP`: a reader skips the line and counts it in its `Report` under a named reason with the file named —
  and nothing is lost silently: lines kept + lines skipped = lines present;
- `ERROR`: a `jand.core.DataError` whose message names the file and the problem;
- `CLI`: `jand.cli.main([...])` returns 2 and prints exactly one line, `jand: error: <file>: <problem>`,
  with no traceback.

`tests/test_readers.py` holds the per-reader table (every reader × missing / empty / corrupt files, malformed rows,
published counts); this file covers what crosses module boundaries: odd image formats end to end, split and XML
files that lie, data spec strings, model files and checkpoints that do not fit, and the CLI's one-line errors.
"""
from __future__ import annotations
import io, json, re, shutil, struct, subprocess, sys, time, zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import jand.cli
from jand.charset import Charset
from jand.core import DataError, Line
from jand.images import load_image
from jand.loading import LineDataset
from jand.model import HTRJAND, Predictor, load_model, student_config
from jand.store import save_model
from jand.readers import read_bentham, read_iam, read_rimes, write_bentham, write_iam, write_rimes
from jand.formats import read_folder, write_folder
from jand.training import save_checkpoint

torch.set_num_threads(1)
OK, SKIP, ERROR, CLI = "ok", "skip", "error", "cli"

# ---------------------------------------------------------------- tiny inputs ----------------------------------
TEXTS = ["a bad cab", "dab a cad", "bead face", "cafe bad", "dead beef", "fab deed", "ace cade", "bed fad", "add bead"]
SPLITS = ["train"] * 3 + ["val"] * 3 + ["test"] * 3
IDS = [f"p01-00{i // 3}-{i % 3:02d}" for i in range(9)]
N = len(IDS)


def ink(h=20, w=60, seed=0) -> np.ndarray:
    "A fake line image: dark strokes on white paper."
    a = np.full((h, w), 255, np.uint8)
    a[5:15, 4:-4:3] = 30 + seed
    return a


def samples(texts=TEXTS):
    return [(Line(lid, t, "", split=s, writer=f"w{i // 3}"), ink(seed=i)) for i, (lid, t, s) in enumerate(zip(IDS, texts, SPLITS))]


def folder(tmp, texts=TEXTS) -> Path: return write_folder(samples(texts), tmp / "f")
def first_img(root: Path) -> Path: return root / "train" / f"{IDS[0]}.png"
def first_gt(root: Path) -> Path: return root / "train" / f"{IDS[0]}.gt.txt"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, w=60_000, h=60_000):
    "A 1-bit PNG that claims 3.6 billion pixels in a few hundred bytes (a decompression bomb's header)."
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * (w // 8 + 1) * 4))
                     + _chunk(b"IEND", b""))


def save_frames(path: Path, fmt: str):
    frames = [Image.fromarray(ink()), Image.fromarray(255 - ink())]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])


# Every way an image file can be odd or broken, and what reading it must give (None = it reads fine).
IMAGES = {
    "zero-byte": (lambda p: p.write_bytes(b""), "image file is empty (0 bytes)"),
    "text-named-png": (lambda p: p.write_text("hello, I am a text file\n"), "not a readable image"),
    "truncated-png": (lambda p: p.write_bytes(p.read_bytes()[:70]), "truncated"),
    "bad-crc-png": (lambda p: p.write_bytes(p.read_bytes()[:40] + bytes([p.read_bytes()[40] ^ 0xFF]) + p.read_bytes()[41:]), "not a readable image"),
    "decompression-bomb": (bomb_png, "image is too large to read safely"),
    "animated-gif": (lambda p: save_frames(p, "GIF"), "2 frames"),
    "animated-apng": (lambda p: save_frames(p, "PNG"), "2 frames"),
    "multi-page-tiff": (lambda p: save_frames(p, "TIFF"), "2 frames"),
    "a-folder": (lambda p: (p.unlink(), p.mkdir()), "expected an image file, found a folder"),
    "lab-tiff": (lambda p: Image.fromarray(ink()).convert("RGB").convert("LAB").save(p, format="TIFF"), None),
    "jpeg-named-png": (lambda p: Image.fromarray(ink()).save(p, format="JPEG"), None),
    "cmyk-jpeg": (lambda p: Image.fromarray(ink()).convert("CMYK").save(p, format="JPEG"), None),
    "16-bit-png": (lambda p: Image.fromarray(ink().astype(np.uint16) * 257).save(p, format="PNG"), None),
    "gray-alpha-png": (lambda p: Image.fromarray(ink()).convert("LA").save(p, format="PNG"), None),
    "float-tiff-with-nan": (lambda p: Image.fromarray(np.where(ink() < 128, 0.0, 1.0).astype(np.float32) * np.where(np.arange(60) % 7, 1, np.nan)).save(p, format="TIFF"), None),
}


# ---------------------------------------------------------------- images: load_image and the folder reader ----
@pytest.mark.parametrize("name", IMAGES)
def test_image_through_load_image(tmp_path, name):
    p = tmp_path / "line.png"; Image.fromarray(ink()).save(p)
    make, problem = IMAGES[name]; make(p)
    if problem is None:
        a = load_image(p)
        assert a.dtype == np.uint8 and a.shape == (20, 60) and a.min() < 100 and a.max() > 200  # ink on paper, not all one colour
    else:
        with pytest.raises(DataError) as e: load_image(p)
        assert str(p) in str(e.value) and problem in str(e.value), str(e.value)


@pytest.mark.parametrize("name", IMAGES)
def test_image_through_the_folder_reader(tmp_path, name):
    root = folder(tmp_path)
    make, problem = IMAGES[name]; make(first_img(root))
    if name == "a-folder":  # a folder named like an image is not an image file: the line's .gt.txt has no image
        problem, reason, where = "", ".gt.txt without image", str(first_gt(root))
    else:
        reason = "image file is empty (0 bytes)" if problem and "0 bytes" in problem else "image unreadable"
        where = str(first_img(root))
    lines, rep = read_folder(root, check_images="full")
    assert len(lines) + rep.n_skipped == N, str(rep)  # nothing lost silently
    if problem is None:
        assert rep.n_skipped == 0 and len(lines) == N, str(rep)
    else:
        assert rep.skipped[reason] == 1 and len(lines) == N - 1, str(rep)
        assert any(where in ex and (problem in ex or problem in reason) for ex in rep.examples[reason]), str(rep)


# ---------------------------------------------------------------- the CLI ----------------------------------------
CS = Charset.from_texts(TEXTS)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_model(tmp_path_factory.mktemp("model") / "model.pt", HTRJAND(student_config(len(CS))).eval(), CS)


def cli(capsys, *argv) -> tuple:
    "`(exit status, stdout, stderr)` of `jand ARGV`."
    rc = jand.cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_one_line_error(rc, err, *needles):
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("jand: error: "), err
    for n in needles: assert str(n) in err, err


@pytest.mark.parametrize("name", IMAGES)
def test_image_through_cli_predict(tmp_path, capsys, model_file, name):
    p = tmp_path / "line.png"; Image.fromarray(ink()).save(p)
    make, problem = IMAGES[name]; make(p)
    rc, out, err = cli(capsys, "predict", "--model", model_file, p)
    if name == "a-folder":  # a folder is searched for images; this one holds none
        assert_one_line_error(rc, err, p, "no image files found")
    elif problem is None:
        assert rc == 0 and err == "" and out.startswith(f"{p}\t"), err
    else:
        assert_one_line_error(rc, err, p, problem)


def payload(model_file: Path) -> dict:
    return torch.load(model_file, weights_only=True)


def write_payload(path: Path, d) -> Path:
    buf = io.BytesIO(); torch.save(d, buf); path.write_bytes(buf.getvalue()); return path


class Foreign:  # a class that `torch.load(weights_only=True)` must refuse to rebuild
    pass


def put(path: Path, data) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data); return path


MODEL_FILES = {
    # name: (make the file from the good one in `tmp`, the problem the message names)
    "missing": (lambda m, t: t / "nope.pt", "model file not found"),
    "a-folder": (lambda m, t: (t / "dir.pt").mkdir() or t / "dir.pt", "is a folder"),
    "zero-byte": (lambda m, t: put(t / "z.pt", b""), "not a readable jand model file"),
    "truncated": (lambda m, t: put(t / "cut.pt", m.read_bytes()[:5000]), "not a readable jand model file (corrupt or truncated?)"),
    "text-file": (lambda m, t: put(t / "m.pt", "not a model"), "not a readable jand model file"),
    "foreign-pickle": (lambda m, t: write_payload(t / "f.pt", {"format": "jand-model", "x": Foreign()}), "refused"),
    "foreign-state-dict": (lambda m, t: write_payload(t / "sd.pt", payload(m)["state_dict"]), "not a jand model file"),
    "newer-format": (lambda m, t: write_payload(t / "v9.pt", {**payload(m), "format_version": 9}), "written by a newer jand (model format 9"),
    "format-version-not-a-number": (lambda m, t: write_payload(t / "vs.pt", {**payload(m), "format_version": "2"}), "format version '2'"),
    "no-weights": (lambda m, t: write_payload(t / "nw.pt", {k: v for k, v in payload(m).items() if k != "state_dict"}), "no weights"),
    "weights-not-a-dict": (lambda m, t: write_payload(t / "wl.pt", {**payload(m), "state_dict": [1, 2]}), "no weights"),
    "weights-of-another-charset": (lambda m, t: write_payload(t / "oc.pt", {**payload(m), "charset": Charset.from_texts(["xyz"]).to_dict()}), "the charset and the weights do not belong together"),
    "unknown-config-option": (lambda m, t: write_payload(t / "uc.pt", {**payload(m), "config": {**payload(m)["config"], "wings": 2}}), "config is invalid"),
}


@pytest.mark.parametrize("name", MODEL_FILES)
def test_model_file_through_cli_predict(tmp_path, capsys, model_file, name):
    make, problem = MODEL_FILES[name]
    bad = make(model_file, tmp_path)
    img = tmp_path / "line.png"; Image.fromarray(ink()).save(img)
    rc, out, err = cli(capsys, "predict", "--model", bad, img)
    assert_one_line_error(rc, err, bad, problem)


def run_folder(tmp: Path, model_file: Path, **train_state) -> Path:
    "A run folder whose `checkpoints/last.pt` is a real checkpoint of the tiny model (no training needed)."
    from jand.training import _rng_state
    from jand.train_config import TrainConfig
    model, cs, _ = load_model(model_file)
    opt = torch.optim.AdamW(model.parameters())
    state = {"config": TrainConfig(model="student", epochs=2).to_dict(), "state": {"epoch": 1, "batch": 0, "step": 3, "done": False},
             "optimizer": opt.state_dict(), "rng": _rng_state(), **train_state}
    save_checkpoint(tmp / "run" / "checkpoints" / "last.pt", model, cs, state)
    return tmp / "run"


def last(run: Path) -> Path: return run / "checkpoints" / "last.pt"


RESUMES = {
    # name: (break the run folder, the problem the message names)
    "truncated-checkpoint": (lambda r, m: last(r).write_bytes(last(r).read_bytes()[:3000]), "not a readable jand model file (corrupt or truncated?)"),
    "zero-byte-checkpoint": (lambda r, m: last(r).write_bytes(b""), "not a readable jand model file"),
    "model-file-not-checkpoint": (lambda r, m: shutil.copy(m, last(r)), "not a training checkpoint"),
    "checkpoint-newer-format": (lambda r, m: write_payload(last(r), {**payload(last(r)), "format_version": 2}), "written by a newer jand"),
    "checkpoint-unknown-train-option": (lambda r, m: write_payload(last(r), {**payload(last(r)), "train": {**payload(last(r))["train"], "config": {"model": "student", "wings": 2}}}), "unknown TrainConfig options: ['wings']"),
    "checkpoint-without-optimizer": (lambda r, m: write_payload(last(r), {**payload(last(r)), "train": {k: v for k, v in payload(last(r))["train"].items() if k != "optimizer"}}), "training state lacks optimizer"),
    "no-checkpoint": (lambda r, m: last(r).unlink(), "no checkpoint to resume from"),
}


@pytest.mark.parametrize("name", RESUMES)
def test_checkpoint_through_cli_train_resume(tmp_path, capsys, model_file, name):
    run = run_folder(tmp_path, model_file)
    make, problem = RESUMES[name]; make(run, model_file)
    rc, out, err = cli(capsys, "train", "--out", run, "--resume", "--no-progress-bar")
    assert_one_line_error(rc, err, last(run), problem)


DATA_SPECS = {
    # name: (the spec, given `tmp`; the part and problem the message names)
    "empty-spec": (lambda t: "", "empty data spec"),
    "corpus-without-path": (lambda t: "iam", "data spec part 'iam': missing path"),
    "zero-weight": (lambda t: "synth@0", "bad weight '0'"),
    "unknown-kind": (lambda t: "latin:/data", "unknown source kind 'latin'"),
    "unknown-domain": (lambda t: "synth:de", "unknown synthetic domain(s) 'de'"),
    "same-source-twice": (lambda t: "synth+synth@2", "duplicate source"),
    "missing-path": (lambda t: f"folder:{t / 'nowhere'}", "does not exist"),
    "path-is-a-file": (lambda t: (t / "file.txt").write_text("x") and f"folder:{t / 'file.txt'}", "is not a folder"),
    "iam-root-without-lines-txt": (lambda t: (t / "IAM").mkdir() or f"iam:{t / 'IAM'}", "IAM lines.txt not found"),
    "empty-folder-corpus": (lambda t: (t / "empty").mkdir() or f"folder:{t / 'empty'}", "no usable lines"),
}


@pytest.mark.parametrize("name", DATA_SPECS)
def test_data_spec_through_cli_train(tmp_path, capsys, name):
    spec, problem = DATA_SPECS[name]
    rc, out, err = cli(capsys, "train", "--out", tmp_path / "run", "--data", spec(tmp_path), "--no-progress-bar")
    assert_one_line_error(rc, err, problem)
    assert not (tmp_path / "run").exists()  # nothing written before the data is known to be good


def test_cli_eval_on_lines_outside_the_model_charset(tmp_path, capsys, model_file):
    root = folder(tmp_path, texts=TEXTS[:8] + ["Zebra §"])  # the last line (a test line) has characters the model never saw
    rc, out, err = cli(capsys, "eval", "--model", model_file, "--data", f"folder:{root}", "--split", "test")
    assert_one_line_error(rc, err, IDS[-1], "characters not in the charset", "'Z' (U+005A)", "'§' (U+00A7)")


def test_cli_distill_from_a_teacher_of_another_charset(tmp_path, capsys, model_file):
    root = folder(tmp_path, texts=["Größe"] + TEXTS[1:])  # a train line with characters the Teacher cannot emit
    rc, out, err = cli(capsys, "distill", "--out", tmp_path / "run", "--teacher", model_file, "--data", f"folder:{root}", "--no-progress-bar")
    assert_one_line_error(rc, err, IDS[0], "characters not in the charset", "'G' (U+0047)")


def test_cli_train_out_is_a_file(tmp_path, capsys):
    (tmp_path / "run").write_text("I am a file")
    rc, out, err = cli(capsys, "train", "--out", tmp_path / "run", "--data", "synth", "--synth-train", "4", "--no-progress-bar")
    assert_one_line_error(rc, err, tmp_path / "run", "not a folder")


def test_cli_predict_out_is_a_folder(tmp_path, capsys, model_file):
    img = tmp_path / "line.png"; Image.fromarray(ink()).save(img)
    (tmp_path / "out.txt").mkdir()
    rc, out, err = cli(capsys, "predict", "--model", model_file, img, "--out", tmp_path / "out.txt")
    assert_one_line_error(rc, err, tmp_path / "out.txt", "is a folder")


def test_cli_predict_out_under_a_file(tmp_path, capsys, model_file):
    img = tmp_path / "line.png"; Image.fromarray(ink()).save(img)
    (tmp_path / "file").write_text("x")
    rc, out, err = cli(capsys, "predict", "--model", model_file, img, "--out", tmp_path / "file" / "out.txt")
    assert_one_line_error(rc, err, tmp_path / "file" / "out.txt", "cannot write")


@pytest.mark.parametrize("command", ["predict", "train"])
def test_cli_unknown_device(tmp_path, capsys, model_file, command):
    img = tmp_path / "line.png"; Image.fromarray(ink()).save(img)
    argv = (["predict", "--model", model_file, img] if command == "predict" else
            ["train", "--out", tmp_path / "run", "--synth-train", "4", "--no-progress-bar"])
    rc, out, err = cli(capsys, *argv, "--device", "gpu0")
    assert_one_line_error(rc, err, "'gpu0'", "device")


# ---------------------------------------------------------------- the predictor, on arrays -----------------------
ARRAYS = {
    "empty": (np.zeros((0, 0), np.uint8), "image 1 of 2: the image is empty (0×0)"),
    "rgb": (np.zeros((20, 60, 3), np.uint8), "image 1 of 2: expected a 2-D uint8 grayscale image, got uint8 (20, 60, 3)"),
    "float": (np.zeros((20, 60)), "image 1 of 2: expected a 2-D uint8 grayscale image, got float64 (20, 60)"),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_predictor_refuses_odd_arrays(model_file, name):
    a, problem = ARRAYS[name]
    with pytest.raises(ValueError, match=re.escape(problem)):  # a DataError, or a ValueError naming the image's position
        Predictor.from_file(model_file).predict([a, ink()])


def test_predictor_names_the_bad_file_in_a_batch(tmp_path, model_file):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.fromarray(ink()).save(good); bad.write_bytes(b"GIF89a but not really")
    with pytest.raises(DataError, match="bad.png: not a readable image"):
        Predictor.from_file(model_file).predict([good, bad])


def test_load_model_with_another_charset(model_file):
    with pytest.raises(DataError, match=r"model.pt: the model was trained with a different charset .*new here: 'xyz'"):
        load_model(model_file, Charset.from_texts(TEXTS + ["xyz"]))


# ---------------------------------------------------------------- transcriptions ----------------------------------
TRANSCRIPTIONS = {
    # name: (bytes of the first line's .gt.txt, outcome, reason or None)
    "latin-1": (b"caf\xe9 bad\n", SKIP, "transcription is not UTF-8"),
    "utf-16-with-bom": ("cafe bad\n".encode("utf-16"), SKIP, "transcription is not UTF-8"),
    "utf-16-without-bom": ("cafe bad\n".encode("utf-16-le"), SKIP, "transcription is not UTF-8"),
    "empty-file": (b"", SKIP, "empty transcription"),
    "only-whitespace": (b" \t\r\n\n", SKIP, "empty transcription"),
    "utf-8-with-bom-and-crlf": ("\ufeffcafé bad\r\n".encode("utf-8"), OK, None),
    "two-lines-joined": (b"cafe\nbad\n", OK, None),
}


@pytest.mark.parametrize("name", TRANSCRIPTIONS)
def test_transcription_through_the_folder_reader(tmp_path, name):
    root = folder(tmp_path)
    data, outcome, reason = TRANSCRIPTIONS[name]
    first_gt(root).write_bytes(data)
    lines, rep = read_folder(root)
    assert len(lines) + rep.n_skipped == N, str(rep)
    if outcome == OK:
        assert rep.n_skipped == 0 and {l.id: l.text for l in lines}[IDS[0]] in ("café bad", "cafe bad"), str(rep)
    else:
        assert rep.skipped[reason] == 1 and any(str(first_gt(root)) in ex for ex in rep.examples[reason]), str(rep)


def test_unknown_characters_policies_count_or_name_the_line(tmp_path):
    lines, _ = read_folder(folder(tmp_path, texts=TEXTS[:4] + ["Zebra"] + TEXTS[5:]))
    with pytest.raises(DataError, match=rf"folder:{IDS[4]}: characters not in the charset: 'Z'"):
        LineDataset(lines, CS, name="folder")
    ds = LineDataset(lines, CS, name="folder", policy="drop")
    assert len(ds) + ds.report.n_skipped == N and ds.report.skipped["characters not in the charset"] == 1


# ---------------------------------------------------------------- split files, lists and XML that lie --------------
def iam(tmp) -> Path: return write_iam(samples(), tmp / "IAM")
def uttlist(root, split="train"): return root / "splits" / "aachen" / f"{ {'val': 'validation'}.get(split, split)}.uttlist"


def add(path: Path, data):
    path.write_bytes(path.read_bytes() + (data.encode() if isinstance(data, str) else data))


def with_bom_and_crlf(path: Path):
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))


def first_data_row_with_bom(root: Path):
    p = root / "ascii" / "lines.txt"
    rows = [r for r in p.read_text().splitlines() if not r.startswith("#")]
    p.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode())


LISTS = {
    # name: (corpus, break it, outcome, reason / problem, file named, lines present)
    "iam-split-file-latin-1": ("iam", lambda r: add(uttlist(r), b"caf\xe9\n"), ERROR, "not UTF-8 text", "train.uttlist", N),
    "iam-split-file-is-an-image": ("iam", lambda r: Image.fromarray(ink()).save(uttlist(r), format="PNG"), ERROR, "not UTF-8 text", "train.uttlist", N),
    "iam-split-id-with-no-line": ("iam", lambda r: add(uttlist(r, "test"), "p09-999-00\n"), SKIP, "split entry names no line or form of lines.txt", "test.uttlist:4 (p09-999-00)", N + 1),
    "iam-id-in-two-splits": ("iam", lambda r: add(uttlist(r, "val"), f"{IDS[0]}\n"), ERROR, f"line {IDS[0]} is also listed in train.uttlist", "validation.uttlist", N),
    "iam-form-in-two-splits": ("iam", lambda r: add(uttlist(r, "test"), "p01-000\n"), ERROR, "cannot be in two splits", "test.uttlist", N),
    "iam-duplicate-row-id": ("iam", lambda r: add(r / "ascii" / "lines.txt", f"{IDS[3]} ok 1 1 0 0 9 9 a|dab\n"), SKIP, "duplicate id", f"{IDS[3]} in", N + 1),
    "iam-row-with-nul-bytes": ("iam", lambda r: add(r / "ascii" / "lines.txt", "p01-000-09 ok 1 1 0 0 9 9 a\0b\n"), SKIP, "row is not UTF-8 text", "lines.txt:", N + 1),
    "iam-split-files-with-bom-and-crlf": ("iam", lambda r: [with_bom_and_crlf(uttlist(r, s)) for s in ("train", "validation", "test")], OK, None, None, N),
    "iam-lines-txt-with-bom-and-crlf": ("iam", first_data_row_with_bom, OK, None, None, N),
    "bentham-partition-with-crlf-and-paths": ("bentham", lambda r: (r / "Partitions" / "TrainLines.lst").write_text("".join(f"Images\\Lines\\{i}.png\r\n" for i in IDS[:3])), OK, None, None, N),
    "bentham-partition-latin-1": ("bentham", lambda r: add(r / "Partitions" / "TestLines.lst", b"\xe9t\xe9\n"), ERROR, "not UTF-8 text", "TestLines.lst", N),
    "bentham-transcription-latin-1": ("bentham", lambda r: (r / "Transcriptions" / f"{IDS[4]}.txt").write_bytes(b"d\xe9ad\n"), SKIP, "transcription is not UTF-8", f"{IDS[4]}.txt", N),
    "bentham-line-in-no-partition": ("bentham", lambda r: (r / "Partitions" / "ValidationLines.lst").write_text(f"{IDS[3]}\n{IDS[4]}\n"), SKIP, "not in any partition file", IDS[5], N),
    "rimes-truncated-xml": ("rimes", lambda r: (r / "training_2011.xml").write_text((r / "training_2011.xml").read_text()[:-30]), ERROR, "malformed XML at line", "training_2011.xml", N),
    "rimes-xml-latin-1-bytes": ("rimes", lambda r: (r / "eval_2011_annotated.xml").write_bytes((r / "eval_2011_annotated.xml").read_bytes().replace(b"bead", b"b\xe9ad")), ERROR, "malformed XML", "eval_2011_annotated.xml", N),
    "rimes-xml-entity-bomb": ("rimes", lambda r: (r / "training_2011.xml").write_text(ENTITY_BOMB), ERROR, "malformed XML", "training_2011.xml", N),
    "rimes-xml-not-a-document-list": ("rimes", lambda r: (r / "training_2011.xml").write_text("<html><body>Not RIMES</body></html>"), ERROR, "no SinglePage element", "training_2011.xml", N),
    "rimes-page-without-filename": ("rimes", lambda r: (r / "training_2011.xml").write_text((r / "training_2011.xml").read_text().replace('FileName="images_gray/train2011-1.png"', "", 1)), SKIP, "SinglePage without FileName", "training_2011.xml", N),
}
ENTITY_BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">' + "".join(
    f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)) + ']>\n<DocumentList>&i;</DocumentList>\n')


def corpus(kind: str, tmp: Path) -> Path:
    if kind == "iam": return iam(tmp)
    if kind == "bentham": return write_bentham(samples(), tmp / "bentham")
    return write_rimes(samples(), tmp / "rimes", lines_per_page=3, page_ext=".png")


def read(kind: str, root: Path):
    reader = {"iam": read_iam, "bentham": read_bentham, "rimes": read_rimes}[kind]
    return reader(root, check_counts=False, **({"val_fraction": 0.0} if kind == "rimes" else {}))


@pytest.mark.parametrize("name", LISTS)
def test_split_files_lists_and_xml(tmp_path, name):
    kind, make, outcome, text, where, present = LISTS[name]
    root = corpus(kind, tmp_path); make(root)
    if outcome == ERROR:
        with pytest.raises(DataError) as e: read(kind, root)
        assert text in str(e.value) and where in str(e.value), str(e.value)
        return
    lines, rep = read(kind, root)
    assert len(lines) + rep.n_skipped == present, str(rep)
    if outcome == OK:  # every line read, in its own split
        assert rep.n_skipped == 0 and len(lines) == N, str(rep)
        assert {l.id: l.split for l in lines} == dict(zip(IDS, SPLITS)), str(rep)
    else:
        assert rep.n_skipped == rep.skipped[text] >= 1, str(rep)
        assert any(where in ex for ex in rep.examples[text]), str(rep)


# ---------------------------------------------------------------- issue 14: layouts as distributed -----------------
# Written from the published format descriptions by `tests/layouts.py`, then broken one thing at a time.
import layouts  # noqa: E402
from jand.formats import read_alto, read_page, read_parquet  # noqa: E402


def parquet_rows(path: Path, images: list, texts: list):
    import pyarrow as pa, pyarrow.parquet as pq
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"image": pa.array([None if b is None else {"bytes": b, "path": None} for b in images],
                                               pa.struct([("bytes", pa.binary()), ("path", pa.string())])), "text": texts}), path)
    return path


def png(a=None) -> bytes: return layouts.encode(ink() if a is None else a)


SPEC_OPTIONS = {
    # name: (the spec, given `tmp`; what the one-line error says)
    "unknown-spec-option": (lambda t: f"folder:{t}?flat_splt=val", "unknown option 'flat_splt' for folder; the folder reader takes flat_split"),
    "bad-bool-option": (lambda t: f"iam:{t}?check_counts=perhaps", "option check_counts='perhaps': check_counts is true or false"),
    "bad-number-option": (lambda t: f"folder:{t}?val_fraction=lots", "val_fraction takes a number"),
    "option-given-twice": (lambda t: f"folder:{t}?flat_split=val&flat_split=test", "reader option(s) flat_split given twice"),
    "option-without-key": (lambda t: f"folder:{t}?=val", "bad reader option '=val'"),
    "object-option": (lambda t: f"iam:{t}?norm=none", "option norm takes an object"),
    "synth-with-options": (lambda t: "synth?seed=3", "a synthetic source takes no reader options"),
    "iam-subset-counts": (lambda t: f"iam:{layouts.iam_official(samples(), t / 'IAM')}",
                          "published iam official split (train has 3 lines, published 6161"),
    "iam-no-split-files": (lambda t: f"iam:{layouts.iam_lines(samples(), t / 'IAM')}", "no IAM split files found"),
    "iam-official-asked-not-there": (lambda t: f"iam:{layouts.iam_openslr(samples(), t / 'IAM')}?split=official",
                                     "split file not found: expected trainset.txt"),
    "parquet-missing-column": (lambda t: f"parquet:{_text_only(t / 'p/data/train.parquet')}", "parquet column(s) image missing (columns: text)"),
    "parquet-not-parquet": (lambda t: f"parquet:{layouts.put(t / 'train.parquet', b'PAR1 but not really')}", "not a readable parquet file"),
    "page-without-image": (lambda t: f"page:{_page_without_image(t / 'pages')}", "no usable lines: kept 0, skipped 3: 3 × page names no image file"),
    "alto-in-mm10": (lambda t: f"alto:{layouts.alto_xml(samples(), t / 'alto', unit='mm10')}",
                     "9 × ALTO coordinates not in pixels (MeasurementUnit) (e.g. "),
    "val-split-empty": (lambda t: f"folder:{_no_val(t / 'f')}", "val: the dataset is empty: no lines to load (folder has no val lines (train 3, test 3)"),
}


def _text_only(path: Path) -> Path:
    import pyarrow as pa, pyarrow.parquet as pq
    path.parent.mkdir(parents=True, exist_ok=True); pq.write_table(pa.table({"text": ["a"]}), path)
    return path


def _page_without_image(root: Path) -> Path:
    layouts.page_xml(samples()[:3], root)
    xml = root / "train" / "page_0001.xml"
    xml.write_text(re.sub(r' imageFilename="[^"]*"', "", xml.read_text()))
    return root


def _no_val(root: Path) -> Path:
    return layouts.folder_repeated([s for s in samples() if s[0].split != "val"], root)


@pytest.mark.parametrize("name", SPEC_OPTIONS)
def test_layouts_and_spec_options_through_cli_train(tmp_path, capsys, name):
    spec, problem = SPEC_OPTIONS[name]
    rc, out, err = cli(capsys, "train", "--out", tmp_path / "run", "--data", spec(tmp_path), "--model", "student", "--height", "32",
                       "--epochs", "1", "--no-progress-bar")
    assert_one_line_error(rc, err, problem)


def test_parquet_rows_without_text_or_image_are_counted(tmp_path):
    parquet_rows(tmp_path / "data" / "train.parquet", [png(), None, png(), b"not an image"], ["a bad cab", "dab", None, "bead"])
    lines, rep = read_parquet(tmp_path)
    assert [l.id for l in lines] == ["data/train-000000"] and rep.kept == 1 and rep.n_skipped == 3, str(rep)
    assert rep.skipped["text is null"] == 1 and rep.skipped["image unreadable"] == 2, str(rep)
    assert any("image bytes missing" in e for e in rep.examples["image unreadable"]), str(rep)
    assert any("train.parquet#3" in e and "not a readable image" in e for e in rep.examples["image unreadable"]), str(rep)


def test_page_problems_are_counted_with_the_file(tmp_path):
    root = layouts.page_xml(samples(), tmp_path / "pages", "2019")
    (root / "val" / "page_0001.png").unlink()  # a page image missing: its 3 lines
    xml = root / "test" / "page_0001.xml"
    text = xml.read_text().replace('<Coords points="6,', '<Coordz points="6,', 1)  # one line without geometry …
    xml.write_text(text.replace('<Baseline points="6,', '<Baselinz points="6,', 1))  # … not even a baseline
    layouts.put(root / "train" / "broken.xml", "<PcGts><Page imageFilename='x.png'><TextLine")  # malformed
    layouts.put(root / "train" / "mets.xml", "<mets><fileSec/></mets>")  # Transkribus's mets.xml: not PAGE
    layouts.put(root / "stray.xml", (root / "train" / "page_0001.xml").read_text())  # outside the split folders
    lines, rep = read_page(root)
    assert rep.kept == len(lines) == 5, str(rep)
    assert rep.skipped["image file not found"] == 3 and "val/page_0001.png" in rep.examples["image file not found"][0], str(rep)
    assert rep.skipped["line without a polygon or box"] == 1 and "test/page_0001.xml (line line_1)" in str(rep), str(rep)
    assert rep.skipped["malformed XML file"] == 1 and "broken.xml (line 1" in str(rep), str(rep)
    assert rep.skipped["XML file that is not PAGE"] == 1 and rep.skipped["outside the train/val/test folders"] == 3, str(rep)
    with pytest.raises(DataError, match="line without a polygon or box"): read_page(root, strict=True)  # the first problem, in file order


def test_page_image_named_by_another_machine_s_path_is_found_beside_the_xml(tmp_path):
    root = layouts.page_xml(samples(), tmp_path / "pages", "2013")
    xml = root / "train" / "page_0001.xml"
    xml.write_text(xml.read_text().replace('imageFilename="page_0001.png"',
                                           'imageFilename="C:\\Users\\ana\\Transkribus\\page_0001.png"'))
    lines, rep = read_page(root)
    assert rep.kept == len(lines) == N and not rep.n_skipped, str(rep)
    moved = "page image named by a path that does not exist here: read the file of its name beside the XML"
    assert rep.changed[moved] == 3 and "C:\\Users\\ana" in rep.examples[moved][0], str(rep)


def test_alto_lines_at_any_depth_and_polygon_crops(tmp_path):
    root = layouts.alto_xml(samples(), tmp_path / "alto")
    lines, rep = read_alto(root)
    assert rep.kept == 9 and lines[0].image.startswith("polygon:") and lines[0].id == "test/page_0001/line_1", str(rep)
    for l, (s, a) in zip(sorted(lines, key=lambda l: TEXTS.index(l.text)), samples()):
        assert np.array_equal(load_image(l.image, l.box), a)  # a rectangle polygon cuts exactly the line


def test_folder_real_duplicate_names_both_files(tmp_path):
    root = folder(tmp_path)
    for suffix in (".png", ".gt.txt"): shutil.copy(root / "train" / f"{IDS[0]}{suffix}", root / "val" / f"{IDS[0]}{suffix}")
    lines, rep = read_folder(root)
    assert rep.kept == N and rep.skipped["duplicate id"] == 1, str(rep)
    ex = rep.examples["duplicate id"][0]
    assert f"train/{IDS[0]}.gt.txt" in ex and f"val/{IDS[0]}.gt.txt" in ex and "the same image and text in two split folders" in ex, ex


def test_cli_predict_reads_every_readable_file(tmp_path, capsys, model_file):
    for k in range(3): Image.fromarray(ink(seed=k)).save(tmp_path / f"{k}.png")
    (tmp_path / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n but cut")
    Image.fromarray(np.full((900, 600), 255, np.uint8)).save(tmp_path / "page.png")
    rc, out, err = cli(capsys, "predict", "--model", model_file, tmp_path)
    assert rc == 1, err
    assert [r.split("\t")[0] for r in out.splitlines()] == [str(tmp_path / n) for n in ("0.png", "2.png", "page.png")]
    assert f"jand: {tmp_path / '1.png'}: " in err and "(not read)" in err and "1 of 4 image(s) could not be read" in err, err
    assert f"jand: warning: {tmp_path / 'page.png'}: 600×900 is taller than wide" in err, err
    (tmp_path / "0.png").write_bytes(b""); (tmp_path / "2.png").write_bytes(b"junk"); (tmp_path / "page.png").unlink()
    rc, out, err = cli(capsys, "predict", "--model", model_file, tmp_path)
    assert rc == 2 and out == "" and "none of the 3 images could be read" in err.splitlines()[-1], err
    assert "0.png: image file is empty (0 bytes) (not read)" in err, err


def test_cli_train_leaves_out_and_names_a_line_ctc_cannot_align(tmp_path, capsys):
    root = folder(tmp_path, texts=["bad cab " * 15] + TEXTS[1:])  # 119 characters (once stripped) on a 60-pixel line
    rc, out, err = cli(capsys, "check-data", f"folder:{root}")
    assert rc == 0 and f"warning: folder train: 1 line(s) CTC cannot align (training leaves them out), e.g. {IDS[0]}: " in out, out
    rc, out, err = cli(capsys, "train", "--out", tmp_path / "run", "--data", f"folder:{root}", "--model", "student",
                       "--epochs", "1", "--batch-size", "3", "--no-progress-bar")
    assert rc == 0, err
    assert "left out 1 training line(s) that CTC cannot align" in err and f"{IDS[0]}: 119 characters need 119 frames" in err, err
    assert list(json.loads((tmp_path / "run" / "unaligned.json").read_text())) == [IDS[0]]
    assert json.loads(out[out.index("{"):])["unaligned_lines"] == 1


def test_cli_second_training_into_a_busy_folder_fails_at_once(tmp_path, capsys):
    first = subprocess.Popen([str(Path(sys.executable).parent / "jand"), "train", "--out", str(tmp_path / "run"),
                              "--model", "student", "--synth-train", "400", "--height", "32", "--epochs", "100",
                              "--no-progress-bar"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if (tmp_path / "run" / ".lock").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert first.poll() is None, first.stderr.read()
        rc, out, err = cli(capsys, "train", "--out", tmp_path / "run", "--synth-train", "4", "--no-progress-bar")
        assert_one_line_error(rc, err, tmp_path / "run", f"another run (process {first.pid} on", "is writing to this folder")
    finally:
        first.kill(); first.wait()
    rc, out, err = cli(capsys, "train", "--out", tmp_path / "run", "--model", "student", "--synth-train", "4",
                       "--synth-val", "4", "--height", "32", "--epochs", "1", "--no-progress-bar")
    assert rc == 0 and "removed the stale lock of process" in err, err  # the killed run's lock is recognised


def test_cli_predict_counts_every_file_of_a_folder(tmp_path, capsys, model_file):
    Image.fromarray(ink()).save(tmp_path / "line.png"); Image.fromarray(ink(seed=1)).save(tmp_path / "line.gif")
    Image.fromarray(ink()).save(tmp_path / "scan.pdf"); Image.fromarray(np.full((1, 1), 255, np.uint8)).save(tmp_path / "dot.png")
    rc, out, err = cli(capsys, "predict", "--model", model_file, "--form", "eager", tmp_path)
    assert rc == 1 and "1 of 4 image(s) could not be read" in err, err
    assert [r.split("\t")[0] for r in out.splitlines()] == [str(tmp_path / n) for n in ("dot.png", "line.gif", "line.png")]
    assert f"jand: {tmp_path / 'scan.pdf'}: not a readable image" in err, err
    assert f"jand: warning: {tmp_path / 'dot.png'}: 1×1 is too small to hold a line of text" in err, err
