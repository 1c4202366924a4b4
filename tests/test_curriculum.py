"""Curriculum: difficulty scores, pacing functions, CurriculumConfig validation, and the curriculum batch sampler."""
import json
from dataclasses import asdict, replace
import numpy as np
import pytest
from jand.core import DataError, Line
from jand.loading import BucketBatchSampler
from jand.curriculum import (PACINGS, CurriculumBatchSampler, CurriculumConfig, combined_difficulty, degradation_difficulty,
                             difficulty_scores, length_difficulty, loss_difficulty, minmax_normalise, normalise,
                             pace_linear, pace_none, pace_root, pace_staged, rank_normalise)

RNG = np.random.default_rng(123)
N = 600
LENGTHS = RNG.integers(3, 90, N)
DIFF = RNG.random(N)
DIFF[::7] = 0.5  # plenty of ties
PROGRESS = np.linspace(0, 1, 201)


def lines_with(texts, levels):
    return [Line(f"l{i}", t, f"synth:train/{i}", difficulty=d) for i, (t, d) in enumerate(zip(texts, levels))]


def flat(sampler):
    return [i for b in sampler for i in b]


# ---------------------------------------------------------------- scores

@pytest.mark.parametrize("how", ["rank", "minmax"])
def test_normalised_scores_lie_in_0_1_and_are_monotone(how):
    v = RNG.normal(size=300) * 50
    s = normalise(v, how)
    assert s.min() >= 0 and s.max() <= 1 and s.min() == 0 and s.max() == 1
    o = np.argsort(v, kind="stable")
    assert np.all(np.diff(s[o]) >= 0)  # a larger value never gets a smaller score
    assert np.all(np.diff(s[o])[np.diff(v[o]) > 0] > 0)  # and distinct values get distinct scores


def test_rank_normalise_ties_and_degenerate_inputs():
    assert rank_normalise([2, 2, 1, 3]).tolist() == [0.5, 0.5, 0, 1]
    assert rank_normalise([4.0]).tolist() == [0.5] and minmax_normalise([4.0, 4.0]).tolist() == [0.5, 0.5]
    assert rank_normalise([]).size == 0 and minmax_normalise([]).size == 0
    assert rank_normalise([-np.inf, 0, np.inf]).tolist() == [0, 0.5, 1]


@pytest.mark.parametrize("bad, how", [([1, np.nan], "rank"), ([1, np.inf], "minmax"), ([[1, 2]], "rank"),
                                      ([0.5, 1.2], "none"), ([-0.1], "none"), ([1, 2], "zscore")])
def test_bad_values_raise(bad, how):
    with pytest.raises(ValueError):
        normalise(bad, how)


def test_length_difficulty_is_monotone_in_length():
    texts = ["x" * int(k) for k in LENGTHS]
    for how in ("rank", "minmax"):
        s = length_difficulty(texts, how)
        assert s.min() >= 0 and s.max() <= 1
        o = np.argsort(LENGTHS, kind="stable")
        assert np.all(np.diff(s[o]) >= 0)
    lines = lines_with(texts, [None] * N)
    assert np.array_equal(length_difficulty(lines), length_difficulty(texts))


def test_degradation_difficulty_is_the_level_with_a_documented_default():
    levels = list(DIFF)
    s = degradation_difficulty(lines_with(["t"] * N, levels))
    assert np.allclose(s, DIFF)
    with_missing = lines_with(["t"] * 5, [0.2, None, 0.9, 0.4, None])
    assert degradation_difficulty(with_missing).tolist() == [0.2, 0.4, 0.9, 0.4, 0.4]  # median of the known levels
    assert degradation_difficulty(with_missing, missing=1.0).tolist() == [0.2, 1.0, 0.9, 0.4, 1.0]
    assert degradation_difficulty(["plain", "strings"]).tolist() == [0.5, 0.5]  # nothing known: the middle
    r = degradation_difficulty(lines_with(["t"] * N, levels), how="rank")
    assert np.all(np.diff(r[np.argsort(DIFF, kind="stable")]) >= 0)


@pytest.mark.parametrize("level", [1.5, -0.2, float("nan")])
def test_out_of_range_level_is_a_data_error_naming_the_line(level):
    with pytest.raises(DataError, match="l1"):
        degradation_difficulty(lines_with(["a", "b"], [0.3, level]))


@pytest.mark.parametrize("missing", ["mean", 2.0, -1])
def test_bad_missing_default_raises(missing):
    with pytest.raises(ValueError, match="missing"):
        degradation_difficulty(lines_with(["a"], [None]), missing=missing)


