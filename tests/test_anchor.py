"""The anchored recipe: behaviour cloning, critic warm-up, anchored SB3 agents, Wolpertinger."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_same_weights, frame, movies, scenario_env

from agents import evaluate, make_agent
from agents.anchor import BCAnchor, item_scores, pretrain_actor, warm_up_critic
from agents.anchored import AnchoredDDPG, AnchoredSAC, AnchoredTD3, awr_weights, load_agent
from agents.config import AnchorSettings
from agents.encoders import AttentionEncoder, GRUEncoder, split_observation
from agents.offline import logged_transitions
from agents.policies import AgentPolicy
from agents.wolpertinger import (
    WolpertingerPolicy,
    candidate_values,
    critic_values,
    ranking_heads,
)
from recgym.data import Dataset
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError

N_ITEMS, DIM = 200, 16
TINY = {"learning_starts": 0, "batch_size": 64, "policy_kwargs": {"net_arch": [64, 64]}}


def planted_dataset(n_users: int = 120, length: int = 14, seed: int = 0) -> Dataset:
    """Every user rates consecutive movies: item i is always followed by item i + 1."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        first = int(rng.integers(1, N_ITEMS - length + 2))
        rows += [(u, first + j, 4.0, 100 * j) for j in range(length)]
    return Dataset.from_frame(frame(rows), movies(list(range(1, N_ITEMS + 1))), name="planted")


def ring_embeddings() -> np.ndarray:
    """Items on a circle, in order.

    A slate around item i holds its neighbours, so the next items of a user's run are hit, and
    consumed, in log order, and the rule keeps holding.
    """
    angle = 2 * np.pi * np.arange(N_ITEMS) / N_ITEMS
    emb = np.zeros((N_ITEMS, DIM), dtype=np.float32)
    emb[:, 0], emb[:, 1] = np.cos(angle), np.sin(angle)
    return emb


@pytest.fixture(scope="module")
def planted():
    ds = planted_dataset()
    emb = ring_embeddings()
    kw = {"dataset": ds, "embedding": emb, "frame_size": 3, "slate_size": 10}
    return {split: MovieRecEnv(split=split, **kw) for split in ("train", "val", "test")}


def anchored(planted, algo="td3", seed=0, **kw):
    train = planted["train"]
    model = make_agent(algo, train, recipe="anchored", seed=seed, device="cpu", **{**TINY, **kw})
    return model, BCAnchor(train, logged_transitions(train), seed=seed)


def test_logged_transitions_are_environment_steps(planted):
    env = planted["train"]
    t = logged_transitions(env)
    ep = env.context.episodes
    assert len(t) == int((ep.end - ep.future_start).sum())
    for e in range(3):  # at an episode's start the env is in the logged state
        obs, _ = env.reset(options={"episode": e})
        j = int(np.flatnonzero(t.steps == ep.future_start[e])[0])
        np.testing.assert_array_equal(obs, t.observations[j])
        next_obs, reward, _, truncated, info = env.step(t.actions[j])
        np.testing.assert_array_equal(next_obs, t.next_observations[j])
        assert reward == pytest.approx(float(t.rewards[j]))
        assert truncated == bool(t.timeouts[j])
        assert t.items[j] in info["consumed"]
    with pytest.raises(ConfigError, match="train split"):
        logged_transitions(planted["test"])


def test_behaviour_cloning_learns_the_planted_rule(planted):
    torch.manual_seed(0)
    model, anchor = anchored(planted)
    before = evaluate(AgentPolicy(model), planted["test"], progress=False).summary["hr"][0]
    result = pretrain_actor(model, anchor, epochs=40, learning_rate=3e-3, progress=False)
    after = evaluate(AgentPolicy(model), planted["test"], progress=False).summary["hr"][0]
    assert result.losses[-1] < result.losses[0]
    assert before < 0.6 and after >= 0.95


def test_cloned_sac_starts_with_the_given_exploration_noise(planted):
    model, anchor = anchored(planted, "sac")
    pretrain_actor(model, anchor, epochs=1, sac_std=0.05, progress=False)
    obs = torch.as_tensor(anchor.transitions.observations[:20])
    _, log_std, _ = model.actor.get_action_dist_params(obs)
    torch.testing.assert_close(log_std.exp(), torch.full_like(log_std, 0.05))


