"""The ``recgym`` command's parser, options, config files and output formatting (no training)."""

from __future__ import annotations

import argparse
import json

import pytest

from agents.cli import build_parser, parse_set, results_text, train_config
from agents.config import ALGO_NAMES, BASELINES, RunConfig
from recgym.errors import ConfigError
from recgym.text_table import format_table


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


# ----------------------------------------------------------------------------------- help
def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("command", ["train", "evaluate", "recommend"])
def test_every_command_has_a_description_examples_and_documented_options(command):
    sp = subparsers(build_parser())[command]
    assert sp.description and "examples:" in sp.epilog
    for action in sp._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, action.dest
        if action.option_strings and not action.required:
            assert "(default: " in action.help, action.option_strings


def test_help_lists_choices_layout_and_version(capsys):
    parser = build_parser()
    train = subparsers(parser)["train"]
    text = train.format_help()
    assert "{ddpg,td3,sac,dqn}" in text
    assert all(name in text for name in BASELINES)
    for entry in (
        "config.json",
        "hyperparameters.json",
        "checkpoints/",
        "tb/",
        "curve.csv",
        "model.zip",
    ):
        assert entry in (train.description or "")
    with pytest.raises(SystemExit):
        parser.parse_args(["--version"])
    import recgym

    assert capsys.readouterr().out.strip() == f"recgym {recgym.__version__}"


def test_the_cli_names_match_the_agents_package():
    from agents.factory import ALGOS
    from agents.policies import make_baseline  # noqa: F401 - BASELINES is what it accepts

    assert tuple(ALGOS) == ALGO_NAMES


# ---------------------------------------------------------------------------------- --set
def test_set_values_are_json_and_bare_words_stay_strings():
    values = parse_set(
        [
            "gamma=0.95",
            "learning_rate=3e-4",
            "ent_coef=auto",
            'policy_kwargs={"net_arch": [64, 64]}',
            'train_freq=[1, "episode"]',
            "optimize_memory_usage=false",
        ]
    )
    assert values == {
        "gamma": 0.95,
        "learning_rate": 3e-4,
        "ent_coef": "auto",
        "policy_kwargs": {"net_arch": [64, 64]},
        "train_freq": [1, "episode"],
        "optimize_memory_usage": False,
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("policy_kwargs={net_arch: [64]}", "policy_kwargs is not valid JSON"),
        ("policy_kwargs={'net_arch': [64]}", "double quotes"),
        ("net=[64, 64", "net is not valid JSON"),
        ("learning_rate=.001", "learning_rate is not valid JSON"),
        ("learning_rate=", "learning_rate is not valid JSON"),
        ("optimize_memory_usage=True", "true, false or null"),
        ("gamma", "expected KEY=VALUE"),
    ],
)
def test_malformed_set_values_fail_at_parse_time(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_set([item])
    assert f"--set {item!r}" in str(info.value)


# ------------------------------------------------------------------------------- --config
def test_config_file_yaml_with_command_line_overrides(tmp_path):
    path = tmp_path / "run.yml"
    path.write_text(
        "algo: td3\nenv_id: MovieRecSynthetic-v0\nenv_kwargs: {embedding_dim: 8}\n"
        "timesteps: 500\nhyperparameters: {learning_rate: 3.0e-4, batch_size: 64}\n"
    )
    config, given = train_config(
        parse(
            "train",
            "--config",
            str(path),
            "--seed",
            "3",
            "--set",
            "batch_size=32",
            "--dataset",
            "synthetic",
        )
    )
    assert config == RunConfig(
        algo="td3",
        env_id="MovieRecSynthetic-v0",
        env_kwargs={"embedding_dim": 8, "dataset": "synthetic"},
        timesteps=500,
        seed=3,
        hyperparameters={"learning_rate": 3e-4, "batch_size": 32},
        recipe="anchored",  # validate() resolves "auto": anchored for td3
    )
    assert set(given) == {"--seed", "--set", "--dataset", "--config"}


def test_train_env_options_merge_over_the_config_file(tmp_path):
    path = tmp_path / "run.yml"
    path.write_text("train_env_kwargs: {hit_discount: 0.9, unrated_reward: -0.1}\n")
    config, given = train_config(
        parse("train", "--config", str(path), "--train-env", "hit_discount=0.7")
    )
    assert config.train_env_kwargs == {"hit_discount": 0.7, "unrated_reward": -0.1}
    assert config.training_env_kwargs() == {**config.env_kwargs, **config.train_env_kwargs}
    assert set(given) == {"--train-env", "--config"}
    with pytest.raises(ConfigError, match="'dataset' cannot differ between training"):
        train_config(parse("train", "--train-env", "dataset=ml-1m"))


def test_config_differences_names_each_changed_value():
    from agents.config import config_differences

    saved = RunConfig(algo="td3", env_kwargs={"embedding": "sasrec"}).validate()
    assert config_differences(RunConfig(algo="td3").validate(), saved) == []
    given = RunConfig(algo="td3", seed=2, env_kwargs={"embedding_dim": 8}).validate()
    assert config_differences(given, saved) == [
        "env_kwargs.embedding: given (not set), saved 'sasrec'",
        "env_kwargs.embedding_dim: given 8, saved (not set)",
        "seed: given 2, saved 0",
    ]


def test_config_file_json_and_a_runs_config_json(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"algo": "sac", "timesteps": 1000}))
    config, _ = train_config(parse("train", "--config", str(plain)))
    assert (config.algo, config.timesteps, config.env_id) == ("sac", 1000, "MovieRec-v0")
    saved = tmp_path / "config.json"
    saved.write_text(
        json.dumps(
            {"config": RunConfig(algo="td3", seed=7).to_dict(), "versions": {"torch": "2.13.0"}}
        )
    )
    config, _ = train_config(parse("train", "--config", str(saved)))
    assert config == RunConfig(algo="td3", seed=7).validate()


