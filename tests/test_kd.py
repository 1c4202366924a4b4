"Extra checks for jand.kd: KL values and reductions, blank handling, padding, gradients, α/τ mixing, feature term, frozen Teacher."
import math
from dataclasses import asdict
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from jand.kd import (BLANK_MODES, FeatureProjector, KDConfig, ctc_loss, feature_kd, freeze_teacher, kd_kl, kd_loss,
                     kl_parts, real_frames, soft_log_probs, teacher_context, teacher_forward)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def batch(N=3, T=12, C=7, scale=4.0):
    "Random teacher/student logits, lengths with padding, and valid CTC targets."
    t = scale * torch.randn(N, T, C)
    s = torch.randn(N, T, C, requires_grad=True)
    lengths = torch.tensor([T] + [max(1, T - 3 * i) for i in range(1, N)])
    target_lengths = torch.tensor([min(3, int(l) // 2) for l in lengths])
    targets = torch.randint(1, C, (int(target_lengths.sum()),))
    return s, t, lengths, targets, target_lengths


def manual_kl(s, t, lengths, tau):
    "Plain frame-wise KL by torch's own kl_div: sum over classes, mean over real frames."
    kl = F.kl_div(F.log_softmax(s / tau, -1), F.log_softmax(t / tau, -1), log_target=True, reduction="none").sum(-1)
    m = real_frames(lengths, s.shape[1])
    return (kl * m).sum() / m.sum()

# ---------------------------------------------------------------- values of the KL

@pytest.mark.parametrize("blank", BLANK_MODES)
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0, 4.0])
def test_kl_zero_when_student_equals_teacher(blank, tau):
    _, t, lengths, _, _ = batch()
    assert kd_kl(t.clone().requires_grad_(), t, lengths, tau, blank).item() == 0.0


@pytest.mark.parametrize("tau", [1.0, 2.0, 3.5])
def test_plain_kl_matches_torch_kl_div(tau):
    s, t, lengths, _, _ = batch()
    torch.testing.assert_close(kd_kl(s, t, lengths, tau, "plain"), manual_kl(s, t, lengths, tau), rtol=1e-5, atol=1e-6)


def test_plain_kl_is_a_frame_mean_over_the_batch():
    "The documented reduction: long lines weigh by their number of real frames."
    s, t, lengths, _, _ = batch(N=3, T=12)
    per_item = torch.stack([kd_kl(s[i:i + 1], t[i:i + 1], lengths[i:i + 1]) for i in range(3)])
    expected = (per_item * lengths).sum() / lengths.sum()
    torch.testing.assert_close(kd_kl(s, t, lengths), expected, rtol=1e-5, atol=1e-6)


def test_nonblank_is_weighted_by_teacher_non_blank_probability():
    s, t, lengths, _, _ = batch()
    tau = 2.0
    kl = F.kl_div(F.log_softmax(s / tau, -1), F.log_softmax(t / tau, -1), log_target=True, reduction="none").sum(-1)
    w = (1 - t.softmax(-1)[..., 0]) * real_frames(lengths, t.shape[1])  # τ = 1 posterior of the Teacher
    torch.testing.assert_close(kd_kl(s, t, lengths, tau, "nonblank"), (w * kl).sum() / w.sum(), rtol=1e-5, atol=1e-6)


def test_dropblank_renormalises_over_characters_at_teacher_character_frames():
    s, t, lengths, _, _ = batch()
    t[0, :4, 0] += 20.0  # make sure some frames have a blank argmax
    tau = 2.0
    kl = F.kl_div(F.log_softmax(s[..., 1:] / tau, -1), F.log_softmax(t[..., 1:] / tau, -1), log_target=True, reduction="none").sum(-1)
    keep = real_frames(lengths, t.shape[1]) * (t.argmax(-1) != 0)
    assert 0 < keep.sum() < real_frames(lengths, t.shape[1]).sum()
    torch.testing.assert_close(kd_kl(s, t, lengths, tau, "dropblank"), (keep * kl).sum() / keep.sum(), rtol=1e-5, atol=1e-6)
    # the student's blank logit does not matter at all
    s2 = s.detach().clone(); s2[..., 0] += 100 * torch.randn(s2.shape[:2])
    torch.testing.assert_close(kd_kl(s2, t, lengths, tau, "dropblank"), kd_kl(s, t, lengths, tau, "dropblank"))


@pytest.mark.parametrize("blank", BLANK_MODES)
@pytest.mark.parametrize("seed", range(5))
def test_kl_non_negative_for_random_inputs(blank, seed):
    g = torch.Generator().manual_seed(seed)
    s, t = 5 * torch.randn(4, 15, 9, generator=g), 5 * torch.randn(4, 15, 9, generator=g)
    lengths = torch.randint(1, 16, (4,), generator=g)
    for tau in (0.3, 1.0, 2.0, 8.0):
        assert kd_kl(s, t, lengths, tau, blank).item() > 0


def test_kl_parts_add_up_and_are_non_negative():
    s, t = 3 * torch.randn(5, 20, 11), 6 * torch.randn(5, 20, 11)
    for tau in (1.0, 2.0, 4.0):
        b, c = kl_parts(s, t, tau)
        full = F.kl_div(soft_log_probs(s, tau), soft_log_probs(t, tau), log_target=True, reduction="none").sum(-1)
        torch.testing.assert_close(b + c, full, rtol=1e-4, atol=1e-5)
        assert (b > -1e-5).all() and (c > -1e-5).all()

# ---------------------------------------------------------------- gradients and padding

@pytest.mark.parametrize("blank", BLANK_MODES)
def test_gradient_flows_to_student_only(blank):
    s, t, lengths, _, _ = batch()
    t = t.requires_grad_()
    kl = kd_kl(s, t, lengths, 2.0, blank)
    assert kl.item() > 0
    kl.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize("blank", BLANK_MODES)
def test_padded_frames_do_not_count(blank):
    s, t, lengths, targets, target_lengths = batch()
    ref = kd_kl(s, t, lengths, 2.0, blank)
    ref_loss = kd_loss(s, t, lengths, targets, target_lengths, blank=blank)["loss"]
    # garbage inside the existing padding ...
    pad = ~real_frames(lengths, s.shape[1]).bool()
    s2 = torch.where(pad[..., None], 1e4 * torch.randn_like(s), s)
    t2 = torch.where(pad[..., None], -1e4 * torch.randn_like(t), t)
    torch.testing.assert_close(kd_kl(s2, t2, lengths, 2.0, blank), ref)
    # ... and extra garbage frames appended beyond every length
    s3 = torch.cat([s, 100 * torch.randn(3, 5, 7)], 1)
    t3 = torch.cat([t, 100 * torch.randn(3, 5, 7)], 1)
    torch.testing.assert_close(kd_kl(s3, t3, lengths, 2.0, blank), ref)
    torch.testing.assert_close(kd_loss(s3, t3, lengths, targets, target_lengths, blank=blank)["loss"], ref_loss)


@pytest.mark.parametrize("blank", BLANK_MODES)
def test_padded_student_frames_get_no_gradient(blank):
    s, t, lengths, targets, target_lengths = batch()
    kd_loss(s, t, lengths, targets, target_lengths, blank=blank)["loss"].backward()
    pad = ~real_frames(lengths, s.shape[1]).bool()
    assert s.grad[pad].abs().sum() == 0
    assert torch.isfinite(s.grad).all()


def test_no_real_frames_gives_zero_not_nan():
    s, t = torch.randn(2, 4, 5, requires_grad=True), torch.randn(2, 4, 5)
    for blank in BLANK_MODES:
        kl = kd_kl(s, t, torch.tensor([0, 0]), 2.0, blank)
        assert kl.item() == 0.0
        kl.backward()
        assert torch.isfinite(s.grad).all()

# ---------------------------------------------------------------- blank handling

def test_nonblank_downweights_blank_confident_frames():
    "Changing the Student at a frame the Teacher is sure is a blank moves plain KL a lot, nonblank KL hardly, dropblank not at all."
    T, C = 10, 6
    t = torch.zeros(1, T, C)
    t[0, :, 0] = 12.0  # blank-confident frames ...
    t[0, 5, 0], t[0, 5, 3] = 0.0, 8.0  # ... except frame 5, a confident "3"
    s = t.clone() + 0.5 * torch.randn(1, T, C)
    lengths = torch.tensor([T])
    s_bad = s.clone()
    s_bad[0, 2] = torch.tensor([0.0, 6.0, 0.0, 0.0, 0.0, 0.0])  # Student badly wrong on blank frame 2
    delta = {b: (kd_kl(s_bad, t, lengths, 2.0, b) - kd_kl(s, t, lengths, 2.0, b)).item() for b in BLANK_MODES}
    assert delta["plain"] > 0.1
    assert abs(delta["nonblank"]) < 1e-3 * delta["plain"]
    assert delta["dropblank"] == 0.0
    # the character frame still counts fully under nonblank
    s_bad2 = s.clone(); s_bad2[0, 5] = torch.tensor([0.0, 8.0, 0.0, 0.0, 0.0, 0.0])
    assert (kd_kl(s_bad2, t, lengths, 2.0, "nonblank") - kd_kl(s, t, lengths, 2.0, "nonblank")).item() > 1.0


def test_nonblank_weight_does_not_depend_on_tau():
    "Weights come from the Teacher's τ = 1 posterior: at a single frame the nonblank KL equals the plain KL for any τ."
    s, t = torch.randn(1, 1, 6), 4 * torch.randn(1, 1, 6)
    for tau in (1.0, 2.0, 5.0):
        torch.testing.assert_close(kd_kl(s, t, torch.tensor([1]), tau, "nonblank"), kd_kl(s, t, torch.tensor([1]), tau, "plain"))

# ---------------------------------------------------------------- temperature

def entropy(lp): return -(lp.exp() * lp).sum(-1)


def test_higher_tau_softens():
    t = 5 * torch.randn(4, 10, 8)
    ents = [entropy(soft_log_probs(t, tau)).mean().item() for tau in (0.5, 1, 2, 4, 8, 32)]
    assert all(a < b for a, b in zip(ents, ents[1:]))
    assert ents[-1] < math.log(8) + 1e-6
    torch.testing.assert_close(soft_log_probs(t, 1e7).exp(), torch.full((4, 10, 8), 1 / 8), rtol=0, atol=1e-5)


def test_soft_log_probs_is_float32_for_low_precision_logits():
    t = torch.randn(2, 3, 5).to(torch.bfloat16)
    assert soft_log_probs(t, 2.0).dtype == torch.float32
    s = torch.randn(2, 3, 5).to(torch.bfloat16)
    assert kd_kl(s, t, torch.tensor([3, 2])).dtype == torch.float32

# ---------------------------------------------------------------- the combined loss and CTC

def test_ctc_loss_is_pytorch_mean_ctc():
    s, _, lengths, targets, target_lengths = batch()
    ref = nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)(s.log_softmax(-1).transpose(0, 1), targets, lengths, target_lengths)
    torch.testing.assert_close(ctc_loss(s, lengths, targets, target_lengths), ref)
    per_line = F.ctc_loss(s.log_softmax(-1).transpose(0, 1), targets, lengths, target_lengths, reduction="none")
    torch.testing.assert_close(ctc_loss(s, lengths, targets, target_lengths), (per_line / target_lengths).mean())