def test_early_stopping_keeps_the_best_validation_epoch(planted):
    model, anchor = anchored(planted)
    result = pretrain_actor(model, anchor, epochs=6, val_env=planted["val"], patience=1,
                            progress=False)  # fmt: skip
    assert len(result.val_ndcg) == result.epochs
    assert result.val_ndcg[result.best_epoch] == max(result.val_ndcg)
    kept = evaluate(AgentPolicy(model), planted["val"], progress=False).summary["ndcg"][0]
    assert kept == pytest.approx(max(result.val_ndcg))
    with pytest.raises(ConfigError, match="split='val'"):
        pretrain_actor(model, anchor, epochs=1, val_env=planted["train"], progress=False)


def test_anchor_masks_consumed_items_and_targets_next_second(planted):
    env = planted["train"]
    t = logged_transitions(env)
    anchor = BCAnchor(env, t)
    j = np.arange(5)
    batch = anchor.batch(j)
    items = env.dataset.items
    for row, k in enumerate(j):
        consumed = set(items[t.history_starts[k] : t.steps[k]].tolist())
        assert set(np.flatnonzero(batch.consumed[row].numpy()).tolist()) == consumed
        assert np.flatnonzero(batch.targets[row].numpy()).tolist() == [t.items[k]]
    logits = anchor.logits(torch.ones(5, DIM), batch.consumed)
    assert torch.isinf(logits[batch.consumed]).all()
    assert torch.isfinite(logits[~batch.consumed]).all()
    # the sparse (rows, items) form the loss uses masks exactly the same entries
    sparse = anchor.logits(torch.ones(5, DIM), (batch.consumed_rows, batch.consumed_items))
    torch.testing.assert_close(sparse, logits, rtol=0, atol=0)