def test_combined_difficulty_mixes_and_is_monotone_in_each_part():
    texts = ["x" * int(k) for k in LENGTHS]
    lines = lines_with(texts, DIFF)
    for w in [(0.5, 0.5), (1, 3), (2, 0), (0, 1)]:
        s = combined_difficulty(lines, w)
        assert s.min() >= 0 and s.max() <= 1
        expect = (w[0] * length_difficulty(lines) + w[1] * degradation_difficulty(lines)) / sum(w)
        assert np.allclose(s, expect)
    # same level, longer text → not easier; same text, higher level → not easier
    same_level = lines_with(["a", "aaa", "aa"], [0.5, 0.5, 0.5])
    assert np.argsort(combined_difficulty(same_level)).tolist() == [0, 2, 1]
    same_text = lines_with(["ab", "ab", "ab"], [0.7, 0.1, 0.4])
    assert np.argsort(combined_difficulty(same_text)).tolist() == [1, 2, 0]


@pytest.mark.parametrize("weights", [(0, 0), (1, -1), (1,), (1, 2, 3), (np.nan, 1)])
def test_bad_weights_raise(weights):
    with pytest.raises(ValueError, match="weights"):
        combined_difficulty(["a", "b"], weights)


def test_loss_difficulty_ranks_losses():
    losses = RNG.gamma(2.0, 3.0, 200)
    s = loss_difficulty(losses)
    assert s.min() == 0 and s.max() == 1
    assert np.all(np.diff(s[np.argsort(losses)]) > 0)
    assert loss_difficulty([1.0, np.inf, 0.5]).tolist() == [0.5, 1.0, 0.0]  # an unalignable line is the hardest
    with pytest.raises(ValueError):
        loss_difficulty([1.0, np.nan])


def test_difficulty_scores_dispatch():
    lines = lines_with(["a", "abc", "ab"], [0.9, 0.1, 0.5])
    assert np.array_equal(difficulty_scores(lines, CurriculumConfig(scores="length")), length_difficulty(lines))
    assert np.array_equal(difficulty_scores(lines, CurriculumConfig(scores="degradation")), degradation_difficulty(lines))
    assert np.allclose(difficulty_scores(lines, CurriculumConfig(weights=(1, 3))), combined_difficulty(lines, (1, 3)))
    assert difficulty_scores(lines, CurriculumConfig(scores="loss"), losses=[2, 3, 1]).tolist() == [0.5, 1, 0]
    with pytest.raises(ValueError, match="losses"):
        difficulty_scores(lines, CurriculumConfig(scores="loss"))
    with pytest.raises(ValueError, match="3 lines"):
        difficulty_scores(lines, CurriculumConfig(scores="loss"), losses=[1])


# ---------------------------------------------------------------- pacing

CONFIGS = [CurriculumConfig(pacing=p) for p in PACINGS] + [
    CurriculumConfig(pacing="linear", c0=0.05, full_at=1.0), CurriculumConfig(pacing="root", c0=0.1, full_at=0.25),
    CurriculumConfig(stages=((0.1, 1), (0.2, 1), (0.5, 3), (1.0, 1))), CurriculumConfig(stages=((1.0, 1),)),
    CurriculumConfig(pacing="linear", c0=1.0)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.pacing}-{c.c0}-{c.full_at}-{len(c.stages)}")
def test_competence_is_monotone_in_0_1_and_reaches_1(cfg):
    c = np.array([cfg.competence(p) for p in PROGRESS])
    assert np.all(c > 0) and np.all(c <= 1)
    assert np.all(np.diff(c) >= 0)
    assert cfg.competence(1.0) == 1.0 and cfg.competence(1.5) == 1.0  # past the budget: everything
    if cfg.pacing in ("linear", "root"):
        assert abs(cfg.competence(0) - cfg.c0) < 1e-12 and cfg.competence(cfg.full_at) == 1.0


def test_none_pacing_is_always_one():
    assert all(pace_none(p) == 1.0 for p in PROGRESS)
    assert all(CurriculumConfig(pacing="none").competence(p) == 1.0 for p in PROGRESS)


def test_staged_pacing_holds_each_stage_for_its_share_of_the_budget():
    stages = ((0.25, 5), (0.5, 5), (1.0, 10))  # epochs per level, like the sibling code
    got = [pace_staged(e / 20, stages) for e in range(20)]
    assert got == [0.25] * 5 + [0.5] * 5 + [1.0] * 10
    assert [pace_staged(p) for p in (0, 0.299, 0.3, 0.599, 0.6)] == [1/3, 1/3, 2/3, 2/3, 1.0]


def test_linear_and_root_formulas():
    assert abs(pace_linear(0.15, 0.4, 0.6) - (0.4 + 0.6 * 0.25)) < 1e-12
    assert abs(pace_root(0.15, 0.4, 0.6) - np.sqrt(0.16 + 0.84 * 0.25)) < 1e-12


