"""SASRec / GRU4Rec baseline: learns a planted rule, seeded, leak-free, exact scorer, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import frame, movies

from agents import evaluate, make_baseline
from agents.sasrec import (
    NextItemScorer,
    SASRecConfig,
    SASRecNet,
    SASRecPolicy,
    epoch_windows,
    fit_sasrec,
    full_softmax_cross_entropy,
    train_sequences,
)
from recgym.data import Dataset, synthetic_dataset, temporal_split
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError, RecgymWarning

TINY = {"dim": 16, "max_len": 12, "max_epochs": 2, "device": "cpu"}


def chain_dataset(n_users: int = 120, n_items: int = 40, length: int = 14) -> Dataset:
    """Each user consumes ``s, s+1, ..., s+length-1`` (movieId = item + 1), one per second."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, n_users + 1):
        s = int(rng.integers(0, n_items - length + 1))
        rows += [(u, s + j + 1, float(rng.choice([2.0, 4.0])), 100 * u + j) for j in range(length)]
    return Dataset.from_frame(frame(rows), movies(list(range(1, n_items + 1))),
                              rating_range=(0.5, 5.0), name="chain")  # fmt: skip


def chain_env(split: str = "test", **kwargs) -> MovieRecEnv:
    return MovieRecEnv(dataset=chain_dataset(), embedding="random", embedding_dim=4,
                       frame_size=3, split=split, **kwargs)  # fmt: skip


def weights(policy: SASRecPolicy) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in policy.net.parameters()]


@pytest.mark.parametrize("arch", ["sasrec", "gru"])
def test_learns_a_planted_next_item_rule(arch):
    env = chain_env()
    config = SASRecConfig(arch=arch, dim=32, max_len=12, dropout=0.1, lr=5e-3, batch_size=32,
                          max_epochs=4, patience=4, device="cpu")  # fmt: skip
    policy = fit_sasrec(env, config, seed=0)
    assert policy.meta["history"][-1]["hr"] > 0.95  # HR@10 of the offline validation scorer
    # on test users, through the environment: the logged next item is in the first slate
    for uid in env.episode_user_ids.tolist():
        obs, _ = env.reset(options={"user_id": uid})
        policy.reset(env)
        _, _, _, _, info = env.step_slate(policy.recommend(env, obs))
        assert set(info["slate"].tolist()) & set(info["next_items"])
    # the whole protocol: hits further down the chain are consumed out of order, after which
    # "last item + 1" is no longer the next logged item, so a step can miss
    result = evaluate(policy, env, progress=False)
    assert result.n_users == env.n_episodes > 0
    assert result.summary["hr"][0] > 0.8


def test_same_seed_same_weights_and_predictions():
    ds = synthetic_dataset(n_users=60, n_items=200, n_ratings=3000)
    env = MovieRecEnv(dataset=ds, split="test", embedding_dim=4)
    config = SASRecConfig(**TINY)
    torch.use_deterministic_algorithms(True)
    try:
        a, b = fit_sasrec(env, config, seed=3), fit_sasrec(env, config, seed=3)
        c = fit_sasrec(env, config, seed=4)
    finally:
        torch.use_deterministic_algorithms(False)
    for x, y in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(weights(a), weights(c), strict=True))
    assert a.meta["history"] == b.meta["history"]
    items, ratings = np.arange(30), np.zeros(30, dtype=np.float32)
    np.testing.assert_array_equal(a.scores(items, ratings), b.scores(items, ratings))


@pytest.mark.parametrize("strategy", ["user", "temporal"])
def test_training_sequences_hold_train_interactions_only(strategy):
    ds = synthetic_dataset(n_users=60, n_items=200, n_ratings=3000)
    env = MovieRecEnv(dataset=ds, split="val", split_strategy=strategy, embedding_dim=4)
    split = env.context.split
    seqs = train_sequences(ds, split)
    assert split.train_mask[seqs.flat].all()
    # every train interaction of a user with at least two of them, nothing else, in log order
    counts = np.bincount(ds.interaction_users[split.train_mask], minlength=ds.n_users)
    expected = np.flatnonzero(split.train_mask & (counts[ds.interaction_users] >= 2))
    np.testing.assert_array_equal(seqs.flat, expected)
    np.testing.assert_array_equal(seqs.items, ds.items[seqs.flat])
    users = ds.interaction_users[seqs.flat]
    np.testing.assert_array_equal(users, np.repeat(seqs.users, np.diff(seqs.indptr)))
    if strategy == "user":
        held_out = np.concatenate([split.user_sets["val"], split.user_sets["test"]])
        assert not np.isin(seqs.users, held_out).any()
    else:
        assert (ds.timestamps[seqs.flat] < split.cutoffs[0]).all()