def test_rating_weight_weighs_each_target_by_its_rating():
    # each logged second holds a movie rated 5 and one rated 1
    rows = [
        (u, 10 * u + j, 5.0 if j % 2 else 1.0, 100 * (j // 2))
        for u in range(1, 41)
        for j in range(8)
    ]
    ds = Dataset.from_frame(frame(rows), movies(list(range(1, 420))), name="pairs")
    emb = np.random.default_rng(0).normal(size=(ds.n_items, DIM)).astype(np.float32)
    env = MovieRecEnv(dataset=ds, embedding=emb, split="train", frame_size=2, slate_size=5)
    t = logged_transitions(env)
    plain = BCAnchor(env, t).batch(np.arange(len(t)))
    beta = 1.5
    weighted = BCAnchor(env, t, rating_weight=beta).batch(np.arange(len(t)))
    np.testing.assert_array_equal(weighted.target_items.numpy(), plain.target_items.numpy())
    scaled = env.context.scaled_ratings
    flat = np.concatenate([np.arange(s, e) for s, e in zip(t.steps, t.next_ends, strict=True)])
    factor = np.exp(beta * scaled[flat]) / np.exp(beta * scaled[flat]).mean()
    np.testing.assert_allclose(
        weighted.target_weights.numpy(), plain.target_weights.numpy() * factor, rtol=1e-5
    )
    assert weighted.target_weights.mean().item() == pytest.approx(
        plain.target_weights.mean().item(), rel=1e-5
    )
    liked = np.isclose(scaled[flat], 1.0)
    assert liked.any() and (~liked).any()
    assert (
        weighted.target_weights.numpy()[liked].min() > weighted.target_weights.numpy()[~liked].max()
    )
    with pytest.raises(ConfigError, match="rating_weight=-1"):
        BCAnchor(env, t, rating_weight=-1)
    with pytest.raises(ConfigError, match="rating_weight=-0.5"):
        AnchorSettings(rating_weight=-0.5).validate()


def test_anchor_loss_is_the_dense_cross_entropy():
    # two movies per logged second, so rows have two targets of weight 1/2
    rows = [(u, 10 * u + j, 4.0, 100 * (j // 2)) for u in range(1, 41) for j in range(8)]
    ds = Dataset.from_frame(frame(rows), movies(list(range(1, 420))), name="pairs")
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(ds.n_items, DIM)).astype(np.float32)
    env = MovieRecEnv(dataset=ds, embedding=emb, split="train", frame_size=2, slate_size=5)
    anchor = BCAnchor(env, logged_transitions(env), norm_weight=0.0)
    batch = anchor.batch(np.arange(len(anchor)))
    assert set(torch.bincount(batch.target_rows).tolist()) <= {1, 2}
    assert 2 in torch.bincount(batch.target_rows).tolist()
    actions = torch.as_tensor(rng.normal(size=(len(anchor), DIM)), dtype=torch.float32)
    weights = torch.as_tensor(rng.uniform(0.5, 2.0, size=len(anchor)), dtype=torch.float32)
    logp = torch.log_softmax(anchor.logits(actions, batch.consumed), dim=1)
    dense = -(batch.targets * logp.masked_fill(batch.consumed, 0.0)).sum(1)
    assert torch.allclose(batch.targets.sum(1), torch.ones(len(anchor)))
    assert anchor.loss(actions, batch).item() == pytest.approx(dense.mean().item(), rel=1e-5)
    got = anchor.loss(actions, batch, weights).item()
    assert got == pytest.approx((weights * dense).mean().item(), rel=1e-5)


@pytest.mark.parametrize("metric", ["dot", "cosine", "euclidean", "correlation"])
def test_item_scores_rank_like_the_decoder(metric):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 6)).astype(np.float32)
    actions = rng.normal(size=(3, 6)).astype(np.float32)
    from recgym.ranking import Ranker

    ranker = Ranker(vectors, metric=metric)
    torch_scores = item_scores(torch.as_tensor(actions), torch.as_tensor(vectors), metric)
    np.testing.assert_allclose(torch_scores.numpy(), ranker.scores(actions), rtol=1e-4, atol=1e-4)


def test_critic_warm_up_fits_logged_rewards_and_leaves_the_actor():
    # the scenario's users share one log, so a state tells where in it the user is, and with
    # gamma 0 the critic must predict the reward of each logged action exactly
    env = scenario_env()
    model = make_agent("td3", env, recipe="anchored", seed=0, device="cpu", gamma=0.0,
                       **{**TINY, "batch_size": 32})  # fmt: skip
    anchor = BCAnchor(env, logged_transitions(env), seed=0)
    actor = [p.detach().clone() for p in model.actor.parameters()]
    losses = warm_up_critic(model, anchor, 600, progress=False)
    assert losses[-1] < losses[0]
    for a, b in zip(actor, model.actor.parameters(), strict=True):
        assert torch.equal(a, b)
    t = anchor.transitions
    q = model.critic.q1_forward(torch.as_tensor(t.observations), torch.as_tensor(t.actions))
    error = np.abs(q.detach().numpy().ravel() - t.rewards)
    assert error.max() < 0.05 < np.abs(t.rewards - t.rewards.mean()).mean()


@pytest.mark.parametrize("cls", [AnchoredDDPG, AnchoredTD3, AnchoredSAC])
def test_anchored_agents_train_save_and_load(planted, cls, tmp_path):
    algo = {AnchoredDDPG: "ddpg", AnchoredTD3: "td3", AnchoredSAC: "sac"}[cls]
    model, anchor = anchored(planted, algo, critic_weight=2.5)
    assert type(model) is cls
    model.set_anchor(anchor)
    model.learn(150)
    assert model.logger.name_to_value["train/anchor_ce"] > 0
    model.save(tmp_path / "m.zip")
    loaded = cls.load(tmp_path / "m.zip", device="cpu")
    assert loaded.critic_weight == 2.5 and loaded.anchor is None
    obs = planted["test"].reset(seed=0)[0][None].repeat(4, 0)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    assert type(load_agent(tmp_path / "m.zip", device="cpu")) is cls


def test_awr_weights_favour_advantage_and_are_bounded():
    advantage = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0, 30.0])
    w = awr_weights(advantage, 1.0)
    assert torch.all(w[1:] >= w[:-1]) and w.mean().item() == pytest.approx(1.0)
    raw = torch.exp(advantage / advantage.std()).clamp(max=20.0)
    torch.testing.assert_close(w, raw / raw.mean())
    flat = awr_weights(advantage, 100.0)  # a high temperature: nearly plain behaviour cloning
    assert (flat.max() - flat.min()).item() < 0.1


def test_awr_actor_loss_trains(planted):
    model, anchor = anchored(planted, "td3", actor_loss="awr", awr_temperature=0.5)
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.set_anchor(anchor)
    model.learn(100)
    assert model.logger.name_to_value["train/anchor_ce"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.actor.parameters(), strict=True))
    with pytest.raises(ConfigError, match="actor_loss"):
        anchored(planted, actor_loss="bc")
    with pytest.raises(ConfigError, match="awr_temperature=0"):
        anchored(planted, actor_loss="awr", awr_temperature=0)


