"Extra checks for jand.backbone: shapes, frame counts, gate and SE maths, max-norm, gradients, padding invariance, costs."
import math
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from jand.backbone import (Backbone, BackboneConfig, FLOR_STAGES, FullGatedConv2d, GatedConv2d, SEBlock, StageSpec,
                           cost_table, count_macs, count_params, format_table, frame_lengths, frame_mask, max_norm_,
                           receptive_field, stage_specs)


@pytest.fixture(scope="module")
def default_eval():
    torch.manual_seed(0)
    return Backbone().eval()


def randomise_bn(model, seed=0):
    "Non-trivial BatchNorm statistics, so that padding turns into non-zero features in eval mode."
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model


# ---------------------------------------------------------------- shapes and frames

@pytest.mark.parametrize("h", [64, 128])
@pytest.mark.parametrize("w", [8, 16, 96, 200, 203, 1024])
def test_output_shape(default_eval, h, w):
    with torch.no_grad(): y = default_eval(torch.rand(2, 1, h, w))
    assert y.shape == (2, math.ceil(w / 8), 64)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("w", [8, 64, 200, 512, 1024])
def test_frame_count_is_width_over_8_for_multiples_of_8(default_eval, w):
    with torch.no_grad(): y = default_eval(torch.rand(1, 1, 64, w), widths=[w])
    assert y.shape[1] == w // 8 == int(frame_lengths([w])[0])


@pytest.mark.parametrize("h", [32, 40, 48, 96])
def test_other_heights_are_padded_to_a_multiple_of_32(default_eval, h):
    with torch.no_grad(): assert default_eval(torch.rand(1, 1, h, 40)).shape == (1, 5, 64)


def test_out_dim_follows_the_last_width_and_not_the_height():
    bb = Backbone(BackboneConfig(widths=(8, 12, 16, 20, 24, 28))).eval()
    assert bb.out_dim == 28
    with torch.no_grad():
        for h in (64, 128): assert bb(torch.rand(1, 1, h, 80)).shape == (1, 10, 28)


def test_frame_lengths_and_mask():
    assert frame_lengths([0, 1, 7, 8, 9, 15, 16, 17, 1024]).tolist() == [0, 1, 1, 1, 2, 2, 2, 3, 128]
    assert frame_lengths(torch.tensor([5, 6]), stride=2).tolist() == [3, 3]
    assert frame_lengths(torch.tensor([3], dtype=torch.int32)).dtype == torch.long
    m = frame_mask([8, 17, 40])
    assert m.shape == (3, 5) and m.dtype == torch.bool
    assert m.tolist() == [[False, True, True, True, True], [False, False, False, True, True], [False] * 5]
    assert frame_mask([8], n_frames=3).tolist() == [[False, True, True]]
    assert (~frame_mask([64, 203])).sum(1).tolist() == frame_lengths([64, 203]).tolist()
    for bad, msg in [([-3], "non-negative"), ([2.5], "integers"), ([[8, 16]], "1-d")]:
        with pytest.raises(ValueError, match=msg): frame_lengths(bad)


def test_widths_are_checked(default_eval):
    x = torch.rand(2, 1, 64, 48)
    for bad in ([48], [0, 48], [48, 49], [[48, 48]]):
        with pytest.raises(ValueError, match="widths"): default_eval(x, widths=bad)


# ---------------------------------------------------------------- gated convolutions

def test_full_gated_conv_is_value_times_sigmoid_gate():
    x = torch.tensor([[[[-2.0, -0.5, 0.0, 0.5, 3.0]]]])
    fg = FullGatedConv2d(1, 1, kernel_size=1, padding=0)
    with torch.no_grad():
        fg.conv.weight.copy_(torch.tensor([3.0, -1.0]).view(2, 1, 1, 1)); fg.conv.bias.copy_(torch.tensor([1.0, 0.5]))
    expect = (3 * x + 1) * torch.sigmoid(-x + 0.5)
    torch.testing.assert_close(fg(x), expect)


def test_full_gated_conv_matches_an_explicit_split():
    torch.manual_seed(1)
    fg = FullGatedConv2d(3, 5)
    x = torch.randn(2, 3, 6, 9)
    out = F.conv2d(x, fg.conv.weight, fg.conv.bias, padding=1)
    torch.testing.assert_close(fg(x), out[:, :5] * torch.sigmoid(out[:, 5:]))
    assert fg.conv.out_channels == 10 and fg(x).shape == (2, 5, 6, 9)


