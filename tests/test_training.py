"""The trainer: determinism, exact resume after SIGKILL, distillation, curriculum and multi-task, DDP, clear errors."""
import json, os, re, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
import torch
from jand.core import DataError
from jand.model import load_model
from jand.training import read_checkpoint, read_log, run_config, train
from jand.train_config import TrainConfig

@pytest.fixture(autouse=True)
def one_thread():
    "Runs here and in the subprocesses below use one thread: bit-exact comparisons need the same reduction order, whatever other tests set."
    before = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(model="student", batch_size=8, synth_train=24, synth_val=8, synth_test=8, height=32, log_every=1,
            progress_bar=False, val_lines=8, augment=True)


def weights(run):
    return load_model(Path(run) / "checkpoints" / "last.pt")[0].state_dict()


def same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_run_on_cpu(tmp_path):
    cfg = TrainConfig(epochs=2, **TINY)
    train(cfg, tmp_path / "a"); train(cfg, tmp_path / "b")
    losses = lambda r: [x["loss"] for x in read_log(r) if "loss" in x]
    assert losses(tmp_path / "a") == losses(tmp_path / "b") and len(losses(tmp_path / "a")) == 6
    assert same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    train(TrainConfig(epochs=2, seed=1, **TINY), tmp_path / "c")
    assert losses(tmp_path / "c") != losses(tmp_path / "a")