def test_same_seed_same_weights(planted):
    def run():
        model, anchor = anchored(planted, "td3", seed=5)
        pretrain_actor(model, anchor, epochs=1, progress=False)
        warm_up_critic(model, anchor, 20, progress=False)
        model.set_anchor(anchor)
        return model.learn(100)

    assert_same_weights(run)


def test_bad_input(planted, tmp_path):
    with pytest.raises(ConfigError, match="critic_weight=-1"):
        anchored(planted, critic_weight=-1.0)
    plain = make_agent("td3", planted["train"], seed=0, device="cpu", **TINY)
    plain.save(tmp_path / "plain.zip")
    with pytest.raises(ConfigError, match="recipe 'sb3'"):
        AnchoredTD3.load(tmp_path / "plain.zip")
    assert type(load_agent(tmp_path / "plain.zip", algo="td3")).__name__ == "TD3"
    with pytest.raises(ConfigError, match="recipe="):
        make_agent("td3", planted["train"], recipe="anchord")
    env = planted["test"]
    env.reset(seed=0)
    with pytest.raises(ConfigError, match=f"k={N_ITEMS + 1}"):
        WolpertingerPolicy(plain, k=N_ITEMS + 1).recommend(env, env.reset(seed=0)[0])
    with pytest.raises(ConfigError, match="k=0"):
        WolpertingerPolicy(plain, k=0)


class KnownCritic(torch.nn.Module):
    """Q(s, a) = a . w: the critic prefers items along w."""

    def __init__(self, w: np.ndarray) -> None:  # noqa: D107
        super().__init__()
        self.w = torch.as_tensor(w)

    def forward(self, obs, actions):
        return ((actions @ self.w)[:, None],)


class FixedActor:
    """Stands in for a model: a fixed action and a known critic."""

    device = torch.device("cpu")

    def __init__(self, action: np.ndarray, w: np.ndarray) -> None:  # noqa: D107
        self.action, self.critic = action, KnownCritic(w)

    def predict(self, obs, deterministic=True):
        obs = np.asarray(obs)
        return (self.action if obs.ndim == 1 else np.tile(self.action, (len(obs), 1))), None


def test_wolpertinger_returns_the_critics_best_candidates(planted):
    env = planted["test"]
    obs, _ = env.reset(seed=0)
    emb = env.context.embeddings
    rng = np.random.default_rng(0)
    action, w = rng.normal(size=DIM).astype(np.float32), rng.normal(size=DIM).astype(np.float32)
    k = 25
    candidates, _ = env.context.ranker.topk(action, k, env.blocked_mask())
    candidates = candidates[0]
    q = emb[candidates] @ w
    expected = candidates[np.argsort(-q, kind="stable")[: env.slate_size]]
    slate = WolpertingerPolicy(FixedActor(action, w), k=k).recommend(env, obs)
    np.testing.assert_array_equal(slate, expected)
    # k == slate size: the decoder's slate, re-ordered by Q
    plain = env.decode(action)[0]
    slate = WolpertingerPolicy(FixedActor(action, w), k=env.slate_size).recommend(env, obs)
    assert sorted(slate.tolist()) == sorted(plain.tolist())


