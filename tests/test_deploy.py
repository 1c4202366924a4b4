"""Deployment: ONNX export and its predictor, int8 forms, the loader of `jand predict`, batching by width in order."""
from dataclasses import replace
import numpy as np
import pytest
import torch
from jand.charset import Charset
from jand.model import HTRJAND, Predictor, STUDENT_ATTENTION, student_config
from jand.store import save_model
from jand.deploy import OnnxPredictor, deployed_predictor, export_onnx, load_deployed, quantize_onnx, quantize_torch

CS = Charset.from_texts(["the quick brown fox jumps over the lazy dog"])
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
