"""The `jand` command line, run as users run it: the console script in a subprocess."""
import csv, json, subprocess, sys
from pathlib import Path
import pytest

TINY = ["--model", "student", "--epochs", "1", "--batch-size", "8", "--synth-train", "16", "--synth-val", "8",
        "--synth-test", "8", "--height", "32", "--no-progress-bar"]


def jand(*args, ok=True):
    r = subprocess.run([str(Path(sys.executable).parent / "jand"), *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok: assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    jand("train", "--out", out, *TINY)
    return out


def test_help_lists_every_command_and_training_option():
    top = jand("--help").stdout
    for cmd in ("synth", "train", "distill", "eval", "train-corrector", "predict", "export", "bench", "reproduce", "check-data", "calibrate"):
        assert cmd in top
    help_train = jand("train", "--help").stdout
    for opt in ("--max-minutes", "--no-se", "--fusion", "--curriculum", "--aux-weight", "--resume", "--seed", "--teacher"):
        assert opt in help_train
    assert "Wall-clock budget" in help_train  # help text comes from TrainConfig's docments
    assert "crnn-student" in help_train and "transformer-teacher" in help_train  # every named model is listed


def test_train_a_baseline_by_name(tmp_path):
    small = [a for a in TINY if a not in ("--model", "student", "--epochs", "1")] + ["--steps", "2"]
    jand("train", "--out", tmp_path / "run", "--model", "flor-student", *small)
    cfg = json.loads((tmp_path / "run" / "model_config.json").read_text(encoding="utf-8"))
    assert (cfg["name"], cfg["encoder"], cfg["backbone"]["se"]) == ("flor-student", "bigru", False)
    r = jand("train", "--out", tmp_path / "x", "--model", "crnn-student", "--no-se", *small, ok=False)
    assert r.returncode == 2 and "se switch parts of the JAND network" in r.stderr and "Traceback" not in r.stderr


def test_train_then_eval_writes_per_line_csv(run, tmp_path):
    assert (run / "model.pt").exists()
    r = jand("eval", "--model", run / "model.pt", "--data", "synth", "--split", "test", "--synth-test", "8", "--out", tmp_path / "lines.csv")
    for variant in ("CER", "WER", "corpus", "line-max", "case-folded"):
        assert variant in r.stdout
    rows = list(csv.DictReader(open(tmp_path / "lines.csv", encoding="utf-8")))
    assert len(rows) == 8 and {"id", "ref", "hyp", "char_edits"} <= set(rows[0])


def test_predict_folder_as_json(run, tmp_path):
    jand("synth", tmp_path / "imgs", "--train", "0", "--val", "0", "--test", "3", "--height", "32", "--workers", "1")
    r = jand("predict", "--model", run / "model.pt", tmp_path / "imgs", "--format", "json")
    rows = json.loads(r.stdout)
    assert len(rows) == 3 and all({"image", "text", "confidence", "chars", "words", "alternatives"} <= set(x) for x in rows)


def test_predict_confidences_positions_and_alternatives_as_json_and_csv(tmp_path):
    jand("synth", tmp_path / "imgs", "--train", "0", "--val", "0", "--test", "3", "--height", "48", "--workers", "1")
    plain = jand("predict", "--model", "student", "--form", "eager", tmp_path / "imgs").stdout
    r = jand("predict", "--model", "student", "--form", "eager", tmp_path / "imgs", "--format", "json",
             "--decoder", "beam", "--alternatives", "3")
    rows = json.loads(r.stdout)
    for row in rows:
        assert "".join(c["char"] for c in row["chars"]) == row["text"] and 0 <= row["confidence"] <= 1
        assert [w["text"] for w in row["words"]] == row["text"].split()
        xs = [c["x"] for c in row["chars"]]
        assert xs == sorted(xs) and all(a < b for a, b in xs)  # left to right, inside the line
        assert len(row["alternatives"]) == 3 and row["alternatives"][0]["text"] == row["text"]
    r = jand("predict", "--model", "student", "--form", "eager", tmp_path / "imgs", "--format", "csv")
    table = list(csv.DictReader(r.stdout.splitlines()))
    assert [t["text"] for t in table] == [line.split("\t")[1] for line in plain.splitlines()]  # greedy: the same text
    assert list(table[0]) == ["image", "text", "confidence", "chars", "words", "alternatives"]
    assert json.loads(table[0]["words"])[0]["x"][0] >= 0 and json.loads(table[0]["alternatives"]) == []
    r = jand("predict", "--model", "student", tmp_path / "imgs", "--alternatives", "3", ok=False)
    assert r.returncode == 2 and "use decoder='beam'" in r.stderr


def test_calibrate_stores_the_calibration_with_the_model(run, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes((run / "model.pt").read_bytes())
    r = jand("calibrate", "--model", model, "--synth-val", "16", "--synth-test", "16", "--out", tmp_path / "results")
    assert "ece_before" in r.stdout and (tmp_path / "model.calibration.json").is_file()
    assert "expected calibration error goes from" in next((tmp_path / "results").glob("calibration_*.md")).read_text()
    r = jand("calibrate", "--model", model, "--fit-split", "test", ok=False)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_resume_and_clear_errors(run, tmp_path):
    r = jand("train", "--out", run, *TINY, ok=False)
    assert r.returncode == 2 and "--resume" in r.stderr and "Traceback" not in r.stderr
    r = jand("train", "--out", tmp_path / "x", "--data", "iam:/no/such/folder", ok=False)
    assert r.returncode == 2 and "data spec part" in r.stderr
    r = jand("distill", "--out", tmp_path / "y", ok=False)
    assert r.returncode == 2 and "--teacher" in r.stderr
    r = jand("predict", "--model", tmp_path / "missing.pt", tmp_path, ok=False)
    assert r.returncode == 2 and "missing.pt" in r.stderr


def test_export_then_predict_with_onnx_runtime(run, tmp_path):
    jand("synth", tmp_path / "imgs", "--train", "3", "--val", "0", "--test", "0", "--height", "32", "--workers", "1")
    eager = jand("predict", "--model", run / "model.pt", "--form", "eager", tmp_path / "imgs").stdout
    assert jand("predict", "--model", run / "model.pt", tmp_path / "imgs").stdout == eager  # auto: the exact form
    r = jand("export", "--model", run / "model.pt", "--out", tmp_path / "m.onnx")
    assert "wrote" in r.stdout and (tmp_path / "m.onnx").stat().st_size > 100_000
    assert jand("predict", "--model", tmp_path / "m.onnx", tmp_path / "imgs").stdout == eager  # same text as eager PyTorch
    int8 = jand("predict", "--model", run / "model.pt", "--form", "torch-int8", tmp_path / "imgs").stdout
    assert len(int8.splitlines()) == 3
    bad = jand("predict", "--model", run / "model.pt", "--form", "tensorrt", tmp_path / "imgs", ok=False)
    assert bad.returncode == 2 and "form must be one of" in bad.stderr
    bad = jand("export", "--model", run / "model.pt", "--out", tmp_path / "m.txt", ok=False)
    assert bad.returncode == 2 and bad.stderr.startswith("jand: error:") and ".onnx" in bad.stderr


def test_export_a_model_folder_then_use_it_everywhere(run, tmp_path):
    jand("synth", tmp_path / "imgs", "--train", "3", "--val", "0", "--test", "0", "--height", "32", "--workers", "1")
    eager = jand("predict", "--model", run / "model.pt", "--form", "eager", tmp_path / "imgs").stdout
    assert jand("predict", "--model", run / "model.pt", tmp_path / "imgs").stdout == eager  # auto: the exact form
    r = jand("export", "--model", run, "--out", tmp_path / "student")  # a run folder names its model.pt
    assert "model.safetensors" in r.stdout and "README.md" in r.stdout
    card = (tmp_path / "student" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: jand") and "| val | CER" in card
    assert jand("predict", "--model", tmp_path / "student", tmp_path / "imgs").stdout == eager  # same weights, same text
    r = jand("eval", "--model", tmp_path / "student", "--synth-train", "16", "--synth-val", "8", "--synth-test", "8")
    assert "CER" in r.stdout
    r = jand("predict", "--model", "no-such-name", tmp_path / "imgs", ok=False)
    assert r.returncode == 2 and "no shipped model has that name" in r.stderr


def test_reproduce_refuses_unknown_experiments_in_one_line():
    r = jand("reproduce", "--profile", "smoke", "--only", "nonsense", ok=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown experiment 'nonsense'" in r.stderr


def test_reproduce_checks_reader_options_before_any_notebook(tmp_path):
    (tmp_path / "IAM").mkdir()
    r = jand("reproduce", "--profile", "smoke", "--data-root", tmp_path, "--data-option", "IAM?spilt=official", ok=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown option 'spilt'" in r.stderr, r.stderr
    r = jand("reproduce", "--profile", "smoke", "--data-option", "RIMES?check_counts=false", ok=False)
    assert r.returncode == 2 and "no RIMES/ to read" in r.stderr, r.stderr
    r = jand("reproduce", "--profile", "smoke", "--data-option", "IAM", ok=False)
    assert r.returncode == 2 and "NAME?key=value" in r.stderr, r.stderr


def test_bench_model_writes_the_bench_table(tmp_path):
    r = jand("bench", "model", "--batches", "1", "--seconds", "0.2", "--threads", "1", "--results", tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert {"teacher", "student", "student/teacher"} <= {r_["model"] for r_ in rows} and "Student ÷ Teacher" in r.stdout


def test_bench_deploy_writes_speed_and_cer_tables(run, tmp_path):
    r = jand("bench", "deploy", "--student", run / "model.pt", "--forms", "eager,onnx", "--lines", "4", "--seconds", "0.05",
             "--threads", "1", "--results", tmp_path)
    speed = list(csv.DictReader(open(tmp_path / "deploy_speed.csv")))
    assert [r_["form"] for r_ in speed] == ["eager"] * 3 + ["onnx"] * 3 and "onnx" in r.stdout
    cer = list(csv.DictReader(open(tmp_path / "deploy_cer.csv")))
    assert [r_["form"] for r_ in cer] == ["eager", "onnx"] and cer[1]["same_text"] == "100.0 %"
    bad = jand("bench", "deploy", ok=False)
    assert bad.returncode == 2 and "needs --student" in bad.stderr


def test_bench_memory_on_a_synthetic_and_a_disk_corpus(tmp_path):
    jand("synth", tmp_path / "corpus", "--train", "30", "--val", "4", "--test", "0", "--height", "32", "--workers", "1")
    r = jand("bench", "memory", "--corpus", f"20,folder:{tmp_path / 'corpus'}", "--minutes", "0.03", "--threads", "1",
             "--table", "mem", "--results", tmp_path / "res", "--figures", tmp_path / "fig")
    rows = list(csv.DictReader(open(tmp_path / "res" / "mem.csv")))
    assert [(r_["corpus"], r_["corpus_lines"]) for r_ in rows] == [("synthetic, drawn on the fly", "20"), ("folder on disk", "30")]
    assert (tmp_path / "fig" / "mem.png").stat().st_size > 1000 and (tmp_path / "res" / "mem_timeline.csv").exists()
    assert "mem.md" in r.stdout


def test_a_verbs_defaults_are_the_defaults_of_the_functions_it_calls():
    import inspect
    from jand.cli import build_parser, run_check_data, run_eval, run_predict
    from jand.deploy_bench import run_bench_folder, run_deploy
    from jand.memory import bench_memory
    from jand.speed import bench_rows
    from jand.recognizer import Recognizer, run_calibration
    calls = {"predict": (["predict", "--model", "m", "x.png"], [run_predict, Recognizer.load]),
             "eval": (["eval", "--model", "m"], [run_eval]), "check-data": (["check-data", "synth"], [run_check_data]),
             "calibrate": (["calibrate", "--model", "m"], [run_calibration]),
             "bench": (["bench", "deploy"], [run_deploy, bench_rows, run_bench_folder, bench_memory])}
    differ = []
    for verb, (argv, functions) in calls.items():
        given = vars(build_parser(verb).parse_args(argv))
        for fn in functions:
            for name, p in inspect.signature(fn).parameters.items():
                shown = given.get(name)
                owned = p.default is not inspect.Parameter.empty and name != "model"  # --model is required
                if owned and shown is not None and shown != p.default:
                    differ.append(f"jand {verb} --{name} {shown!r} ≠ {fn.__qualname__}({name}={p.default!r})")
    assert differ == [], differ


def test_synth_and_corrector_verbs_take_their_defaults_from_the_config_and_functions_they_call():
    import inspect
    from jand.cli import build_parser, write_synth
    from jand.postprocess import pretrain_corrector, train_corrector
    from jand.synth import SynthConfig
    synth = vars(build_parser("synth").parse_args(["synth", "out"]))
    c = SynthConfig()
    assert (synth["train"], synth["val"], synth["test"], synth["seed"], synth["height"]) == \
        (c.n_train, c.n_val, c.n_test, c.seed, c.height)
    assert synth["workers"] == inspect.signature(write_synth).parameters["workers"].default
    passed = {"train-corrector": (["train-corrector", "--run", "r", "--out", "o"], train_corrector,
                                  ("steps", "copies", "max_lines", "guard_share", "lexicon", "seed")),
              "pretrain-corrector": (["pretrain-corrector", "--out", "o"], pretrain_corrector,
                                     ("steps", "lines", "langs", "seed"))}  # what each verb hands to its function
    for verb, (argv, fn, names) in passed.items():
        given = vars(build_parser(verb).parse_args(argv))
        if "langs" in names:
            given["langs"] = tuple(given["langs"].split(","))
        defaults = {n: inspect.signature(fn).parameters[n].default for n in names}
        assert {n: given[n] for n in names} == defaults, verb