@pytest.mark.parametrize("encoder", [GRUEncoder, AttentionEncoder])
def test_encoders_read_the_sequence(planted, encoder):
    env = planted["train"]
    enc = encoder(env.observation_space, embedding_dim=DIM, width=32)
    obs = torch.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(4)]))
    x, pad = split_observation(obs, DIM, "frame")
    assert x.shape == (4, 3, DIM + 1) and not pad.any()
    np.testing.assert_array_equal(x[:, :, -1].numpy(), obs[:, -3:].numpy())
    assert enc(obs).shape == (4, 32)
    # the order of the items matters to the encoder (not a bag of items)
    swapped = torch.cat([x[:, [1, 0, 2], :DIM].reshape(4, -1), x[:, [1, 0, 2], DIM]], dim=1)
    assert not torch.allclose(enc(obs), enc(swapped))
    with pytest.raises(ConfigError, match="embedding_dim=7"):
        encoder(env.observation_space, embedding_dim=7)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_candidate_values_are_the_critics_values(planted, algo):
    model, _ = anchored(planted, algo)
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(
        rng.normal(size=(4, model.observation_space.shape[0])), dtype=torch.float32
    )
    actions = torch.as_tensor(rng.uniform(-1, 1, size=(10, DIM)), dtype=torch.float32)
    rows = torch.as_tensor([0, 0, 1, 1, 1, 2, 3, 3, 3, 3])
    want = critic_values(model, obs[rows], actions)
    got = candidate_values(model, obs, actions, rows)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # only the first head: TD3's actor climbs Q_1, so its re-ranking reads Q_1 alone
    with torch.no_grad():
        q1 = model.critic.q1_forward(obs[rows], actions)[:, 0]
    torch.testing.assert_close(candidate_values(model, obs, actions, rows, 1), q1)
    torch.testing.assert_close(critic_values(model, obs[rows], actions, 1), q1)
    assert not torch.allclose(q1, want)  # twin heads differ, so the choice matters
    assert ranking_heads(model) == (1 if algo == "td3" else None)
    # three candidates per state, in order: the state part is broadcast, not gathered
    grouped = torch.arange(4).repeat_interleave(3)
    more = torch.as_tensor(rng.uniform(-1, 1, size=(12, DIM)), dtype=torch.float32)
    want = critic_values(model, obs[grouped], more)
    torch.testing.assert_close(candidate_values(model, obs, more, grouped), want)
    # the same pairs, states in another order (gathered): the same values per pair
    order = torch.as_tensor([3, 0, 2, 1]).repeat_interleave(3) * 3 + torch.arange(3).repeat(4)
    got = candidate_values(model, obs, more[order], grouped[order])
    torch.testing.assert_close(got, want[order])


def test_outer_torch_threads_gives_back_the_count_from_before_evaluation():
    from agents.threads import evaluation_threads, outer_torch_threads, single_torch_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with outer_torch_threads():  # outside any single-thread block: nothing changes
            assert torch.get_num_threads() == 2
        with evaluation_threads():
            assert torch.get_num_threads() == 1
            with single_torch_thread():  # nested: the outermost block's count is kept
                with outer_torch_threads():
                    assert torch.get_num_threads() == 2
                assert torch.get_num_threads() == 1
            with outer_torch_threads():
                assert torch.get_num_threads() == 2
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with outer_torch_threads():  # the block is over: nothing to give back
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_wolpertinger_batched_evaluation_matches_one_user_at_a_time(planted):
    model, _ = anchored(planted, "td3")
    env = planted["test"]
    one = evaluate(WolpertingerPolicy(model, 20, batch_size=1), env, progress=False)
    many = evaluate(WolpertingerPolicy(model, 20, batch_size=16), env, progress=False)
    for metric in ("ndcg", "hr", "return"):
        assert one.summary[metric][0] == pytest.approx(many.summary[metric][0], abs=1e-12)


def test_logged_states_stepped_with_another_policy(planted):
    env = planted["train"]
    logged = logged_transitions(env)
    done = [0]

    def replay_logged(obs):  # the logged actions, batch by batch: must give the same data
        out = logged.actions[done[0] : done[0] + len(obs)]
        done[0] += len(obs)
        return out

    same = logged_transitions(env, act=replay_logged)
    for name in ("observations", "actions", "rewards", "next_observations", "dones", "items"):
        np.testing.assert_array_equal(getattr(same, name), getattr(logged, name))
    far = np.zeros(DIM, dtype=np.float32)
    far[:2] = -logged.actions[0, :2]  # the opposite side of the ring from the first state's
    other = logged_transitions(env, act=lambda obs: np.tile(far, (len(obs), 1)))
    np.testing.assert_array_equal(other.observations, logged.observations)
    np.testing.assert_array_equal(other.items, logged.items)  # the anchor's targets stay
    assert (other.actions == far).all()
    # the environment's reward for that slate, from the same logged state
    obs, _ = env.reset(options={"episode": 0})
    j = int(np.flatnonzero(logged.steps == env.context.episodes.future_start[0])[0])
    _, reward, _, _, _ = env.step(far)
    assert reward == pytest.approx(float(other.rewards[j]))
    assert other.rewards.mean() < logged.rewards.mean()
    with pytest.raises(ConfigError, match=r"expected finite actions of shape \(\d+, 16\)"):
        logged_transitions(env, act=lambda obs: np.zeros((len(obs), 3)))