def test_the_item_space_defaults_to_sasrec_and_is_one_option_away(tmp_path):
    config, given = train_config(parse("train", "--dataset", "ml-100k"))
    assert config.env_kwargs == {"embedding": "sasrec", "dataset": "ml-100k"}
    assert given == ["--dataset"]
    config, given = train_config(parse("train", "--embedding", "implicit"))
    assert config.env_kwargs == {"embedding": "implicit"} and given == ["--embedding"]
    # a file's env_kwargs replace the default, as a RunConfig's own field does
    path = tmp_path / "run.yml"
    path.write_text("env_kwargs: {embedding_dim: 16}\n")
    config, _ = train_config(parse("train", "--config", str(path)))
    assert config.env_kwargs == RunConfig(env_kwargs={"embedding_dim": 16}).env_kwargs
    assert "embedding" not in config.env_kwargs
    assert RunConfig().env_kwargs == {"embedding": "sasrec"}
    assert RunConfig().env_kwargs is not RunConfig().env_kwargs  # no shared mutable default
    # a benchmark seed's table: recgym train --seed 1 --embedding-seed 1
    config, given = train_config(parse("train", "--seed", "1", "--embedding-seed", "1"))
    assert config.env_kwargs == {"embedding": "sasrec", "embedding_seed": 1}
    assert set(given) == {"--seed", "--embedding-seed"}


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("algo: td3\ntimestep: 100\n", ".yml", "unknown field 'timestep'.*'timesteps'"),
        ("algo: [td3\n", ".yaml", "is not valid YAML"),
        ('{"algo": "td3",}', ".json", "is not valid JSON"),
        ("- td3\n", ".yml", "must be a mapping of RunConfig fields"),
        ("timesteps: ten\n", ".yml", "timesteps='ten' must be an integer"),
        ("hyperparameters: 3\n", ".yml", "hyperparameters=3 must be a mapping"),
        ("algo: ddgp\n", ".yml", "Did you mean 'ddpg'"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path, text, suffix, message):
    path = tmp_path / f"run{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        train_config(parse("train", "--config", str(path)))


# ---------------------------------------------------------------------------------- tables
def test_tables_fit_the_width_text_shortened_first():
    rows = [["1", "A Very Long Movie Title That Goes On (1999)", "Drama, Comedy, Romance", "4.5"]]
    text = format_table(
        "t", ["#", "title", "genres", "rating"], rows, width=50, shrink=[1, 2], right=[3]
    )
    assert max(len(line) for line in text.splitlines()) <= 50
    assert "…" in text and text.splitlines()[-1].endswith("4.5")
    narrow = format_table("t", ["#", "title", "genres", "rating"], rows, width=20, shrink=[1, 2])
    assert max(len(line) for line in narrow.splitlines()) <= 20
    assert "(left out to fit 20 columns: rating)" in " ".join(narrow.split())


class FakeResult:
    def __init__(self, name: str) -> None:
        """Every metric 0.012345 with a 95% CI of [0.01, 0.014691]."""
        self.policy, self.k, self.n_users = name, 10, 61
        self.summary = {
            m: (0.012345, 0.01, 0.014691) for m in ("ndcg", "hr", "mrr", "precision", "return")
        }
        self.coverage, self.novelty = 0.123456, 9.87654


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_results_table_fits_and_keeps_the_ci_where_it_can(width):
    results = [FakeResult(n) for n in ("ddpg", "embedding-mean", "oracle")]
    text = results_text(results, "test", width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "embedding-mean" in text and "NDCG@10" in text
    if width >= 80:
        assert "0.0123 ±0.0023" in text  # NDCG with its confidence interval
    if width >= 160:
        assert "coverage" in text and "more columns" not in text
    else:
        assert "(more columns and digits in the saved files)" in text
