"""MinAtar's games in the RL Zoo: the ids' registration, rainbow.yml's entries (the benchmark's Rainbow) and the commands."""

import argparse
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import optuna
import pytest
import yaml
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from benchmarks.minatar import BUDGET, GAMES, STICKY_ACTION_PROB, MinAtarRun
from sb3_dueling import Rainbow
from sb3_dueling.minatar_envs import ChannelFirst, is_minatar_id, register_minatar_envs
from sb3_dueling.noisy import NoisyLinear
from sb3_dueling.torch_layers import MinAtarConvExtractor
from sb3_dueling.zoo import RAINBOW_CONFIG, zoo_patches
from sb3_dueling.zoo.__main__ import main
from sb3_dueling.zoo.sampler import ENTRY_POLICY_KWARGS, convert_rainbow_params, sample_rainbow_params

#: The Zoo's extra arguments of a sampler, without HER
ADDITIONAL_ARGS = {"using_her_replay_buffer": False, "her_kwargs": {}}
IDS = {game: f"MinAtar/{game}-v0" for game in GAMES}
#: What the Zoo's runs and the benchmark's share: the algorithm's settings (its env's own are compared apart)
SETTINGS = (
    "batch_size",
    "buffer_size",
    "learning_starts",
    "train_freq",
    "gradient_steps",
    "target_update_interval",
    "gamma",
    "n_steps",
    "distribution",
    "dueling",
    "double_q",
    "noisy",
    "prioritized",
    "replay_buffer_kwargs",
    "exploration_initial_eps",
    "exploration_final_eps",
    "max_grad_norm",
    "tau",
    "optimize_memory_usage",
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A short Zoo run of Rainbow on MinAtar's Breakout, with rainbow.yml's entry."""
    logs = tmp_path_factory.mktemp("zoo_minatar") / "logs"
    command = ["train", "--algo", "rainbow", "--env", IDS["Breakout"], "--seed", "0", "-n", "300", "-f", str(logs)]
    assert main([*command, "-params", "learning_starts:100"]) == 0
    return logs


def test_train_uses_the_entry(trained):
    run = trained / "rainbow" / "MinAtar-Breakout-v0_1"
    model = Rainbow.load(run / "MinAtar-Breakout-v0.zip")
    assert isinstance(model.q_net.features_extractor, MinAtarConvExtractor)
    assert any(isinstance(layer, NoisyLinear) for layer in model.q_net.modules())
    assert model.policy.n_atoms == 51 and (model.policy.v_min, model.policy.v_max) == (-100.0, 100.0)
    assert model.observation_space == spaces.Box(0, 1, (4, 10, 10), np.uint8)
    assert model.action_space == spaces.Discrete(6)
    assert model.learning_starts == 100 and model._n_updates > 0  # -params over the entry
    config = dict(yaml.load((run / "MinAtar-Breakout-v0" / "config.yml").read_text(), Loader=yaml.UnsafeLoader))
    assert config["env_wrapper"] == "sb3_dueling.minatar_envs.ChannelFirst"


def test_enjoy_plays_the_trained_model(trained, capsys):
    command = ["enjoy", "--algo", "rainbow", "--env", IDS["Breakout"], "-f", str(trained), "--no-render", "-n", "30"]
    assert main(command) == 0
    assert "Episode Reward" in capsys.readouterr().out


def zoo_model(env_id: str, folder: Path) -> tuple[BaseAlgorithm, int]:
    """The model the Zoo's train builds from rainbow.yml's entry of ``env_id``, and its budget."""
    from rl_zoo3.exp_manager import ExperimentManager

    with zoo_patches():
        manager = ExperimentManager(
            argparse.Namespace(), "rainbow", env_id, str(folder), config=str(RAINBOW_CONFIG), verbose=0, device="cpu"
        )
        result = manager.setup_experiment()
    assert result is not None
    return result[0], manager.n_timesteps


def the_game(model: BaseAlgorithm) -> Any:
    """MinAtar's game under the model's env (``minatar.Environment``)."""
    return model.get_env().envs[0].unwrapped.game  # type: ignore[union-attr]


@pytest.mark.parametrize("game", list(GAMES))
def test_the_entries_are_the_benchmarks_rainbow(game, tmp_path):
    """rainbow.yml's MinAtar entries and benchmarks.minatar's Rainbow build the same learner on the same env."""
    assert register_minatar_envs()
    zoo, budget = zoo_model(IDS[game], tmp_path)
    benchmark = MinAtarRun("Rainbow", game, 0).make_model()
    assert budget == BUDGET
    assert type(zoo) is type(benchmark) is Rainbow and type(zoo.policy) is type(benchmark.policy)
    assert {key: getattr(zoo, key) for key in SETTINGS} == {key: getattr(benchmark, key) for key in SETTINGS}
    policy, expected = (model.policy._get_constructor_parameters() for model in (zoo, benchmark))
    del policy["lr_schedule"], expected["lr_schedule"]
    # the Zoo makes a number a constant schedule
    assert [zoo.lr_schedule(progress) for progress in (1.0, 0.5, 0.0)] == [
        benchmark.lr_schedule(progress) for progress in (1.0, 0.5, 0.0)
    ]
    assert policy == expected
    assert str(zoo.q_net) == str(benchmark.q_net)
    assert type(zoo.replay_buffer) is type(benchmark.replay_buffer)
    assert zoo.observation_space == benchmark.observation_space and zoo.action_space == benchmark.action_space
    assert the_game(zoo).env_name == the_game(benchmark).env_name == GAMES[game]
    assert the_game(zoo).sticky_action_prob == the_game(benchmark).sticky_action_prob == STICKY_ACTION_PROB


def test_the_ids_are_registered_once():
    assert register_minatar_envs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is registered again
        assert register_minatar_envs()
    for env_id in IDS.values():
        env = ChannelFirst(gym.make(env_id))
        assert env.action_space == spaces.Discrete(6)  # -v0: all six actions
        env.close()
    assert is_minatar_id("minatar/breakout-v0") and not is_minatar_id("Breakout-v0")


def test_without_minatar_a_minatar_id_names_the_extra(tmp_path, monkeypatch, capsys):
    for env_id in [name for name in gym.envs.registry if name.startswith("MinAtar/")]:
        monkeypatch.delitem(gym.envs.registry, env_id)
    monkeypatch.setitem(sys.modules, "minatar", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "minatar.gym", None)
    assert not register_minatar_envs()
    for command in ("train", "enjoy"):
        assert main([command, "--algo", "rainbow", "--env", IDS["Breakout"], "-f", str(tmp_path / "logs")]) == 2
        assert "pip install 'sb3_dueling[minatar]'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_importing_the_package_imports_no_minatar():
    script = (
        "import sys, sb3_dueling, sb3_dueling.minatar_envs\n"
        "loaded = [name for name in sys.modules if name.split('.')[0] in ('minatar', 'matplotlib', 'seaborn')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_optimize_keeps_the_entrys_extractor():
    """The samplers draw policy_kwargs that replace the entry's: the extractor, its inputs and the optimizer stay."""
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    entry = dict(features_extractor_class=MinAtarConvExtractor, normalize_images=False, net_arch=[], n_atoms=11)
    token = ENTRY_POLICY_KWARGS.set(entry)
    try:
        policy_kwargs = sample_rainbow_params(trial, 6, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})[
            "policy_kwargs"
        ]
    finally:
        ENTRY_POLICY_KWARGS.reset(token)
    assert policy_kwargs["features_extractor_class"] is MinAtarConvExtractor and not policy_kwargs["normalize_images"]
    assert policy_kwargs["net_arch"]["shared"] != [] and policy_kwargs["n_atoms"] != 11  # the sampled ones win
    assert "features_extractor_class" not in convert_rainbow_params(trial.params)["policy_kwargs"]  # no entry: none


def test_the_zoo_patches_give_trials_their_entry(monkeypatch):
    """An Optuna trial (objective) reads the entry the Zoo has evaluated; --trial-id (load_trial) the YAML file's."""
    from rl_zoo3.exp_manager import ExperimentManager

    for name in ("objective", "load_trial"):
        monkeypatch.setattr(ExperimentManager, name, lambda self, *args: ENTRY_POLICY_KWARGS.get())
    trial = SimpleNamespace(_hyperparams={"policy_kwargs": dict(features_extractor_class=MinAtarConvExtractor)})
    study = SimpleNamespace(config=str(RAINBOW_CONFIG), env_name=SimpleNamespace(gym_id=IDS["Asterix"]))
    with zoo_patches():
        assert ExperimentManager.objective(trial, None) == trial._hyperparams["policy_kwargs"]
        assert ExperimentManager.load_trial(study, "sqlite://", "study")["features_extractor_class"] is MinAtarConvExtractor
    assert ENTRY_POLICY_KWARGS.get() is None