def test_critic_warm_up_data_are_the_noisy_actors_own_actions(planted):
    from agents.config import AnchorSettings
    from agents.factory import ANCHORED_NOISE
    from agents.recipe import noisy_actor, prepare_anchored

    model, _ = anchored(planted)
    obs = logged_transitions(planted["train"]).observations[:500]
    mean, _ = model.policy.predict(obs, deterministic=True)
    a, b = noisy_actor(model, seed=3)(obs), noisy_actor(model, seed=3)(obs)
    np.testing.assert_array_equal(a, b)  # seeded
    noise = (a - mean)[np.abs(mean) < 0.9]  # away from the clipping bounds
    assert noise.std() == pytest.approx(ANCHORED_NOISE / np.sqrt(DIM), rel=0.1)
    assert np.abs(a).max() <= 1.0
    seen = []
    real_step = model.critic_step
    model.critic_step = lambda data: seen.append(data.actions) or real_step(data)
    settings = AnchorSettings(bc_epochs=1, warmup_steps=5)
    prepare_anchored(model, planted["train"], planted["val"], settings, progress=False)
    logged = logged_transitions(planted["train"]).actions
    acted = torch.cat(seen).numpy()
    # not the logged movies' embeddings (unit vectors on the ring), but the actor's points
    assert not np.isclose(np.linalg.norm(acted, axis=1), 1.0, atol=1e-4).all()
    assert not any((np.abs(logged - x).max(axis=1) < 1e-6).any() for x in acted[:20])
    with pytest.raises(ConfigError, match="warmup_actions"):
        AnchorSettings(warmup_actions="logd").validate()


# ---------------------------------------------------------------- the hit term (agents.hits)
def test_contributions_are_the_reward_before_position_weights():
    """Both step paths: batched (many slots) and one slot; with a discount and a miss value."""
    ds = planted_dataset(n_users=40)
    kw = {"dataset": ds, "embedding": ring_embeddings(), "frame_size": 3, "slate_size": 10}
    env = MovieRecEnv(split="train", hit_discount=0.8, unrated_reward=-0.1, **kw)
    t = logged_transitions(env)  # the batched path
    weights = env.make_core(1).weights
    np.testing.assert_allclose(t.contributions @ weights, t.rewards, rtol=1e-5, atol=1e-6)
    assert (t.contributions == np.float32(-0.1)).any() and (t.contributions > 0.5).any()
    obs, _ = env.reset(options={"episode": 0})  # the one-slot path, from the same state
    j = int(np.flatnonzero(t.steps == env.context.episodes.future_start[0])[0])
    core = env.make_core(1)
    core.reset_slot(0, 0)
    slate = t.slates[j][None]
    one = core.step(np.array([0]), slate)
    np.testing.assert_allclose(one.contributions[0], t.contributions[j], rtol=1e-6)
    assert one.rewards[0] == pytest.approx(float(one.contributions[0] @ weights))


def hit_term(planted, transitions=None):
    from agents.hits import HitImitation

    train = planted["train"]
    anchor = BCAnchor(train, logged_transitions(train))
    data = logged_transitions(train) if transitions is None else transitions
    return anchor, HitImitation(anchor, data, train.make_core(1).weights)


def test_hit_term_is_the_reward_weighted_cross_entropy(planted):
    anchor, hits = hit_term(planted)
    t = anchor.transitions
    index = np.arange(0, 64)
    actions = torch.randn(len(index), DIM)
    batch = anchor.batch(index)
    logp = anchor.log_probs(actions, batch)
    adv = np.maximum(t.contributions[index], 0) * planted["train"].make_core(1).weights
    picked = logp.gather(1, torch.as_tensor(t.slates[index]))
    expected = -(torch.as_tensor(adv) * picked).sum() / adv.sum()
    torch.testing.assert_close(hits.loss(logp, index), expected.float())
    assert 0 < len(hits) <= len(t)
    nothing = np.flatnonzero((adv <= 0).all(axis=1))  # rows whose slate paid nothing
    if len(nothing):
        assert hits.loss(logp[nothing], nothing).item() == 0.0