def test_ctc_loss_zero_infinity_for_impossible_lines():
    logits = torch.randn(2, 4, 5, requires_grad=True)
    # line 1: 3 repeated labels need 5 frames, it has 2: impossible -> contributes 0, not inf
    loss = ctc_loss(logits, torch.tensor([4, 2]), torch.tensor([1, 2, 3, 3, 3]), torch.tensor([2, 3]))
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[1].abs().sum() == 0


@pytest.mark.parametrize("bad,msg", [
    (dict(targets=torch.tensor([0, 1, 2, 3, 4, 5])), "0 is the blank"),
    (dict(targets=torch.tensor([1, 2, 3, 4, 5, 7])), "[1, 6]"),
    (dict(target_lengths=torch.tensor([1, 1, 1])), "add up to 3"),
    (dict(target_lengths=torch.tensor([3, 3])), "target_lengths must be 3 integers"),
    (dict(lengths=torch.tensor([12, 20, 3])), "lengths must lie in [0, 12]"),
    (dict(lengths=torch.tensor([12.0, 9.0, 6.0])), "integers"),
    (dict(targets=torch.tensor([1.0, 2, 3, 4, 5, 6])), "1-d integer tensor"),
])
def test_ctc_loss_rejects_bad_inputs(bad, msg):
    s, _, lengths, _, _ = batch()
    args = dict(logits=s, lengths=lengths, targets=torch.tensor([1, 2, 3, 4, 5, 6]), target_lengths=torch.tensor([2, 2, 2]))
    args.update(bad)
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        ctc_loss(**args)