def test_epoch_windows_use_each_target_once_inside_its_sequence():
    indptr = np.array([0, 1, 5, 30, 31, 100])
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = epoch_windows(indptr, 7, rng)
        assert ((w[:, 1] - w[:, 0] >= 1) & (w[:, 1] - w[:, 0] <= 7)).all()
        seq = np.searchsorted(indptr, w[:, 0], side="right") - 1
        assert (w[:, 1] + 1 <= indptr[seq + 1]).all()  # the last target stays in the sequence
        targets = np.concatenate([np.arange(a + 1, b + 1) for a, b in w])
        expected = np.concatenate(
            [np.arange(s + 1, e) for s, e in zip(indptr[:-1], indptr[1:], strict=True)]
        )
        np.testing.assert_array_equal(np.sort(targets), expected)


def test_scorer_matches_a_step_by_step_computation():
    # 30 users rating 30 of 120 movies at times spread over the whole span, many in the same
    # second (several next items), so the temporal split gives test users a history and a future
    rng = np.random.default_rng(0)
    rows = [(u, int(m), 3.0, int(t)) for u in range(1, 31)
            for m, t in zip(rng.choice(np.arange(1, 121), 30, replace=False),
                            np.sort(rng.integers(0, 100, 30)) * 10, strict=True)]  # fmt: skip
    ds = Dataset.from_frame(frame(rows), movies(list(range(1, 121))), rating_range=(0.5, 5.0))
    split = temporal_split(ds)
    assert len(split.episodes(ds, "test", 3)) >= 20
    config = SASRecConfig(dim=8, max_len=6, device="cpu")
    torch.manual_seed(0)
    net = SASRecNet(ds.n_items, config).eval()
    scorer = NextItemScorer(ds, split, "test", frame_size=3, max_len=6)
    got = scorer(net, batch_size=3, chunk=7)
    ep = split.episodes(ds, "test", 3)
    scaled = ds.scale_ratings(ds.ratings)
    per_user = []
    for u, fs, end in zip(ep.users, ep.future_start, ep.end, strict=True):
        start = int(ds.indptr[u])
        values = []
        for t in range(fs, end):
            p = t - start
            a = 0 if p <= 6 else math.ceil((p - 6) / 3) * 3  # windows every max_len / 2
            inp = torch.as_tensor(ds.items[start + a : t].astype(np.int64) + 1)[None]
            rat = torch.as_tensor(scaled[start + a : t])[None]
            with torch.no_grad():
                s = net.logits(net.encode(inp, rat)[0][0, -1]).numpy()
            s[ds.items[start:t]] = -np.inf
            top = np.argsort(-s, kind="stable")[:10]
            same = (ds.timestamps[t:end] == ds.timestamps[t]).cumprod().astype(bool)
            relevant = set(ds.items[t:end][same].tolist())
            gains = np.array([i in relevant for i in top], dtype=float)
            disc = 1 / np.log2(np.arange(2, 12))
            values.append(gains @ disc / disc[: min(10, len(relevant))].sum())
        per_user.append(np.mean(values))
    assert got["ndcg"] == pytest.approx(float(np.mean(per_user)), abs=1e-9)


def test_without_validation_users_it_warns_and_keeps_the_last_epoch():
    ds = synthetic_dataset(n_users=40, n_items=120, n_ratings=2400)
    env = MovieRecEnv(dataset=ds, split="train", split_strategy="temporal", embedding_dim=4)
    assert len(env.context.split.episodes(ds, "val", env.frame_size)) == 0
    with pytest.warns(RecgymWarning, match="no validation episode"):
        policy = fit_sasrec(env, SASRecConfig(**{**TINY, "max_epochs": 3, "patience": 0}))
    assert len(policy.meta["history"]) == 3 and policy.meta["best_epoch"] == 3


