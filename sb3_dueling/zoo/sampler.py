"""Optuna search space of DuelingDQN: the RL Zoo's DQN space plus what the dueling agent adds."""

from typing import Any

import optuna
from rl_zoo3.hyperparams_opt import convert_offpolicy_params, sample_dqn_params

# Hidden units of each stream (0: the stream is a single linear layer on the shared trunk)
STREAM_UNITS = (0, 64, 256)
DUELING_PARAMS = ("double_q", "aggregation", "stream_units", "n_steps")


def convert_dueling_dqn_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn the values Optuna sampled (``trial.params``) into DuelingDQN hyperparameters.

    :param sampled_params: DQN's sampled values (see ``rl_zoo3.hyperparams_opt.sample_dqn_params``)
        and ``double_q``, ``aggregation``, ``stream_units``, ``n_steps``
    :return: Keyword arguments of ``DuelingDQN``
    """
    dqn_params = {key: value for key, value in sampled_params.items() if key not in DUELING_PARAMS}
    hyperparams = convert_offpolicy_params(dqn_params)
    stream = [sampled_params["stream_units"]] if sampled_params["stream_units"] else []
    hyperparams["policy_kwargs"].update(
        net_arch=dict(shared=hyperparams["policy_kwargs"]["net_arch"], value=stream, advantage=stream),
        aggregation=sampled_params["aggregation"],
    )
    hyperparams.update(double_q=sampled_params["double_q"], n_steps=sampled_params["n_steps"])
    return hyperparams


def sample_dueling_dqn_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Sampler for DuelingDQN hyperparameters.

    :param trial: The Optuna trial
    :param n_actions: Number of actions of the env
    :param n_envs: Number of envs
    :param additional_args: The Zoo's extra arguments (HER...)
    :return: Keyword arguments of ``DuelingDQN``
    """
    sample_dqn_params(trial, n_actions, n_envs, additional_args)  # DQN's space: gamma, lr, batch, schedule, trunk
    trial.suggest_categorical("double_q", [True, False])
    trial.suggest_categorical("aggregation", ["mean", "max"])
    trial.suggest_categorical("stream_units", list(STREAM_UNITS))
    trial.suggest_categorical("n_steps", [1, 3, 5])
    return convert_dueling_dqn_params(trial.params)
