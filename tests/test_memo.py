"""The in-memory cache of datasets and environment contexts (recgym.memo)."""

from __future__ import annotations

import pytest

from recgym.memo import Memo


def test_keeps_the_most_recently_used_and_builds_each_key_once():
    memo: Memo[int] = Memo(2)
    calls: list[str] = []

    def build(key: str, value: int):
        def make() -> int:
            calls.append(key)
            return value

        return make

    assert memo.get_or_build("a", build("a", 1)) == 1
    assert memo.get_or_build("b", build("b", 2)) == 2
    assert memo.get_or_build("a", build("a", 10)) == 1  # kept; "a" now the most recent
    assert memo.get_or_build("c", build("c", 3)) == 3  # drops "b", the least recently used
    assert memo.keys() == ["a", "c"] and len(memo) == 2
    assert memo.get_or_build("b", build("b", 20)) == 20  # built again
    assert calls == ["a", "b", "c", "b"]
    memo.clear()
    assert len(memo) == 0


def test_a_failed_build_keeps_nothing():
    memo: Memo[int] = Memo(1)

    def fail() -> int:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        memo.get_or_build("k", fail)
    assert memo.keys() == []


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_bad_size_names_the_value(size):
    with pytest.raises(ValueError, match=f"size={size!r} must be an integer of at least 1"):
        Memo(size)


def test_contexts_are_shared_until_the_memo_drops_them():
    from recgym.envs import context

    env_kw = dict(
        data_dir=None,
        split="train",
        split_strategy="user",
        split_seed=0,
        frame_size=2,
        embedding="random",
        embedding_dim=4,
        embedding_seed=0,
        slate_size=3,
        metric="dot",
        reward="rating",
        backend="numpy",
        device=None,
    )
    first = context.build_context(dataset="synthetic", **env_kw)
    assert context.build_context(dataset="synthetic", **env_kw) is first
    for seed in range(1, context._MEMO.size + 1):  # as many other configurations as it holds
        context.build_context(dataset="synthetic", **{**env_kw, "split_seed": seed})
    assert context.build_context(dataset="synthetic", **env_kw) is not first
