"""The recognizer as a whole: shapes, masking, gradients, budgets, the model file, the predictor."""
from dataclasses import replace
import numpy as np
import pytest
import torch
from jand.charset import Charset
from jand.core import DataError
from jand.model import (HTRJAND, MODEL_KINDS, ModelConfig, Predictor, REFERENCE_CLASSES, describe, load_model,
                        model_config, student_config, teacher_config)
from jand.store import save_model
from jand.results import architecture_rows

torch.set_num_threads(1)
CS = Charset.from_texts(["abcdefghijklmnopqrstuvwxyz ,.'ABC"])


@pytest.mark.parametrize("kind", MODEL_KINDS)  # the JAND models and the baselines alike
@pytest.mark.parametrize("height", [64, 128])
def test_one_frame_per_8_pixels_for_any_width(kind, height):
    m = HTRJAND(model_config(kind, len(CS))).eval()
    for w in (64, 136, 400):
        with torch.no_grad(): out = m(torch.rand(2, 1, height, w))
        assert out["logits"].shape == (2, -(-w // 8), len(CS))


@pytest.mark.parametrize("fusion", ["gate", "sum", "concat", "mhsa", "proxima"])
def test_padding_never_changes_real_frames(fusion):
    cfg = student_config(len(CS), attention=replace(student_config().attention, fusion=fusion))
    m = HTRJAND(cfg).eval()
    x = torch.rand(1, 1, 64, 96)
    padded = torch.cat([x, torch.rand(1, 1, 64, 200)], dim=3)  # garbage to the right
    with torch.no_grad():
        alone = m(x, torch.tensor([96]))["logits"]
        inside = m(padded, torch.tensor([96]))["logits"][:, :12]
    torch.testing.assert_close(alone, inside, atol=1e-4, rtol=1e-4)


def test_gradient_reaches_every_parameter_including_auxiliary_heads():
    torch.manual_seed(0)
    m = HTRJAND(teacher_config(len(CS), aux_ctc=True, n_domains=3)).train()
    out = m(torch.rand(2, 1, 64, 128), torch.tensor([128, 80]))
    loss = out["logits"].square().mean() + out["aux_logits"].square().mean() + out["domain_logits"].square().mean()
    loss.backward()
    silent = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not silent, f"no gradient reaches: {silent}"


def test_parameter_budgets_of_the_paper():
    t = describe(teacher_config())["params"]; s = describe(student_config())["params"]
    assert abs(t - 1.5e6) <= 0.02 * 1.5e6, t
    assert 0.75e6 <= s <= 0.78e6, s
    assert all(r["verdict"] == "reproduced" for r in architecture_rows())


def test_student_is_much_cheaper_at_the_same_frame_rate():
    t, s = describe(teacher_config(), 64, 512), describe(student_config(), 64, 512)
    assert s["mmacs"] < t["mmacs"] / 3
    x = torch.rand(1, 1, 64, 200)
    with torch.no_grad():
        assert HTRJAND(teacher_config()).eval()(x)["logits"].shape == HTRJAND(student_config()).eval()(x)["logits"].shape


@pytest.mark.parametrize("change", [dict(backbone=replace(teacher_config().backbone, se=False)),
                                    dict(attention=replace(teacher_config().attention, fusion="mhsa"))])
def test_ablations_shrink_the_model(change):
    assert describe(teacher_config(**change))["params"] < describe(teacher_config())["params"]


def test_config_round_trips_through_json_types():
    cfg = teacher_config(57, aux_ctc=True, n_domains=2)
    import json
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown ModelConfig options"):
        ModelConfig.from_dict({**cfg.to_dict(), "colour": "blue"})


def test_model_file_round_trip_and_clear_errors(tmp_path):
    m = HTRJAND(student_config(len(CS))).eval()
    p = save_model(tmp_path / "m.pt", m, CS)
    m2, cs2, payload = load_model(p)
    x = torch.rand(2, 1, 64, 120)
    with torch.no_grad(): torch.testing.assert_close(m2(x)["logits"], m(x)["logits"], atol=0, rtol=0)
    assert cs2 == CS and payload["config"]["name"] == "student"
    with pytest.raises(DataError, match="different charset"):
        load_model(p, Charset.from_texts(["xyz"]))
    # truncated file
    (tmp_path / "cut.pt").write_bytes(p.read_bytes()[:1000])
    with pytest.raises(DataError, match="cut.pt"):
        load_model(tmp_path / "cut.pt")
    # a file from a newer jand
    d = torch.load(p, weights_only=True); d["format_version"] = 99; torch.save(d, tmp_path / "new.pt")
    with pytest.raises(DataError, match="newer jand"):
        load_model(tmp_path / "new.pt")
    with pytest.raises(ValueError, match="charset has"):
        save_model(tmp_path / "bad.pt", m, Charset.from_texts(["ab"]))


def test_resized_head_keeps_known_characters(tmp_path):
    m = HTRJAND(teacher_config(len(CS), aux_ctc=True)).eval()
    p = save_model(tmp_path / "t.pt", m, CS)
    new = Charset.from_texts(["abcxyzé"])
    m2, cs2, _ = load_model(p, new, resize_head=True)
    assert cs2 == new and m2.head.out_features == len(new) and m2.aux_head.out_features == len(new)
    for ch in "abc":
        assert torch.equal(m2.head.weight[new.encode(ch)[0]], m.head.weight[CS.encode(ch)[0]])
    assert torch.equal(m2.head.weight[0], m.head.weight[0])  # the blank row


def test_predictor_reads_paths_and_arrays_in_input_order(tmp_path):
    from PIL import Image
    m = HTRJAND(student_config(len(CS))).eval()
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (40, w), dtype=np.uint8) for w in (300, 50, 170)]
    paths = []
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(tmp_path / f"{i}.png"); paths.append(tmp_path / f"{i}.png")
    pred = Predictor(m, CS, batch_size=2)
    from_arrays = pred.predict(imgs)
    assert from_arrays == pred.predict([str(p) for p in paths]) == [Predictor(m, CS, batch_size=1).predict([im])[0] for im in imgs]
    with pytest.raises(DataError, match="not found"):
        pred.predict([tmp_path / "missing.png"])