@pytest.mark.parametrize("blank", BLANK_MODES)
def test_alpha_extremes_are_exact(blank):
    s, t, lengths, targets, target_lengths = batch()
    ctc = ctc_loss(s, lengths, targets, target_lengths)
    for tau in (1.0, 2.0, 3.0):
        assert torch.equal(kd_loss(s, t, lengths, targets, target_lengths, alpha=0.0, tau=tau, blank=blank)["loss"], ctc)
        out = kd_loss(s, t, lengths, targets, target_lengths, alpha=1.0, tau=tau, blank=blank)
        assert torch.equal(out["loss"], tau**2 * kd_kl(s, t, lengths, tau, blank))


def test_kd_loss_mix_and_keys():
    s, t, lengths, targets, target_lengths = batch()
    out = kd_loss(s, t, lengths, targets, target_lengths, alpha=0.3, tau=3.0, blank="nonblank")
    assert set(out) == {"loss", "ctc", "kl"}
    torch.testing.assert_close(out["ctc"], ctc_loss(s, lengths, targets, target_lengths))
    torch.testing.assert_close(out["kl"], kd_kl(s, t, lengths, 3.0, "nonblank"))
    torch.testing.assert_close(out["loss"], 0.7 * out["ctc"] + 0.3 * 9.0 * out["kl"])
    feat = torch.tensor(0.5)
    out2 = kd_loss(s, t, lengths, targets, target_lengths, alpha=0.3, tau=3.0, blank="nonblank", feature_loss=feat, feature_weight=2.0)
    assert set(out2) == {"loss", "ctc", "kl", "feat"}
    torch.testing.assert_close(out2["loss"], out["loss"] + 1.0)
    out2["loss"].backward()
    assert s.grad is not None