def test_hit_term_learns_which_slate_items_paid(planted):
    """Planted: only the item three steps ahead in the log pays; the actor learns to point there."""
    import dataclasses

    env = planted["train"]
    logged = logged_transitions(env)
    ds = env.context.dataset
    last = ds.indptr[ds.interaction_users[logged.steps] + 1] - 1
    paid = logged.steps + 3 <= last  # a log with an item three steps ahead
    ahead = ds.items[np.minimum(logged.steps + 3, last)]
    slates = np.tile(ahead[:, None], (1, 10))
    slates[:, 1:] = (slates[:, 1:] + np.arange(20, 29)) % N_ITEMS  # nine far items, unpaid
    contributions = np.zeros(slates.shape, dtype=np.float32)
    contributions[:, 0] = paid
    data = dataclasses.replace(logged, slates=slates, contributions=contributions)
    anchor, hits = hit_term(planted, data)
    model, _ = anchored(planted)
    optimizer = torch.optim.Adam([*model.actor.parameters(), anchor.log_scale], lr=1e-2)
    for _ in range(400):
        index = anchor.sample_index(128)
        batch = anchor.batch(index)
        loss = hits.loss(anchor.log_probs(model.actor(batch.observations), batch), index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        batch = anchor.batch(np.flatnonzero(paid))
        logp = anchor.log_probs(model.actor(batch.observations), batch)
    rows = torch.arange(len(logp))
    to_paid = logp[rows, torch.as_tensor(ahead[paid])]
    to_next = logp[rows, torch.as_tensor(logged.items[paid])]
    assert (to_paid > to_next).float().mean() > 0.95  # it points at what paid ...
    top = logp.argmax(dim=1).numpy()
    off = (top - ahead[paid]) % N_ITEMS
    assert (np.minimum(off, N_ITEMS - off) <= 2).mean() > 0.95  # ... on the ring's scale
    assert (top == logged.items[paid]).mean() < 0.05  # and not at the next item


def test_recipe_attaches_the_hit_term_and_trains_with_it(planted, tmp_path):
    from agents.factory import ANCHORED_HIT_WEIGHT
    from agents.recipe import attach_anchor, prepare_anchored

    model, _ = anchored(planted, "td3", hit_weight=2.0)
    settings = AnchorSettings(bc_epochs=1, warmup_steps=5)
    report = prepare_anchored(model, planted["train"], planted["val"], settings, progress=False)
    assert model.hits is not None and model.hits.anchor is model.anchor
    assert "hits" in report.seconds
    model.learn(100)
    assert model.logger.name_to_value["train/hit_ce"] > 0
    model.save(tmp_path / "m.zip")
    loaded = AnchoredTD3.load(tmp_path / "m.zip", device="cpu")
    assert loaded.hit_weight == 2.0 and loaded.hits is None
    attach_anchor(loaded, planted["train"], settings)
    assert loaded.hits is not None and loaded.hits.anchor is loaded.anchor
    plain, _ = anchored(planted, "td3")  # the recipe's default: no hit term is built
    assert plain.hit_weight == ANCHORED_HIT_WEIGHT == 0
    prepare_anchored(plain, planted["train"], planted["val"], settings, progress=False)
    assert plain.hits is None


def test_same_seed_same_weights_with_the_hit_term(planted):
    from agents.recipe import prepare_anchored

    def run():
        model, _ = anchored(planted, "sac", seed=2, hit_weight=1.0)
        settings = AnchorSettings(bc_epochs=1, warmup_steps=10)
        prepare_anchored(model, planted["train"], None, settings, seed=2, progress=False)
        return model.learn(60)

    assert_same_weights(run)


def test_hit_term_bad_input(planted):
    from agents.hits import HitImitation

    for bad in (-1.0, True, "1"):
        with pytest.raises(ConfigError, match=f"hit_weight={bad!r}"):
            anchored(planted, hit_weight=bad)
    train = planted["train"]
    anchor = BCAnchor(train, logged_transitions(train))
    with pytest.raises(ConfigError, match="logged states"):
        HitImitation(anchor, logged_transitions(train, max_transitions=50), np.ones(10) / 10)
    with pytest.raises(ConfigError, match=r"position_weights has shape \(3,\)"):
        HitImitation(anchor, anchor.transitions, np.ones(3))
    _, other = hit_term(planted)  # built on another anchor
    model, _ = anchored(planted, hit_weight=1.0)
    with pytest.raises(ConfigError, match="share this model's anchor"):
        model.set_hits(other)
