"""The dueling_dqn search space and its conversion to DuelingDQN arguments (no training)."""

import optuna
import pytest
import yaml
from rl_zoo3 import hyperparams_opt, utils

from sb3_dueling import DuelingDQN
from sb3_dueling.zoo import DQN_CONFIG, DUELING_DQN_CONFIG, register_zoo
from sb3_dueling.zoo.__main__ import check_hyperparams, check_policy_kwargs
from sb3_dueling.zoo.sampler import convert_dueling_dqn_params, sample_dueling_dqn_params

ADDITIONAL_ARGS = {"using_her_replay_buffer": False, "her_kwargs": {}}


def test_register_zoo_is_idempotent():
    register_zoo()
    register_zoo()
    assert utils.ALGOS["dueling_dqn"] is DuelingDQN
    assert hyperparams_opt.HYPERPARAMS_SAMPLER["dueling_dqn"] is sample_dueling_dqn_params
    assert hyperparams_opt.HYPERPARAMS_CONVERTER["dueling_dqn"] is convert_dueling_dqn_params
    assert utils.ALGOS["dqn"].__name__ == "DQN"  # the Zoo's own entries are untouched


@pytest.mark.parametrize("seed", range(5))
def test_sampled_params_build_a_model(seed):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    hyperparams = sample_dueling_dqn_params(trial, n_actions=2, n_envs=1, additional_args=ADDITIONAL_ARGS)
    assert {"double_q", "aggregation", "stream_units", "n_steps", "learning_rate"} <= set(trial.params)
    # the converter gives the same arguments from the stored trial parameters (what --trial-id loads)
    assert convert_dueling_dqn_params(dict(trial.params)) == hyperparams
    stream = [trial.params["stream_units"]] if trial.params["stream_units"] else []
    assert hyperparams["policy_kwargs"]["net_arch"]["value"] == stream
    assert hyperparams["policy_kwargs"]["aggregation"] == trial.params["aggregation"]
    model = DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=1000, **{**hyperparams, "learning_starts": 10})
    assert model.double_q is trial.params["double_q"]
    assert model.n_steps == trial.params["n_steps"]
    model.learn(50)


@pytest.mark.parametrize("config, algo", [(DUELING_DQN_CONFIG, "dueling_dqn"), (DQN_CONFIG, "dqn")])
def test_every_shipped_entry_passes_the_checks(config, algo):
    register_zoo()
    entries = yaml.safe_load(config.read_text())
    assert {"default", "atari", "CartPole-v1", "Acrobot-v1", "LunarLander-v3", "MountainCar-v0"} <= set(entries)
    for name, entry in entries.items():
        check_hyperparams(algo, set(entry), name)
        check_policy_kwargs(algo, entry, name)
    assert entries["atari"]["policy"] == "DuelingNatureCnnPolicy" and entries["atari"]["frame_stack"] == 4