def test_a_killed_run_resumes_exactly(tmp_path):
    cfg = TrainConfig(epochs=3, **TINY)
    train(cfg, tmp_path / "straight")
    script = textwrap.dedent(f"""
        import json, torch; torch.set_num_threads(1)
        from jand.training import train
        from jand.train_config import TrainConfig
        train(TrainConfig.from_dict(json.loads({json.dumps(json.dumps(cfg.to_dict()))})), {str(tmp_path / 'killed')!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not last.exists():
        time.sleep(0.02)  # the first checkpoint appears at the end of epoch 1; kill the run right after
    proc.send_signal(signal.SIGKILL); proc.wait()
    state = read_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")["train"]["state"]
    assert 1 <= state["epoch"] < 3, "the run was not interrupted in the middle"
    with pytest.raises(DataError, match="`resume=True`"):
        train(cfg, tmp_path / "killed")
    train(cfg, tmp_path / "killed", resume=True)
    assert same_weights(weights(tmp_path / "straight"), weights(tmp_path / "killed"))
    steps = [r["step"] for r in read_log(tmp_path / "killed") if "loss" in r]
    assert steps == sorted(set(steps)), "the log repeats steps after resuming"


def test_resume_refuses_corrupt_or_foreign_checkpoints(tmp_path):
    train(TrainConfig(epochs=1, **TINY), tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:2000])
    with pytest.raises(DataError, match="last.pt"):
        train(TrainConfig(epochs=2, **TINY), tmp_path / "run", resume=True)
    (tmp_path / "run" / "model.pt").replace(last)
    with pytest.raises(DataError, match="not a training checkpoint"):
        train(TrainConfig(epochs=2, **TINY), tmp_path / "run", resume=True)
    with pytest.raises(DataError, match="no checkpoint"):
        train(TrainConfig(epochs=1, **TINY), tmp_path / "empty", resume=True)


def test_distillation_curriculum_and_multitask_run(tmp_path):
    teacher = train(TrainConfig(epochs=1, **{**TINY, "model": "teacher"}), tmp_path / "teacher")
    cfg = TrainConfig(epochs=2, teacher=str(tmp_path / "teacher" / "model.pt"), curriculum="staged", kd_blank="nonblank",
                      kd_feature=0.1, aux_weight=0.3, **TINY)
    train(cfg, tmp_path / "student")
    rec = [r for r in read_log(tmp_path / "student") if "loss" in r]
    assert {"kl", "ctc", "aux", "feat"} <= set(rec[0])
    model, cs, _ = load_model(tmp_path / "student" / "model.pt")
    assert model.cfg.name == "student" and cs == load_model(tmp_path / "teacher" / "model.pt")[1]
    # the curriculum starts on the easy third: fewer steps in the first epoch than in the second
    per_epoch = [sum(1 for r in rec if r["epoch"] == e) for e in (1, 2)]
    assert per_epoch[0] < per_epoch[1]


def test_joint_sources_with_a_dataset_id_head(tmp_path):
    cfg = TrainConfig(data="synth:en+synth:fr", epochs=1, domain_weight=0.2, **TINY)
    train(cfg, tmp_path / "joint")
    rec = [r for r in read_log(tmp_path / "joint") if "loss" in r]
    assert "domain" in rec[0]
    assert load_model(tmp_path / "joint" / "model.pt")[0].cfg.n_domains == 2


def test_fine_tuning_keeps_known_characters(tmp_path):
    train(TrainConfig(data="synth:en", epochs=1, **TINY), tmp_path / "en")
    train(TrainConfig(data="synth:fr", epochs=1, init=str(tmp_path / "en" / "model.pt"), **TINY), tmp_path / "fr")
    en, en_cs, _ = load_model(tmp_path / "en" / "model.pt")
    fr, fr_cs, _ = load_model(tmp_path / "fr" / "model.pt")
    assert set(en_cs.symbols) < set(fr_cs.symbols)  # every symbol the base model knew, and the accents fr adds
    change = json.loads((tmp_path / "fr" / "fine_tuning.json").read_text())
    assert change["resize"] == "union" and change["charset"]["added"] and not change["charset"]["removed"]


def test_fine_tuning_can_narrow_or_keep_the_charset(tmp_path):
    train(TrainConfig(data="synth:fr", epochs=1, **TINY), tmp_path / "fr")
    base = str(tmp_path / "fr" / "model.pt")
    train(TrainConfig(data="synth:en", epochs=1, init=base, resize="new", **TINY), tmp_path / "new")
    en = TrainConfig(data="synth:en", **TINY).bundle().charset()
    assert load_model(tmp_path / "new" / "model.pt")[1] == en  # the accents only fr has are gone
    assert json.loads((tmp_path / "new" / "fine_tuning.json").read_text())["charset"]["removed"]
    train(TrainConfig(data="synth:fr", epochs=1, init=str(tmp_path / "new" / "model.pt"), resize="keep", **TINY),
          tmp_path / "keep")
    assert load_model(tmp_path / "keep" / "model.pt")[1] == en
    data = json.loads((tmp_path / "keep" / "data.json").read_text())
    assert "skipped     20 × characters not in the charset" in data["train_lines_after_charset"]  # said so


def recorded_and_read_back(run) -> tuple:
    "The best validation CER a run recorded, and `jand eval`'s CER of its `model.pt` on its validation split."
    cfg, best = run_config(run), load_model(Path(run) / "model.pt")[2]["val_cer"]
    synth = [a for k, v in cfg.to_dict().items() if k.startswith("synth_") and v is not None
             for a in ("--" + k.replace("_", "-"), v)]
    out = subprocess.run([str(Path(sys.executable).parent / "jand"), "eval", "--model", str(Path(run) / "model.pt"),
                          "--data", cfg.data, "--split", "val", "--batch-size", str(cfg.batch_size), *map(str, synth)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return best, float(re.search(r"CER ([0-9.]+) % \(corpus, case-sensitive", out.stdout).group(1))


def test_a_model_fine_tuned_at_another_height_reads_back_its_validation_cer(tmp_path):
    # the shipped Student reads 48-pixel lines; fine-tuned at 64 it must be saved as reading 64-pixel lines
    short = dict(TINY, synth_val=16, val_lines=None, augment=False)
    for height, expected in ((64, 64), (None, 48)):
        run = tmp_path / f"height-{height}"
        train(TrainConfig(data="synth:en", init="student", steps=3, **{**short, "height": height}), run)
        assert load_model(run / "model.pt")[0].cfg.preprocess.height == expected == run_config(run).height
        best, read_back = recorded_and_read_back(run)
        assert best < 60  # a trained model: a wrong height would not go unnoticed
        assert read_back == pytest.approx(best, abs=0.005)  # as printed, to two decimals


def test_ddp_with_gloo_on_two_processes(tmp_path):
    cfg = TrainConfig(epochs=1, **TINY)
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import json, torch; torch.set_num_threads(1)
        from jand.training import train
        from jand.train_config import TrainConfig
        print(train(TrainConfig.from_dict(json.loads({json.dumps(json.dumps(cfg.to_dict()))})), {str(tmp_path / 'ddp')!r}))
    """))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", str(script)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "ddp" / "model.pt").exists()
    prov = json.loads((tmp_path / "ddp" / "provenance.json").read_text())
    assert prov["world_size"] == 2


# ------------------------------------------------------------ killed *while writing* a checkpoint ---------------
# The subprocess below trains normally, except that two things are patched in it:
# - `os.fsync`: when the run fsyncs the temporary file of the `nth` write of `target` (`last.pt` or `model.pt`),
#   it cuts that file to half its size (a half-written file on disk), tells the parent through `marker`, and waits
#   to be killed — so the SIGKILL lands deterministically in the middle of `jand.core.atomic_write_bytes`;
# - `evaluate`: the validation CER is `100 - epoch`, so every epoch improves and writes `best.pt` and `model.pt`
#   (a tiny model's real CER often stays at 100 %, which would leave `model.pt` unwritten after epoch 1).
KILL_HOOKS = textwrap.dedent("""
    import os, sys, time
    from types import SimpleNamespace
    import jand.training

    def fake_evaluate(model, ds, *args, **kwargs):
        epoch = sys._getframe(1).f_locals["st"]["epoch"]  # the trainer's state, before it counts the epoch
        score = SimpleNamespace(value=100.0 - epoch)
        return {"scores": {"cer_corpus_sensitive": score, "wer_corpus_sensitive": score, "cer_line-max_sensitive": score},
                "refs": ["x"], "hyps": ["x"], "ids": ["x"]}
    jand.training.evaluate = fake_evaluate

    def pause_in_write(target, nth, marker):
        real, seen = os.fsync, [0]
        def fsync(fd):
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
            if name.startswith(f".{target}.") and name.endswith(".tmp"):
                seen[0] += 1
                if seen[0] == nth:
                    os.ftruncate(fd, os.fstat(fd).st_size // 2)
                    open(marker, "w").write(name)
                    time.sleep(600)
            return real(fd)
        os.fsync = fsync
""")


