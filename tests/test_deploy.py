"""Deployment: the speed table, ONNX export and its predictor, int8 forms, batching by width keeping the input order."""
from dataclasses import replace
import csv
import numpy as np
import pytest
import torch
from jand.charset import Charset
from jand.model import HTRJAND, Predictor, STUDENT_ATTENTION, student_config
from jand.store import save_model
from jand.deploy import (OnnxPredictor, bench_rows, deployed_predictor, export_onnx, load_deployed, quantize_onnx,
                         quantize_torch, run_bench, speed_ratio_rows, deploy_speed_rows, fastest_forms)

CS = Charset.from_texts(["the quick brown fox jumps over the lazy dog"])
TINY_T = student_config(len(CS), attention=replace(STUDENT_ATTENTION, n_blocks=2))
TINY_S = student_config(len(CS), attention=replace(STUDENT_ATTENTION, n_blocks=1))


def lines(widths=(300, 40, 180, 90, 260, 60, 120), h=40, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((h, w)) * 255).astype(np.uint8) for w in widths]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HTRJAND(TINY_S).eval()


def test_predictor_batches_by_width_and_keeps_the_input_order(model):
    imgs = lines()
    pred = Predictor(model, CS, batch_size=3)
    got = pred.logits(imgs)
    alone = [Predictor(model, CS, batch_size=1).logits([im])[0] for im in imgs]
    assert [g.shape for g in got] == [a.shape for a in alone]
    for g, a in zip(got, alone): torch.testing.assert_close(g, a, atol=1e-4, rtol=0)
    assert pred.predict(imgs) == [Predictor(model, CS, batch_size=1).predict([im])[0] for im in imgs]


def test_onnx_export_matches_pytorch_at_unseen_batch_sizes_and_widths(model, tmp_path):
    p = export_onnx(model, CS, tmp_path / "m.onnx")
    imgs = lines(seed=1)
    onnx, ref = OnnxPredictor(p, batch_size=4, threads=1), Predictor(model, CS, batch_size=4)
    assert onnx.charset == CS and onnx.cfg == model.cfg
    for a, b in zip(onnx.logits(imgs), ref.logits(imgs)):
        assert a.shape == b.shape and float((a - b).abs().max()) < 1e-3
    assert onnx.predict(imgs) == ref.predict(imgs)


def test_onnx_predictor_refuses_bad_files(tmp_path):
    from jand.core import DataError
    (tmp_path / "x.onnx").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable ONNX model"): OnnxPredictor(tmp_path / "x.onnx")
    with pytest.raises(DataError, match="not found"): OnnxPredictor(tmp_path / "missing.onnx")


def test_int8_forms_keep_the_interface(model, tmp_path):
    imgs = lines()[:3]
    q = quantize_onnx(export_onnx(model, CS, tmp_path / "m.onnx"), tmp_path / "m8.onnx")
    assert OnnxPredictor(q).charset == CS
    qt = quantize_torch(model)
    assert any("quantized" in type(m).__module__ for m in qt.modules())
    assert not any("quantized" in type(m).__module__ for m in model.modules())  # the original is untouched
    for form in ("onnx-int8", "torch-int8", "torch-bf16"):
        out = deployed_predictor(model, CS, form, tmp_path, threads=1).logits(imgs)
        assert [o.shape for o in out] == [o.shape for o in Predictor(model, CS).logits(imgs)]


def test_load_deployed_for_the_cli(model, tmp_path):
    pt = save_model(tmp_path / "m.pt", model, CS)
    imgs = lines()[:3]
    want = Predictor(model, CS).predict(imgs)
    assert load_deployed(pt, "onnx").predict(imgs) == want
    assert isinstance(load_deployed(pt), OnnxPredictor) and load_deployed(pt).predict(imgs) == want  # auto
    assert load_deployed(pt, "eager").predict(imgs) == want
    onnx_file = export_onnx(model, CS, tmp_path / "m.onnx")
    assert isinstance(load_deployed(onnx_file), OnnxPredictor)
    with pytest.raises(ValueError, match="runs as it was exported"): load_deployed(onnx_file, "torch-bf16")
    with pytest.raises(ValueError, match="runs on the CPU"): load_deployed(pt, "onnx", device="cuda")


def test_speed_ratio_rows_and_verdicts():
    rows = [{"model": m, "device": "cpu", "mode": "inference", "batch": 16, "input": "64x512", "lines_per_s": v}
            for m, v in (("teacher", 100.0), ("student", 250.0))]
    rows += [{"model": m, "device": "cpu", "mode": "train", "batch": 16, "input": "64x512", "lines_per_s": v}
             for m, v in (("teacher", 10.0), ("student", 15.0))]
    r = speed_ratio_rows(rows)
    assert [x["speed_ratio"] for x in r] == [2.5, 1.5]
    assert r[0]["verdict"] == "met" and "verdict" not in r[1]
    assert speed_ratio_rows(rows[:1]) == []


