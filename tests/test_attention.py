"Extra checks for jand.attention: shapes, padding invariance for every fusion and variant, gradients, the Proxima prior, maps."
import itertools, math
import pytest
import torch
from torch import nn
from jand.attention import (FUSIONS, PROXIMA_VARIANTS, AttentionBlock, AttentionConfig, AttentionStack, CombinedAttention,
                            MultiHeadSelfAttention, ProximaAttention, ProximaBias, SelfAttention, attend, attention_mask,
                            distances, pad_mask_from_lengths, sinusoidal_encoding)

ALL = list(itertools.product(FUSIONS, PROXIMA_VARIANTS))


def n_params(m): return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

# ---------------------------------------------------------------- shapes and config

@pytest.mark.parametrize("fusion,variant", ALL)
def test_stack_shapes_and_maps(fusion, variant):
    s = AttentionStack(2, 32, 4, 2, fusion, variant, dropout=0.0, window=3).eval()
    x = torch.randn(3, 13, 32)
    mask = pad_mask_from_lengths(torch.tensor([13, 9, 1]))
    y = s(x, mask)
    assert y.shape == x.shape
    y2, maps = s(x, mask, return_maps=True)
    assert isinstance(maps, list) and len(maps) == 2
    want = {"mhsa": ["mhsa"], "proxima": ["proxima"]}.get(fusion, ["mhsa", "proxima"])
    for m in maps:
        assert sorted(m) == want
        for w in m.values(): assert w.shape == (3, 4, 13, 13)
    torch.testing.assert_close(y, y2, atol=1e-5, rtol=1e-5)


def test_config_round_trip_and_validation():
    cfg = AttentionConfig(n_blocks=3, d_model=48, n_heads=6, ffn_mult=3, fusion="concat", proxima="gaussian",
                          dropout=0.2, pos_enc=False, window=5, sigma=2.5, final_norm=False)
    s = AttentionStack.from_config(cfg)
    assert s.config == cfg and len(s.blocks) == 3 and isinstance(s.norm, nn.Identity)
    for bad, msg in [(dict(fusion="avg"), "fusion must be one of"), (dict(proxima="cos"), "proxima variant must be one of"),
                     (dict(d_model=30, n_heads=4), "must divide d_model"), (dict(n_blocks=0), "n_blocks must be ≥ 1"),
                     (dict(dropout=1.0), "dropout must be in")]:
        with pytest.raises(ValueError, match=msg): AttentionConfig(**bad)
    with pytest.raises(Exception): cfg.fusion = "sum"


def test_bad_inputs_are_refused():
    a = CombinedAttention(16, 2)
    with pytest.raises(ValueError, match="x must be"): a(torch.randn(5, 16))
    with pytest.raises(ValueError, match="pad_mask must be a bool tensor"): a(torch.randn(2, 5, 16), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="pad_mask must be a bool tensor"): a(torch.randn(2, 5, 16), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="fusion must be one of"): CombinedAttention(16, 2, "max")
    with pytest.raises(ValueError, match="window must be"): ProximaBias(2, "window", window=-1)
    with pytest.raises(ValueError, match="must divide"): SelfAttention(10, 3)


def test_pad_mask_from_lengths():
    m = pad_mask_from_lengths(torch.tensor([2, 0, 4]), 5)
    assert m.dtype == torch.bool and m.sum(1).tolist() == [3, 5, 1]

# ---------------------------------------------------------------- padding

