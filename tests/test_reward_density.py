"""benchmarks/reward_density.py on synthetic data: the shares it reports are consistent."""

from __future__ import annotations

from benchmarks import reward_density


def test_random_policy_hit_shares_are_consistent():
    args = reward_density.Args(dataset="synthetic", embeddings=["svd"], steps=300, write=False)
    share, next_share = reward_density.random_policy_hits("svd", args)
    # a hit on the next items is a hit on the remaining log, never the other way round
    assert 0.0 <= next_share <= share <= 1.0
    assert share > 0.0  # synthetic users rate many movies: 300 random slates must hit some


def test_uniform_slate_expectation_is_a_probability_of_the_mean_log():
    args = reward_density.Args(dataset="synthetic", write=False)
    expected, mean_left = reward_density.uniform_slate_hits(args)
    assert mean_left >= 1.0
    assert 0.0 < expected < 1.0