@pytest.mark.parametrize("p", [-0.01, float("nan")])
def test_bad_progress_raises(p):
    for f in (pace_staged, pace_linear, pace_root, pace_none):
        with pytest.raises(ValueError, match="progress"):
            f(p)


@pytest.mark.parametrize("bad", [
    dict(pacing="cosine"), dict(scores="ink"), dict(c0=0), dict(c0=1.2), dict(c0=-0.1), dict(full_at=0), dict(full_at=1.01),
    dict(stages=()), dict(stages=((0.5, 1), (0.5, 1), (1, 1))), dict(stages=((0.6, 1), (0.3, 1), (1, 1))),
    dict(stages=((0.5, 1), (0.9, 1))), dict(stages=((0, 1), (1, 1))), dict(stages=((0.5, 0), (1, 1))),
    dict(stages=((0.5, -1), (1, 1))), dict(stages=((0.5, float("inf")), (1, 1))), dict(stages=(0.5, 1)),
    dict(stages=((0.5,), (1, 1))), dict(stages=(("a", 1), (1, 1))), dict(weights=(0, 0)), dict(weights=(1,))])
def test_invalid_configs_raise_value_error(bad):
    with pytest.raises(ValueError):
        CurriculumConfig(**bad)


def test_config_survives_a_json_round_trip():
    cfg = CurriculumConfig(pacing="root", stages=((0.2, 2), (1, 3)), weights=(1, 2))
    back = CurriculumConfig(**json.loads(json.dumps(asdict(cfg))))
    assert back == cfg and hash(back) == hash(cfg)


# ---------------------------------------------------------------- sampler

def make(cfg=CurriculumConfig(), bs=12, **kw):
    return CurriculumBatchSampler(LENGTHS, DIFF, bs, cfg, seed=kw.pop("seed", 5), **kw)


def easiest(k):
    return set(np.argsort(DIFF, kind="stable")[:k].tolist())


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.pacing}-{c.c0}-{c.full_at}-{len(c.stages)}")
def test_at_start_only_the_easiest_lines_each_once(cfg):
    s = make(cfg)
    got = flat(s)
    k = int(np.ceil(cfg.competence(0) * N - 1e-9))
    assert len(got) == len(set(got)) == k
    assert set(got) == easiest(k)


def test_ties_are_broken_in_dataset_order():
    diff = np.zeros(N)
    s = CurriculumBatchSampler(LENGTHS, diff, 10, CurriculumConfig(pacing="linear", c0=0.1))
    assert sorted(flat(s)) == list(range(60))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.pacing}-{c.c0}-{c.full_at}-{len(c.stages)}")
def test_at_the_end_every_line_exactly_once_per_epoch(cfg):
    s = make(cfg)
    s.set_progress(1.0)
    for epoch in range(3):
        s.set_epoch(epoch)
        assert sorted(flat(s)) == list(range(N))


def test_at_full_competence_it_is_the_bucket_sampler():
    s = make(CurriculumConfig(pacing="none"), bs=16, drop_last=True)
    ref = BucketBatchSampler(LENGTHS, 16, seed=5, drop_last=True)
    for epoch in (0, 3):
        s.set_epoch(epoch); ref.set_epoch(epoch)
        assert list(s) == list(ref) and len(s) == len(ref)
    s = CurriculumBatchSampler(LENGTHS, DIFF, 16, CurriculumConfig(pacing="none"), shuffle=False)
    assert list(s) == list(BucketBatchSampler(LENGTHS, 16, shuffle=False))


def test_pool_grows_and_stays_nested_and_len_follows_it():
    s = make(CurriculumConfig(pacing="linear"))
    prev, prev_len = set(), 0
    for p in np.linspace(0, 1, 11):
        s.set_progress(p)
        pool = set(s.pool_indices().tolist())
        assert prev <= pool and set(flat(s)) == pool
        assert len(s) == len(list(s)) >= prev_len
        prev, prev_len = pool, len(s)
    assert len(prev) == N


def test_batches_are_bucketed_by_length_inside_the_pool():
    s = make(bs=16)
    s.set_progress(0.3)
    spread = np.mean([np.ptp(LENGTHS[b]) for b in s])
    assert spread < 12


def test_the_pool_is_never_smaller_than_a_batch():
    s = CurriculumBatchSampler(LENGTHS[:20], DIFF[:20], 16, CurriculumConfig(pacing="linear", c0=0.05), drop_last=True)
    assert len(s) == 1 and len(list(s)[0]) == 16