def test_tiny_bench_writes_its_table(tmp_path):
    res = run_bench(tmp_path, teacher=TINY_T, student=TINY_S, batches=(2,), shapes=((32, 64), (32, (40, 80))),
                    train_batch=2, train_shapes=((32, 64),), seconds=0.02, devices=["cpu"], isolate=False, verbose=False)
    rows = list(csv.DictReader(open(res["csv"], encoding="utf-8")))
    assert {r["model"] for r in rows} == {"teacher", "student", "student/teacher"}
    assert "prov_git" in rows[0] and "Student ÷ Teacher" in res["md"].read_text(encoding="utf-8")


def test_deploy_speed_rows_reports_every_form_on_every_shape_each_in_its_own_process(model):
    rows = deploy_speed_rows(model, CS, forms=("eager", "onnx"), batch=2, shapes=((None, 64), (48, 64)), seconds=0.02)
    h = model.cfg.preprocess.height
    assert [(r["form"], r["input"]) for r in rows] == [(f, i) for f in ("eager", "onnx") for i in (f"{h}x64", "48x64")]
    assert [r["speedup"] for r in rows[:2]] == [1.0, 1.0] and all(r["lines_per_s"] > 0 for r in rows)
    best = fastest_forms(rows)
    assert [b["input"] for b in best] == [f"{h}x64", "48x64"] and {b["form"] for b in best} == {"onnx"}


def test_a_failing_form_is_reported_on_every_shape_not_dropped(model, monkeypatch):
    import jand.deploy as d
    real = d.deployed_predictor
    def broken(m, cs, form, *a, **k):
        if form == "onnx": raise RuntimeError("no runtime here")
        return real(m, cs, form, *a, **k)
    monkeypatch.setattr(d, "deployed_predictor", broken)
    rows = deploy_speed_rows(model, CS, forms=("eager", "onnx"), batch=2, shapes=((32, 64), (48, 64)), seconds=0.02, isolate=False)
    assert [r.get("error") for r in rows] == [None, None, "RuntimeError: no runtime here", "RuntimeError: no runtime here"]


def test_rounds_keep_the_median_of_each_case(model, monkeypatch):
    import jand.deploy as d
    speeds = iter([100.0, 300.0, 200.0] * 2)
    monkeypatch.setattr(d, "_form_speed_rows", lambda m, cs, form, batch, shapes, *a: [
        {"form": form, "input": f"{h}x{w}", "lines_per_s": next(speeds), "setup_s": 1.0} for h, w in shapes])
    rows = deploy_speed_rows(model, CS, forms=("eager", "onnx", "compile"), shapes=((32, 64), (48, 64)), isolate=False, rounds=1)
    assert [r["lines_per_s"] for r in rows] == [100.0, 300.0, 200.0, 100.0, 300.0, 200.0]
    speeds = iter([100, 10, 300, 30, 200, 20] * 2)  # rounds 1-3 of eager then onnx: median 200/20 and 200/20
    rows = deploy_speed_rows(model, CS, forms=("eager", "onnx"), shapes=((32, 64),), isolate=False, rounds=3)
    assert [(r["form"], r["lines_per_s"], r["rounds"], r["speedup"]) for r in rows] == [("eager", 200, 3, 1.0), ("onnx", 20, 3, 0.1)]


def test_onnx_graph_has_a_dynamic_height(model, tmp_path):
    p = export_onnx(model, CS, tmp_path / "m.onnx")
    onnx = OnnxPredictor(p, threads=1)
    for h, w in ((32, 100), (64, 512), (100, 77)):
        x, widths = torch.rand(2, 1, h, w), torch.tensor([w, w // 2])
        lp, lengths = onnx._forward(x, widths)
        with torch.no_grad(): ref = model(x, widths)
        assert torch.equal(lengths, ref["lengths"])
        torch.testing.assert_close(lp, ref["logits"].log_softmax(-1), atol=1e-4, rtol=0)


def test_the_model_compiles_to_one_graph(model):
    import torch._dynamo as dynamo
    dynamo.reset()
    with torch.no_grad(): e = dynamo.explain(model)(torch.rand(2, 1, 32, 96), torch.tensor([96, 50]))
    assert (e.graph_count, e.graph_break_count) == (1, 0), [b.reason for b in e.break_reasons]
    with pytest.raises(ValueError, match="widths must hold"): model(torch.rand(2, 1, 32, 96), torch.tensor([96, 200]))  # eager still checks


@pytest.mark.slow
def test_fresh_process_benchmark_of_the_reference_models(tmp_path):
    rows = bench_rows(batches=(1,), shapes=((64, 256),), train_batch=None, seconds=0.2, devices=["cpu"], verbose=False)
    assert len(rows) == 3 and rows[-1]["model"] == "student/teacher"
