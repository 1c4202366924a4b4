"""Deployed forms compared: each form's speed on every shape, in its own process; failures reported; median rounds."""
from dataclasses import replace
import pytest
import torch
from jand.charset import Charset
from jand.model import HTRJAND, STUDENT_ATTENTION, student_config
from jand.deploy_bench import deploy_speed_rows, fastest_forms

CS = Charset.from_texts(["the quick brown fox jumps over the lazy dog"])
TINY_S = student_config(len(CS), attention=replace(STUDENT_ATTENTION, n_blocks=1))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HTRJAND(TINY_S).eval()


def test_deploy_speed_rows_reports_every_form_on_every_shape_each_in_its_own_process(model):
    rows = deploy_speed_rows(model, CS, forms=("eager", "onnx"), batch=2, shapes=((None, 64), (48, 64)), seconds=0.02)
    h = model.cfg.preprocess.height
    assert [(r["form"], r["input"]) for r in rows] == [(f, i) for f in ("eager", "onnx") for i in (f"{h}x64", "48x64")]
    assert [r["speedup"] for r in rows[:2]] == [1.0, 1.0] and all(r["lines_per_s"] > 0 for r in rows)
    best = fastest_forms(rows)
    assert [b["input"] for b in best] == [f"{h}x64", "48x64"] and {b["form"] for b in best} == {"onnx"}


def test_a_failing_form_is_reported_on_every_shape_not_dropped(model, monkeypatch):
    import jand.deploy_bench as d
    real = d.deployed_predictor
    def broken(m, cs, form, *a, **k):
        if form == "onnx": raise RuntimeError("no runtime here")
        return real(m, cs, form, *a, **k)
    monkeypatch.setattr(d, "deployed_predictor", broken)
    rows = deploy_speed_rows(model, CS, forms=("eager", "onnx"), batch=2, shapes=((32, 64), (48, 64)), seconds=0.02, isolate=False)
    assert [r.get("error") for r in rows] == [None, None, "RuntimeError: no runtime here", "RuntimeError: no runtime here"]


def test_rounds_keep_the_median_of_each_case(model, monkeypatch):
    import jand.deploy_bench as d
    speeds = iter([100.0, 300.0, 200.0] * 2)
    monkeypatch.setattr(d, "_form_speed_rows", lambda m, cs, form, batch, shapes, *a: [
        {"form": form, "input": f"{h}x{w}", "lines_per_s": next(speeds), "setup_s": 1.0} for h, w in shapes])
    rows = deploy_speed_rows(model, CS, forms=("eager", "onnx", "compile"), shapes=((32, 64), (48, 64)), isolate=False, rounds=1)
    assert [r["lines_per_s"] for r in rows] == [100.0, 300.0, 200.0, 100.0, 300.0, 200.0]
    speeds = iter([100, 10, 300, 30, 200, 20] * 2)  # rounds 1-3 of eager then onnx: median 200/20 and 200/20
    rows = deploy_speed_rows(model, CS, forms=("eager", "onnx"), shapes=((32, 64),), isolate=False, rounds=3)
    assert [(r["form"], r["lines_per_s"], r["rounds"], r["speedup"]) for r in rows] == [("eager", 200, 3, 1.0), ("onnx", 20, 3, 0.1)]