@pytest.mark.parametrize("chunk", [1, 7, 50, 128])  # one row, uneven chunks, exact, one chunk
def test_full_softmax_loss_and_gradients_match_torch(chunk):
    gen = torch.Generator().manual_seed(0)
    z, w, b = (torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
               for shape in [(50, 8), (30, 8), (30,)])  # fmt: skip
    target = torch.randint(0, 30, (50,), generator=gen)
    ours = full_softmax_cross_entropy(z, w, b, target, chunk=chunk)
    ref = torch.nn.functional.cross_entropy(z @ w.T + b, target)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-12)
    for a, c in zip(torch.autograd.grad(3 * ours, (z, w, b)),
                    torch.autograd.grad(3 * ref, (z, w, b)), strict=True):  # fmt: skip
        torch.testing.assert_close(a, c, rtol=0, atol=1e-12)


def test_full_softmax_loss_without_gradients_and_bad_chunk():
    z, w, b = torch.randn(5, 4), torch.randn(9, 4), torch.zeros(9)
    target = torch.tensor([0, 3, 8, 8, 1])
    with torch.no_grad():
        ours = full_softmax_cross_entropy(z, w, b, target, chunk=2)
    ref = torch.nn.functional.cross_entropy(z @ w.T + b, target)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    with pytest.raises(ConfigError, match="chunk=0"):
        full_softmax_cross_entropy(z, w, b, target, chunk=0)


def test_incremental_recommendations_equal_a_fresh_forward_pass():
    class History:  # the two methods of MovieRecEnv that the policy calls
        def __init__(self, items, ratings):
            self.items, self.ratings, self.n = items, ratings, 0

        def history(self):
            return self.items[: self.n], self.ratings[: self.n]

        def recommend_from_scores(self, scores):
            return scores

    rng = np.random.default_rng(0)
    for arch in ("sasrec", "gru"):
        config = SASRecConfig(arch=arch, dim=16, n_heads=2, max_len=10, device="cpu")
        torch.manual_seed(0)
        policy = SASRecPolicy(SASRecNet(50, config), config, {})
        env = History(rng.permutation(50)[:40], rng.uniform(-1, 1, 40).astype(np.float32))
        for n in (3, 4, 6, 10, 11, 12, 15, 16, 20, 21, 30, 40):  # the window moves at 11, 16, ...
            env.n = n
            np.testing.assert_allclose(policy.recommend(env, None),
                                       policy.scores(*env.history()), atol=1e-5)  # fmt: skip


def test_save_load_round_trip_and_in_memory_cache(tmp_path):
    env = chain_env()
    policy = make_baseline("sasrec", env, seed=5, **TINY)
    assert make_baseline("sasrec", env, seed=5, **TINY) is policy  # trained once
    assert make_baseline("sasrec", env, seed=6, **TINY) is not policy
    policy.save(tmp_path / "m.pt")
    loaded = make_baseline("sasrec", env, path=tmp_path / "m.pt", device="cpu")
    items, ratings = np.arange(10), np.ones(10, dtype=np.float32)
    np.testing.assert_array_equal(policy.scores(items, ratings), loaded.scores(items, ratings))
    other = MovieRecEnv(dataset=synthetic_dataset(n_users=60, n_items=200, n_ratings=3000),
                        split="test", embedding_dim=4)  # fmt: skip
    with pytest.raises(ConfigError, match="trained on dataset/split"):
        SASRecPolicy.load(tmp_path / "m.pt", other)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dim": 0}, "dim=0"),
        ({"dim": 30, "n_heads": 4}, "n_heads=4"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"lr": float("inf")}, "lr=inf"),
        ({"max_len": 2.5}, "max_len=2.5"),
        ({"patience": -1}, "patience=-1"),
        ({"arch": "gru4rec"}, "arch='gru4rec'"),
        ({"use_ratings": "yes"}, "use_ratings='yes'"),
        ({"hidden": 64}, "hidden"),
    ],
)
def test_bad_arguments_name_the_value(options, message):
    with pytest.raises(ConfigError, match=message):
        SASRecConfig.from_options(**options)


def test_bad_baseline_options():
    env = chain_env()
    with pytest.raises(ConfigError, match="Unknown sasrec option.*'dimm'.*Did you mean 'dim'"):
        make_baseline("sasrec", env, dimm=3)
    with pytest.raises(ConfigError, match="'popularity' takes no options"):
        make_baseline("popularity", env, dim=3)
    with pytest.raises(ConfigError, match="seed=-1"):
        fit_sasrec(env, SASRecConfig(**TINY), seed=-1)