def test_plain_gated_conv_gates_its_input():
    torch.manual_seed(2)
    g = GatedConv2d(4)
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(g(x), x * torch.sigmoid(g.conv(x)))
    with torch.no_grad(): g.conv.weight.zero_(); g.conv.bias.zero_()
    torch.testing.assert_close(g(x), x / 2)  # a zero gate lets half through


# ---------------------------------------------------------------- SE

def test_se_weights_are_in_unit_interval_per_channel():
    torch.manual_seed(3)
    se = SEBlock(40, ratio=8)
    x = torch.randn(4, 40, 2, 13) * 10
    w = se.scale(x)
    assert w.shape == (4, 40, 1, 1) and ((w >= 0) & (w <= 1)).all()
    torch.testing.assert_close(se(x), x * w)
    assert se.fc1.out_features == 5


def test_se_hidden_size_never_drops_to_zero():
    assert SEBlock(4, ratio=8).fc1.out_features == 1


def test_no_se_unit_starts_dead():
    # with the default bias, about half the units of a thin bottleneck start negative for every line (no gradient, ever)
    for seed in range(5):
        torch.manual_seed(seed)
        bb = Backbone().train()
        pre = []
        hooks = [m.fc1.register_forward_hook(lambda m, a, o: pre.append(o)) for m in bb.modules() if isinstance(m, SEBlock)]
        bb(torch.rand(4, 1, 64, 128) * (torch.rand(4, 1, 64, 128) > 0.8))
        for h in hooks: h.remove()
        assert all(((p > 0).any(0)).all() for p in pre)


def test_masked_se_ignores_padding():
    torch.manual_seed(4)
    se = SEBlock(16)
    x = torch.randn(2, 16, 3, 20)
    lengths = torch.tensor([7, 20])
    y = se(x, lengths)
    torch.testing.assert_close(y[:1, ..., :7], se(x[:1, ..., :7]))
    torch.testing.assert_close(y[1:], se(x[1:]))


# ---------------------------------------------------------------- max-norm

def gate_convs(model):
    return [m for m in model.modules() if isinstance(m, (FullGatedConv2d, GatedConv2d))]


def test_max_norm_helper():
    w = torch.randn(6, 3, 3, 3) * 10
    w[0] = 0.01  # a short filter is left alone
    before = w[0].clone()
    max_norm_(w, 4.0)
    assert (w.flatten(1).norm(dim=1) <= 4.0 + 1e-5).all()
    torch.testing.assert_close(w[0], before)


@pytest.mark.parametrize("gate", ["full", "simple"])
def test_max_norm_is_respected_after_a_step(gate):
    torch.manual_seed(5)
    bb = Backbone(BackboneConfig(widths=(4, 6, 8, 8, 8, 8), gate=gate)).train()
    limited = [g for g in gate_convs(bb) if g.max_norm]
    assert len(limited) == 3 and all(g.max_norm == 4.0 for g in limited)  # stages 3–5 only
    opt = torch.optim.SGD(bb.parameters(), lr=1e4)
    x = torch.rand(2, 1, 64, 48)
    bb(x).pow(2).mean().backward(); opt.step()
    assert any((g.conv.weight.flatten(1).norm(dim=1) > 4.0).any() for g in limited)  # the step pushed them out
    bb(x)  # the next training forward projects them back before using them
    for g in limited: assert (g.conv.weight.flatten(1).norm(dim=1) <= 4.0 + 1e-4).all()
    for g in limited:
        with torch.no_grad(): g.conv.weight.mul_(10)
    bb.eval()  # switching to eval also projects
    for g in limited: assert (g.conv.weight.flatten(1).norm(dim=1) <= 4.0 + 1e-4).all()


def test_max_norm_off_and_unconstrained_stages_are_untouched():
    torch.manual_seed(6)
    bb = Backbone(BackboneConfig(widths=(4, 6, 8, 8, 8, 8), max_norm=None)).train()
    for g in gate_convs(bb):
        with torch.no_grad(): g.conv.weight.mul_(100)
    big = [g.conv.weight.clone() for g in gate_convs(bb)]
    bb(torch.rand(1, 1, 64, 16)); bb.eval()
    for g, w in zip(gate_convs(bb), big): torch.testing.assert_close(g.conv.weight, w)


def test_two_forwards_then_one_backward_work_with_max_norm():
    torch.manual_seed(7)
    bb = Backbone(BackboneConfig(widths=(4, 6, 8, 8, 8, 8))).train()
    for g in gate_convs(bb):
        with torch.no_grad(): g.conv.weight.mul_(100)
    x = torch.rand(2, 1, 64, 32)
    loss = bb(x).sum() + bb(x.flip(-1)).sum()
    loss.backward()  # the renorm does not invalidate the first graph


# ---------------------------------------------------------------- gradients and parameters