def fake_evaluate_here(monkeypatch):
    ns = {}
    exec(KILL_HOOKS, ns)
    monkeypatch.setattr("jand.training.evaluate", ns["fake_evaluate"])


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name the file being fsynced")
@pytest.mark.parametrize("target,nth,resume_with", [("last.pt", 2, "train"), ("model.pt", 3, "cli")],
                         ids=["in-last.pt-of-epoch-2", "in-model.pt-of-the-final-epoch"])
def test_killed_while_writing_a_checkpoint(tmp_path, monkeypatch, capsys, target, nth, resume_with):
    import jand.cli
    cfg = TrainConfig(epochs=3, **TINY)
    fake_evaluate_here(monkeypatch)
    train(cfg, tmp_path / "straight")
    run, marker = tmp_path / "killed", tmp_path / "marker"
    script = KILL_HOOKS + textwrap.dedent(f"""
        import json, torch; torch.set_num_threads(1)
        pause_in_write({target!r}, {nth}, {str(marker)!r})
        jand.training.train(jand.train_config.TrainConfig.from_dict(json.loads({json.dumps(json.dumps(cfg.to_dict()))})), {str(run)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not marker.exists():
        time.sleep(0.02)
    assert marker.exists(), f"the run never reached write {nth} of {target} (exit status {proc.poll()})"
    proc.send_signal(signal.SIGKILL); proc.wait()

    folder = run / ("checkpoints" if target == "last.pt" else "")
    torn = folder / marker.read_text()
    assert torn.exists() and torn.stat().st_size > 0, "the kill did not land inside the write"
    ckpt = read_checkpoint(run / "checkpoints" / "last.pt")  # the last good checkpoint is intact …
    assert ckpt["train"]["state"]["epoch"] == nth - 1 and not ckpt["train"]["state"]["done"]
    model, _, payload = load_model(run / "model.pt")  # … and so is the deployable model, never ahead of a finished run
    assert payload["epoch"] == (2 if target == "last.pt" else nth - 1)

    if resume_with == "train":
        summary = train(cfg, run, resume=True)
    else:
        rc, out = jand.cli.main(["train", "--out", str(run), "--resume", "--no-progress-bar"]), capsys.readouterr()
        assert rc == 0, out.err
        assert "left by a killed write" in out.out
        summary = json.loads(out.out[out.out.index("{"):])
    state = read_checkpoint(run / "checkpoints" / "last.pt")["train"]["state"]
    assert state["done"] and state["epoch"] == 3
    assert summary["epochs"] == 3
    assert not list(folder.glob(".*.tmp")), "the torn temporary file was left behind"
    assert same_weights(weights(tmp_path / "straight"), weights(run))  # resumed exactly
    assert load_model(run / "model.pt")[2]["epoch"] == 3
    assert same_weights(load_model(run / "model.pt")[0].state_dict(), load_model(tmp_path / "straight" / "model.pt")[0].state_dict())


def test_offline_distillation_matches_online_on_the_same_views(tmp_path):
    "Cached Teacher posteriors give the losses that running the Teacher gives, step for step (float16 aside)."
    train(TrainConfig(epochs=1, **{**TINY, "model": "teacher"}), tmp_path / "teacher")
    kd = dict(epochs=1, teacher=str(tmp_path / "teacher" / "model.pt"), **{**TINY, "augment": False})
    online = train(TrainConfig(**kd), tmp_path / "online")
    offline = train(TrainConfig(kd_offline=True, **kd), tmp_path / "offline")
    parts = lambda r: [(x["kl"], x["loss"]) for x in read_log(r) if "loss" in x]
    assert len(parts(tmp_path / "online")) == 3
    for (a, b), (c, d) in zip(parts(tmp_path / "online"), parts(tmp_path / "offline")):
        assert abs(a - c) < 1e-3 and abs(b - d) < 1e-3
    assert online["kd_cache_seconds"] is None and offline["kd_cache_seconds"] >= 0
    with pytest.raises(ValueError, match="augment=False"):
        TrainConfig(kd_offline=True, teacher="t.pt")
    with pytest.raises(ValueError, match="needs a teacher"):
        TrainConfig(kd_offline=True, augment=False)