@pytest.mark.parametrize("kw,msg", [
    (dict(alpha=-0.01), "alpha"), (dict(alpha=1.01), "alpha"), (dict(alpha=float("nan")), "alpha"),
    (dict(tau=0.0), "tau"), (dict(tau=-2.0), "tau"), (dict(tau=float("inf")), "tau"), (dict(tau=float("nan")), "tau"),
    (dict(tau=True), "tau"), (dict(blank="blank"), "blank"), (dict(feature_weight=-0.5), "feature_weight"),
])
def test_out_of_range_settings_raise(kw, msg):
    s, t, lengths, targets, target_lengths = batch()
    with pytest.raises(ValueError, match=msg):
        kd_loss(s, t, lengths, targets, target_lengths, **kw)
    with pytest.raises(ValueError, match=msg):
        KDConfig(**kw)
    if "tau" in kw or "blank" in kw:
        with pytest.raises(ValueError, match=msg):
            kd_kl(s, t, lengths, **kw)


def test_shape_mismatch_raises():
    s, t, lengths, _, _ = batch()
    with pytest.raises(ValueError, match="same"):
        kd_kl(s, t[:, :-1], lengths)
    with pytest.raises(ValueError, match="same"):
        kd_kl(s, t[..., :-1], lengths)
    with pytest.raises(ValueError, match="lengths must have shape"):
        kd_kl(s, t, lengths[:2])
    with pytest.raises(ValueError, match="N, T, C"):
        kd_kl(s[0], t[0], lengths)