@pytest.mark.parametrize("fusion,variant", ALL)
def test_padding_never_changes_real_frames(fusion, variant):
    s = AttentionStack(2, 32, 4, 2, fusion, variant, dropout=0.1, window=2).eval()
    lengths = [10, 6, 1]
    T = 16
    x = 50 * torch.randn(len(lengths), T, 32)  # garbage everywhere, real frames overwritten below
    alone = []
    for i, L in enumerate(lengths):
        xi = torch.randn(1, L, 32)
        x[i, :L] = xi[0]
        alone.append(s(xi)[0])
    out = s(x, pad_mask_from_lengths(torch.tensor(lengths), T))
    assert torch.isfinite(out).all()
    for i, L in enumerate(lengths):
        torch.testing.assert_close(out[i, :L], alone[i], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("variant", PROXIMA_VARIANTS)
def test_fully_padded_rows_are_finite_in_both_paths(variant):
    a = CombinedAttention(16, 2, "gate", variant, window=1).eval()
    x = torch.randn(2, 8, 16)
    mask = pad_mask_from_lengths(torch.tensor([2, 0]), 8)  # item 1 has no real frame at all
    y, maps = a(x, mask, return_maps=True)
    assert torch.isfinite(y).all() and all(torch.isfinite(w).all() for w in maps.values())
    torch.testing.assert_close(a(x, mask), y, atol=1e-5, rtol=1e-5)


def test_attention_mask_never_touches_real_rows():
    bias = ProximaBias(2, "window", window=1)(6)
    pm = pad_mask_from_lengths(torch.tensor([2]), 6)
    m = attention_mask(pm, bias)
    assert torch.isneginf(m[0, :, :2, 2:]).all()  # real queries never see padded keys
    assert not torch.isneginf(m).all(-1).any()  # no row is left without a key

# ---------------------------------------------------------------- maps

@pytest.mark.parametrize("variant", PROXIMA_VARIANTS)
def test_maps_path_equals_sdpa_path(variant):
    for module in (MultiHeadSelfAttention(24, 3), ProximaAttention(24, 3, variant=variant, window=2)):
        module.eval()
        x = torch.randn(4, 11, 24)
        for mask in (None, pad_mask_from_lengths(torch.tensor([11, 7, 3, 1]))):
            y, w = module(x, mask, return_map=True)
            torch.testing.assert_close(module(x, mask), y, atol=1e-5, rtol=1e-5)
            assert w.shape == (4, 3, 11, 11)


def test_attend_matches_naive_reference():
    q, k, v = torch.randn(3, 2, 2, 5, 4, dtype=torch.float64).unbind(0)
    bias = torch.randn(2, 5, 5, dtype=torch.float64)
    out, w = attend(q, k, v, attention_mask(None, bias, torch.float64), return_map=True)
    ref_w = torch.softmax(q @ k.transpose(-1, -2) / 2.0 + bias, -1)
    torch.testing.assert_close(w, ref_w); torch.testing.assert_close(out, ref_w @ v)


@pytest.mark.parametrize("fusion,variant", [("gate", v) for v in PROXIMA_VARIANTS])
def test_maps_rows_sum_to_one_over_real_keys(fusion, variant):
    a = CombinedAttention(16, 2, fusion, variant, window=2).eval()
    lengths = torch.tensor([9, 5, 2])
    mask = pad_mask_from_lengths(lengths, 9)
    _, maps = a(torch.randn(3, 9, 16), mask, return_maps=True)
    for name, w in maps.items():
        for i, L in enumerate(lengths.tolist()):
            torch.testing.assert_close(w[i, :, :L, :L].sum(-1), torch.ones(2, L))
            assert (w[i, :, :L, L:] == 0).all()  # real queries: no weight on padded keys
            if L and (name == "mhsa" or variant != "window"):  # padded queries still see every real key: same holds
                torch.testing.assert_close(w[i, :, L:, :L].sum(-1), torch.ones(2, 9 - L))
                assert (w[i, :, L:, L:] == 0).all()
            assert (w[i, :, :L] >= 0).all()


def test_window_maps_are_zero_outside_the_window():
    p = ProximaAttention(16, 2, variant="window", window=2).eval()
    _, w = p(torch.randn(1, 10, 16), return_map=True)
    assert w[..., distances(10) > 2].abs().max() == 0

# ---------------------------------------------------------------- gradients and parameters

@pytest.mark.parametrize("fusion,variant", ALL)
def test_gradient_reaches_every_parameter(fusion, variant):
    s = AttentionStack(2, 16, 2, 2, fusion, variant, dropout=0.0, window=2)
    x = torch.randn(2, 7, 16)
    s(x, pad_mask_from_lengths(torch.tensor([7, 4]))).pow(2).sum().backward()
    for name, p in s.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient"


def test_single_branch_ablations_are_lighter():
    for fusion in ("mhsa", "proxima"):
        assert n_params(AttentionBlock(128, 4, 2, fusion)) < n_params(AttentionBlock(128, 4, 2, "sum")) < n_params(AttentionBlock(128, 4, 2, "gate"))
    a = CombinedAttention(64, 4, "mhsa"); assert a.proxima is None and a.fuse is None
    a = CombinedAttention(64, 4, "proxima"); assert a.mhsa is None and a.fuse is None


def test_parameter_counts_of_one_block():
    d, h, f = 128, 4, 2
    att = 4 * d * d + 4 * d  # qkv + out projections with biases
    rest = 2 * 2 * d + (d * f * d + f * d) + (f * d * d + d)  # two LayerNorms + FFN
    fuse = 2 * d * d + d
    want = {"gate": 2 * att + h + fuse, "sum": 2 * att + h, "concat": 2 * att + h + fuse, "mhsa": att, "proxima": att + h}
    for fusion, n in want.items():
        assert n_params(AttentionBlock(d, h, f, fusion)) == n + rest, fusion
    assert n_params(AttentionBlock(d, h, f, "proxima", "window")) == att + rest  # the window has no parameter

# ---------------------------------------------------------------- the Proxima prior

@pytest.mark.parametrize("variant", PROXIMA_VARIANTS)
def test_bias_decreases_with_distance(variant):
    b = ProximaBias(3, variant, window=3)(20)
    d = distances(20)
    for h in range(3):
        for i in range(20):
            order = torch.argsort(d[i], stable=True)
            vals = b[h, i, order]
            assert (vals[1:] <= vals[:-1]).all()  # non-increasing with |i−j|
            if variant != "window":
                far, near = b[h, i][d[i] == d[i].max()], b[h, i, i]
                assert (far < near).all()
    # symmetric, and zero on the diagonal
    torch.testing.assert_close(b, b.transpose(-1, -2))
    assert b.diagonal(dim1=-2, dim2=-1).abs().max() == 0


def test_strictly_decreasing_for_log_and_gaussian():
    for variant in ("log", "gaussian"):
        row = ProximaBias(1, variant)(12)[0, 0]
        assert (row[1:] < row[:-1]).all(), variant


def test_proxima_attends_nearer_than_mhsa():
    mhsa = MultiHeadSelfAttention(32, 4).eval()
    prox = ProximaAttention(32, 4).eval()
    prox.load_state_dict(mhsa.state_dict(), strict=False)
    with torch.no_grad(): prox.logit_bias.raw.fill_(math.log(math.expm1(6.0)))  # λ = 6
    x = torch.randn(4, 30, 32)
    near = (distances(30) <= 2).float()
    _, wm = mhsa(x, return_map=True)
    _, wp = prox(x, return_map=True)
    assert (wp * near).sum(-1).mean() > (wm * near).sum(-1).mean() + 0.3
    # the same projections: with λ = 0 Proxima is MHSA
    with torch.no_grad(): prox.logit_bias.raw.fill_(-40.0)
    torch.testing.assert_close(prox(x), mhsa(x), atol=1e-5, rtol=1e-5)


def test_lambda_initialised_at_one_and_stays_non_negative():
    b = ProximaBias(4, "log")
    torch.testing.assert_close(b.strength, torch.ones(4))
    opt = torch.optim.SGD(b.parameters(), lr=100.0)
    for _ in range(20):  # push λ down as hard as possible
        opt.zero_grad(); b.strength.sum().backward(); opt.step()
        assert (b.strength >= 0).all()
    assert b.strength.max() < 1e-3
    g = ProximaBias(4, "gaussian", sigma=3.0)
    torch.testing.assert_close(g.sigma, torch.full((4,), 3.0))
    with torch.no_grad(): g.raw.fill_(-100.0)
    assert (g.sigma > 0).all() and torch.isfinite(g(10)).all()


def test_lambda_learns_to_sharpen_on_a_local_task():
    torch.manual_seed(1)
    a = ProximaAttention(8, 1)
    opt = torch.optim.Adam(a.parameters(), 1e-2)
    for _ in range(60):
        x = torch.randn(16, 12, 8)
        y = (x + x.roll(1, 1) + x.roll(-1, 1)) / 3
        loss = (a(x) - y).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    assert a.logit_bias.strength.item() > 1.0

# ---------------------------------------------------------------- positional encoding

def test_positional_encoding():
    pe = sinusoidal_encoding(300, 64)
    assert pe.shape == (300, 64) and pe.abs().max() <= 1.0
    torch.testing.assert_close(sinusoidal_encoding(20, 64), pe[:20])
    assert pe[:, 0::2].abs().sum() > 0 and torch.isfinite(sinusoidal_encoding(5, 9)).all()
    s_on = AttentionStack(1, 16, 2, pos_enc=True, dropout=0.0).eval()
    s_off = AttentionStack(1, 16, 2, pos_enc=False, dropout=0.0).eval()
    s_off.load_state_dict(s_on.state_dict())
    x = torch.randn(1, 6, 16)
    assert not torch.allclose(s_on(x), s_off(x))
    torch.testing.assert_close(s_on(x), s_off(x + sinusoidal_encoding(6, 16)))


def test_dropout_only_in_training():
    s = AttentionStack(1, 16, 2, dropout=0.5)
    x = torch.randn(2, 9, 16)
    s.eval(); torch.testing.assert_close(s(x), s(x))
    s.train(); assert not torch.allclose(s(x), s(x))