def test_deterministic_given_seed_epoch_and_progress():
    a, b = make(), make()
    for e, p in [(0, 0.0), (2, 0.35), (7, 0.8)]:
        a.set_epoch(e); a.set_progress(p); b.set_epoch(e); b.set_progress(p)
        assert list(a) == list(b) and list(a) == list(a)
    c = make(seed=6); c.set_epoch(7); c.set_progress(0.8)
    assert list(c) != list(a)
    b.set_epoch(8)
    assert list(b) != list(a)


def test_epochs_turn_set_epoch_into_progress():
    s = make(epochs=10)
    comps = []
    for e in range(10):
        s.set_epoch(e); comps.append(s.competence)
    assert comps == [1/3] * 3 + [2/3] * 3 + [1.0] * 4
    s.set_epoch(12)
    assert s.progress == 1.0


def test_state_dict_round_trip_gives_the_same_next_batches():
    a = make(CurriculumConfig(pacing="root"), epochs=8)
    for e in range(3):
        a.set_epoch(e); list(a)
    state = json.loads(json.dumps(a.state_dict()))  # survives JSON as well as torch.save
    b = make(CurriculumConfig(pacing="root"), epochs=8)
    b.load_state_dict(state)
    assert (b.epoch, b.progress) == (a.epoch, a.progress) and list(b) == list(a)
    a.set_epoch(3); b.set_epoch(3)
    assert list(b) == list(a)


@pytest.mark.parametrize("change, match", [
    (dict(difficulty=DIFF[::-1]), "other lines"), (dict(lengths=LENGTHS[::-1]), "other lines"),
    (dict(lengths=LENGTHS[:-1], difficulty=DIFF[:-1]), "other lines"), (dict(seed=99), "seed"),
    (dict(cfg=CurriculumConfig(pacing="linear")), "config")])
def test_resuming_on_something_else_raises(change, match):
    state = make().state_dict()
    kw = dict(lengths=LENGTHS, difficulty=DIFF, batch_size=12, cfg=CurriculumConfig(), seed=5) | change
    with pytest.raises(ValueError, match=match):
        CurriculumBatchSampler(**kw).load_state_dict(state)


@pytest.mark.parametrize("p", [0.0, 0.45, 1.0])
def test_shards_are_equal_length_and_cover_the_pool(p):
    shards = [make(bs=10, num_replicas=3, rank=r) for r in range(3)]
    for s in shards: s.set_progress(p); s.set_epoch(2)
    got = [list(s) for s in shards]
    assert len({len(g) for g in got}) == 1
    pool = set(shards[0].pool_indices().tolist())
    assert {i for g in got for b in g for i in b} == pool
    single = make(bs=10); single.set_progress(p); single.set_epoch(2)
    assert {tuple(b) for g in got for b in g} == set(map(tuple, single))  # the shards split the one-process batches


def test_shards_are_disjoint_when_the_batches_divide_evenly():
    shards = [make(bs=10, num_replicas=2, rank=r) for r in (0, 1)]
    for s in shards: s.set_progress(1.0)
    got = [flat(s) for s in shards]  # 600 lines, 2 pools of 500 → 60 batches, 30 per rank
    assert len(got[0]) == len(got[1]) == 300
    assert not set(got[0]) & set(got[1])
    assert sorted(got[0] + got[1]) == list(range(N))


def test_set_difficulty_reorders_the_pool():
    s = make(CurriculumConfig(pacing="linear", c0=0.2))
    before = set(s.pool_indices().tolist())
    s.set_difficulty(1 - DIFF)
    after = set(s.pool_indices().tolist())
    assert not before & after


@pytest.mark.parametrize("kw, match", [
    (dict(difficulty=DIFF[:-1]), "difficulty scores"), (dict(difficulty=np.where(DIFF > 0.9, np.nan, DIFF)), "NaN"),
    (dict(lengths=[], difficulty=[]), "no lines"), (dict(batch_size=0), "batch_size"), (dict(rank=2, num_replicas=2), "rank"),
    (dict(epochs=0), "epochs")])
def test_bad_sampler_arguments_raise(kw, match):
    args = dict(lengths=LENGTHS, difficulty=DIFF, batch_size=12) | kw
    with pytest.raises(ValueError, match=match):
        CurriculumBatchSampler(**args)


def test_bad_progress_on_the_sampler_raises():
    with pytest.raises(ValueError, match="progress"):
        make().set_progress(-1)


def test_plot_schedule_draws_and_saves(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from jand.curriculum import plot_schedule
    lines = lines_with(["x" * int(k) for k in LENGTHS[:80]], DIFF[:80])
    fig = plot_schedule(CurriculumConfig(pacing="linear"), path=tmp_path / "schedule.png", lines=lines)
    assert (tmp_path / "schedule.png").stat().st_size > 1000 and len(fig.axes) == 2
    with pytest.raises(ValueError, match="losses"):
        plot_schedule(CurriculumConfig(scores="loss"), lines=lines)