def test_kdconfig_defaults_and_use():
    cfg = KDConfig()
    assert asdict(cfg) == dict(alpha=0.5, tau=2.0, blank="plain", feature_weight=0.0)
    assert not cfg.use_features and KDConfig(feature_weight=0.1).use_features
    s, t, lengths, targets, target_lengths = batch()
    assert torch.equal(kd_loss(s, t, lengths, targets, target_lengths, **asdict(cfg))["loss"],
                       kd_loss(s, t, lengths, targets, target_lengths)["loss"])
    with pytest.raises(Exception):
        cfg.alpha = 0.9

# ---------------------------------------------------------------- feature distillation

def test_feature_term_zero_when_projected_features_match():
    proj = FeatureProjector(6, 10)
    sf, lengths = torch.randn(3, 7, 6), torch.tensor([7, 4, 0])
    tf = proj(sf).detach()
    assert feature_kd(sf, tf, lengths, proj).item() == 0.0
    tf[1, 4:] = 1e3  # padding only
    assert feature_kd(sf, tf, lengths, proj).item() == 0.0


def test_feature_term_value_and_gradients():
    proj = FeatureProjector(4, 5)
    sf = torch.randn(2, 6, 4, requires_grad=True)
    tf = torch.randn(2, 6, 5, requires_grad=True)
    lengths = torch.tensor([6, 2])
    loss = feature_kd(sf, tf, lengths, proj)
    m = real_frames(lengths, 6)[..., None]
    expected = (((proj(sf) - tf) ** 2) * m).sum() / (m.sum() * 5)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert tf.grad is None
    assert sf.grad[0].abs().sum() > 0 and sf.grad[1, 2:].abs().sum() == 0
    assert proj.weight.grad is not None


def test_feature_shape_mismatch_raises():
    with pytest.raises(ValueError, match="FeatureProjector"):
        feature_kd(torch.randn(2, 3, 4), torch.randn(2, 3, 5), torch.tensor([3, 3]))

# ---------------------------------------------------------------- a frozen Teacher

class ToyCTC(nn.Module):
    def __init__(self, d_in=8, hidden=16, n_classes=6, p_drop=0.3):
        super().__init__()
        self.conv, self.bn = nn.Conv1d(d_in, hidden, 3, padding=1), nn.BatchNorm1d(hidden)
        self.drop, self.head = nn.Dropout(p_drop), nn.Linear(hidden, n_classes)

    def forward(self, x):
        h = self.drop(F.relu(self.bn(self.conv(x.transpose(1, 2)))).transpose(1, 2))
        return self.head(h), h


def toy_step(models, proj, opt, x, lengths, targets, target_lengths):
    t_logits, t_feats = teacher_forward(models["teacher"], x)
    s_logits, s_feats = models["student"](x)
    out = kd_loss(s_logits, t_logits, lengths, targets, target_lengths,
                  feature_loss=feature_kd(s_feats, t_feats, lengths, proj), feature_weight=0.1)
    opt.zero_grad(); out["loss"].backward(); opt.step()
    return t_logits, out


def test_freeze_teacher():
    m = ToyCTC()
    assert freeze_teacher(m) is m
    assert not m.training and not any(mod.training for mod in m.modules())
    assert not any(p.requires_grad for p in m.parameters())