@pytest.mark.parametrize("cfg", [BackboneConfig(widths=(8, 8, 8, 8, 8, 8), se_ratio=2),
                                 BackboneConfig(widths=(8, 8, 8, 8, 8, 8), se_ratio=2, fast_stem=True, gate="simple"),
                                 BackboneConfig(widths=(8, 8, 8, 8, 8, 8), se_ratio=2, gated=False, dropout=0.0)])
def test_gradient_reaches_every_parameter(cfg):
    torch.manual_seed(8)
    bb = Backbone(cfg).train()
    x = torch.rand(3, 1, 64, 56)
    y = bb(x, widths=[56, 40, 17])
    (y * torch.randn_like(y)).sum().backward()
    for name, p in bb.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def se_params(cfg):
    return sum(2 * c * max(1, c // cfg.se_ratio) + max(1, c // cfg.se_ratio) + c for c in cfg.widths[:5])


@pytest.mark.parametrize("cfg", [BackboneConfig(), BackboneConfig(se_ratio=4),
                                 BackboneConfig(widths=(8, 16, 24, 32, 40, 48), se_ratio=16)])
def test_se_switch_changes_the_parameter_count_as_expected(cfg):
    on, off = Backbone(cfg), Backbone(BackboneConfig(**{**cfg.__dict__, "se": False}))
    assert count_params(on) - count_params(off) == se_params(cfg)
    assert sum(isinstance(m, SEBlock) for m in on.modules()) == 5


def test_flor_parameter_count():
    # convolutions with biases + one PReLU slope per channel + BatchNorm scale and shift (Flor's ≈ 237 k)
    conv = (9 * 1 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 16 * 32 + 32) + (9 * 32 * 64 + 64) + (8 * 32 * 40 + 40) \
         + (9 * 40 * 80 + 80) + (9 * 40 * 48 + 48) + (9 * 48 * 96 + 96) + (8 * 48 * 56 + 56) + (9 * 56 * 112 + 112) \
         + (9 * 56 * 64 + 64)
    per_channel = 3 * sum(BackboneConfig().widths)
    assert count_params(Backbone(BackboneConfig(se=False))) == conv + per_channel == 237_200
    assert count_params(Backbone()) == 237_200 + 2_296


def test_gated_off_removes_the_gates_and_the_se_blocks_follow_the_stage():
    bb = Backbone(BackboneConfig(gated=False))
    assert not gate_convs(bb) and sum(isinstance(m, SEBlock) for m in bb.modules()) == 5
    assert count_params(Backbone(BackboneConfig(gate="simple"))) < count_params(Backbone())


def test_config_is_frozen_and_validated():
    cfg = BackboneConfig()
    with pytest.raises(Exception): cfg.se = False
    for kw, msg in [(dict(widths=(16, 32, 40)), "six"), (dict(widths=(16, 32, 40, 48, 56, 0)), "six"),
                    (dict(se_ratio=0), "se_ratio"), (dict(dropout=1.0), "dropout"), (dict(max_norm=0.0), "max_norm"),
                    (dict(gate="other"), "gate")]:
        with pytest.raises(ValueError, match=msg): BackboneConfig(**kw)


# ---------------------------------------------------------------- strides, fast stem

def test_stage_specs_translate_w_h_to_h_w():
    specs = stage_specs(BackboneConfig())
    for spec, ((kw, kh), (sw, sh)) in zip(specs, FLOR_STAGES):
        assert spec.kernel == (kh, kw) and spec.stride == (sh, sw)
    assert [s.gated for s in specs] == [True] * 5 + [False]
    assert [s.regularised for s in specs] == [False, False, True, True, True, False]
    assert specs[0].padding == (1, 1) and specs[2].padding == (0, 0)


def test_fast_stem_keeps_the_frame_rate_and_halves_the_macs():
    fast_specs = stage_specs(BackboneConfig(fast_stem=True))
    assert math.prod(s.stride[1] for s in fast_specs) == 8 and math.prod(s.stride[0] for s in fast_specs) == 32
    assert fast_specs[1].stride == (4, 2) and fast_specs[2].stride == (1, 1)
    torch.manual_seed(9)
    fast, slow = Backbone(BackboneConfig(fast_stem=True)).eval(), Backbone().eval()
    assert fast.frame_stride == slow.frame_stride == 8
    for w in (8, 200, 203, 512):
        with torch.no_grad(): assert fast(torch.rand(1, 1, 64, w)).shape == slow(torch.rand(1, 1, 64, w)).shape
    m_fast, m_slow = (sum(count_macs(m, (1, 1, 64, 512)).values()) for m in (fast, slow))
    assert m_fast < 0.6 * m_slow


def test_receptive_field():
    assert receptive_field() == 77
    assert receptive_field(BackboneConfig(gated=False)) < receptive_field()


# ---------------------------------------------------------------- padding

@pytest.mark.parametrize("fast_stem", [False, True])
def test_padding_never_changes_real_frames_when_widths_are_given(fast_stem):
    torch.manual_seed(10)
    bb = randomise_bn(Backbone(BackboneConfig(fast_stem=fast_stem))).eval()
    widths = [203, 64, 121]
    lines = [torch.rand(1, 1, 64, w) for w in widths]
    batch = torch.zeros(3, 1, 64, 256)
    for k, l in enumerate(lines): batch[k, :, :, :l.shape[-1]] = l
    batch[1, :, :, 64:] = 0.7  # even padding that is not paper does not leak in
    with torch.no_grad():
        out = bb(batch, widths=widths)
        for k, l in enumerate(lines):
            alone = bb(l, widths=[l.shape[-1]])
            t = int(frame_lengths([l.shape[-1]])[0])
            torch.testing.assert_close(out[k, :t], alone[0, :t], atol=1e-5, rtol=1e-4)
        assert (out[frame_mask(widths, out.shape[1])] == 0).all()  # padded frames are zero


def test_without_masking_only_frames_away_from_the_edge_are_invariant():
    torch.manual_seed(11)
    bb = randomise_bn(Backbone(BackboneConfig(se=False))).eval()
    line = torch.rand(1, 1, 64, 200)
    padded = torch.cat([line, torch.zeros(1, 1, 64, 160)], dim=3)
    with torch.no_grad(): alone, batched = bb(line), bb(padded)
    safe = (200 - receptive_field()) // 8  # frames whose receptive field ends inside the line
    torch.testing.assert_close(batched[:, :safe], alone[:, :safe], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(batched[:, 24], alone[:, 24], atol=1e-3)  # the last frame sees the padding


def test_eval_is_deterministic_and_batch_independent(default_eval):
    x = torch.rand(4, 1, 64, 96)
    with torch.no_grad():
        a, b = default_eval(x, widths=[96] * 4), default_eval(x[2:3], widths=[96])
    torch.testing.assert_close(a[2:3], b, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- costs

def test_count_macs_by_hand():
    assert count_macs(nn.Conv2d(3, 8, (4, 2), stride=(4, 2)), (2, 3, 64, 50))[""] == 2 * 8 * 16 * 25 * 3 * 8
    assert count_macs(nn.Conv2d(8, 8, 3, padding=1, groups=4), (1, 8, 5, 5))[""] == 8 * 25 * 2 * 9
    assert count_macs(FullGatedConv2d(4, 6), (1, 4, 7, 7))["conv"] == 12 * 49 * 4 * 9
    mha = nn.MultiheadAttention(16, 4)  # sequence-first
    class Wrap(nn.Module):
        def __init__(self): super().__init__(); self.mha = mha
        def forward(self, x): return self.mha(query=x, key=x, value=x)[0]
    l, n, e = 12, 3, 16
    assert count_macs(Wrap(), (l, n, e))["mha"] == n * (4 * l * e * e + 2 * l * l * e)


def test_count_macs_leaves_the_model_as_it_was():
    bb = Backbone(BackboneConfig(widths=(4, 6, 8, 8, 8, 8))).train()
    bb.stages[0].eval()
    stats = [m.running_mean.clone() for m in bb.modules() if isinstance(m, nn.BatchNorm2d)]
    count_macs(bb, (2, 1, 64, 40))
    assert bb.training and not bb.stages[0].training and bb.stages[1].training
    for s, m in zip(stats, [m for m in bb.modules() if isinstance(m, nn.BatchNorm2d)]): torch.testing.assert_close(s, m.running_mean)
    assert not any(m._forward_hooks for m in bb.modules())


def test_flor_macs_per_column_and_the_cost_table():
    flor = Backbone(BackboneConfig(se=False))
    assert sum(count_macs(flor, (1, 1, 64, 512)).values()) == 667_808 * 512
    rows = cost_table(Backbone(), (1, 1, 64, 512))
    assert [r["name"] for r in rows] == [f"stages.{i}" for i in range(6)] + ["total"]
    assert rows[-1]["params"] == count_params(Backbone())
    assert rows[-1]["macs"] == sum(r["macs"] for r in rows[:-1])
    assert rows[0]["macs"] + rows[1]["macs"] > 0.6 * rows[-1]["macs"]  # compute sits in the early stages
    assert "stages.0" in format_table(rows) and "total" in format_table(rows)