def test_training_step_leaves_teacher_unchanged():
    models = nn.ModuleDict(dict(teacher=freeze_teacher(ToyCTC(hidden=24)), student=ToyCTC(hidden=12)))
    proj = FeatureProjector(12, 24)
    teacher_before = {k: v.clone() for k, v in models["teacher"].state_dict().items()}
    student_before = {k: v.clone() for k, v in models["student"].state_dict().items()}
    # even if the teacher's params end up in the optimiser, they have no grad and are skipped
    opt = torch.optim.AdamW(list(models.parameters()) + list(proj.parameters()), 1e-2, weight_decay=0.01)
    x, lengths = torch.randn(3, 10, 8), torch.tensor([10, 8, 5])
    targets, target_lengths = torch.tensor([1, 2, 3, 4, 1, 5]), torch.tensor([3, 2, 1])
    for _ in range(3):
        models.train()  # a trainer's train() on the parent flips the teacher back to training mode
        t_logits, out = toy_step(models, proj, opt, x, lengths, targets, target_lengths)
        assert not models["teacher"].training
        assert not t_logits.requires_grad
    for k, v in models["teacher"].state_dict().items():
        assert torch.equal(v, teacher_before[k]), k  # parameters and BatchNorm running stats
    assert all(p.grad is None for p in models["teacher"].parameters())
    assert not torch.equal(models["student"].state_dict()["bn.running_mean"], student_before["bn.running_mean"])
    assert not torch.equal(models["student"].state_dict()["head.weight"], student_before["head.weight"])


def test_teacher_outputs_are_deterministic_and_graph_free():
    teacher = freeze_teacher(ToyCTC())
    teacher.train()  # dropout would make outputs random in training mode
    x = torch.randn(2, 6, 8)
    a, _ = teacher_forward(teacher, x)
    b, _ = teacher_forward(teacher, x)
    assert torch.equal(a, b) and a.grad_fn is None
    with teacher_context(teacher) as t:
        assert t is teacher and not teacher.training and not torch.is_grad_enabled()
        c, _ = t(x)
    assert torch.equal(a, c) and torch.is_grad_enabled()


def test_without_freezing_batchnorm_would_drift():
    "Sanity check that the test above can fail: a teacher left in train mode updates its running stats."
    teacher = ToyCTC()
    before = teacher.bn.running_mean.clone()
    with torch.no_grad(): teacher(torch.randn(2, 6, 8))
    assert not torch.equal(teacher.bn.running_mean, before)

# ---------------------------------------------------------------- distillation alone reproduces the Teacher

@pytest.mark.parametrize("blank", ["plain", "nonblank"])
def test_free_student_converges_to_teacher(blank):
    t = 2 * torch.randn(2, 6, 5)
    lengths = torch.tensor([6, 4])
    student = torch.zeros(2, 6, 5, requires_grad=True)
    opt = torch.optim.Adam([student], 0.1)
    for _ in range(300):
        kl = kd_kl(student, t, lengths, 2.0, blank)
        opt.zero_grad(); kl.backward(); opt.step()
    assert kl.item() < 1e-4
    torch.testing.assert_close(student.softmax(-1)[0], t.softmax(-1)[0], rtol=0, atol=2e-3)
    torch.testing.assert_close(student.softmax(-1)[1, :4], t.softmax(-1)[1, :4], rtol=0, atol=2e-3)
    assert torch.equal(student[1, 4:], torch.zeros(2, 5))  # padded frames never move


def test_free_student_converges_on_characters_with_dropblank():
    t = 2 * torch.randn(1, 8, 5)
    t[0, ::2, 0] += 10.0  # even frames: teacher says blank; odd frames: a character
    lengths = torch.tensor([8])
    student = torch.zeros(1, 8, 5, requires_grad=True)
    opt = torch.optim.Adam([student], 0.1)
    for _ in range(300):
        kl = kd_kl(student, t, lengths, 2.0, "dropblank")
        opt.zero_grad(); kl.backward(); opt.step()
    chars = t.argmax(-1)[0] != 0
    torch.testing.assert_close(student[0, chars, 1:].softmax(-1), t[0, chars, 1:].softmax(-1), rtol=0, atol=2e-3)
    assert torch.equal(student[0, ~chars], torch.zeros(int((~chars).sum()), 5))  # blank frames: no signal
    assert torch.equal(student[0, :, 0], torch.zeros(8))  # the blank logit: no signal
