"""
Optuna search spaces of DuelingDQN and DuelingQRDQN: the RL Zoo's DQN and QR-DQN spaces, plus what
the dueling agent adds (the same for both).
"""

from collections.abc import Callable
from typing import Any

import optuna
from rl_zoo3.hyperparams_opt import convert_offpolicy_params, sample_dqn_params, sample_qrdqn_params

# Hidden units of each stream (0: the stream is a single linear layer on the shared trunk)
STREAM_UNITS = (0, 64, 256)
DUELING_PARAMS = ("double_q", "aggregation", "stream_units", "n_steps")
#: A Zoo sampler: (trial, n_actions, n_envs, additional_args) -> hyperparameters
Sampler = Callable[[optuna.Trial, int, int, dict[str, Any]], dict[str, Any]]


def convert_dueling_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn the values Optuna sampled (``trial.params``) into DuelingDQN or DuelingQRDQN hyperparameters.

    :param sampled_params: DQN's or QR-DQN's sampled values (see ``rl_zoo3.hyperparams_opt.sample_dqn_params``;
        the Zoo's converter puts ``n_quantiles`` in ``policy_kwargs``) and ``double_q``, ``aggregation``,
        ``stream_units``, ``n_steps``
    :return: Keyword arguments of the algorithm
    """
    zoo_params = {key: value for key, value in sampled_params.items() if key not in DUELING_PARAMS}
    hyperparams = convert_offpolicy_params(zoo_params)
    stream = [sampled_params["stream_units"]] if sampled_params["stream_units"] else []
    hyperparams["policy_kwargs"].update(
        net_arch=dict(shared=hyperparams["policy_kwargs"]["net_arch"], value=stream, advantage=stream),
        aggregation=sampled_params["aggregation"],
    )
    hyperparams.update(double_q=sampled_params["double_q"], n_steps=sampled_params["n_steps"])
    return hyperparams


def with_dueling_options(zoo_sampler: Sampler) -> Sampler:
    """
    :param zoo_sampler: The Zoo's sampler of the algorithm the dueling one extends (DQN, QR-DQN)
    :return: A sampler of its space plus the dueling options
    """

    def sample_dueling_params(
        trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
    ) -> dict[str, Any]:
        """
        :param trial: The Optuna trial
        :param n_actions: Number of actions of the env
        :param n_envs: Number of envs
        :param additional_args: The Zoo's extra arguments (HER...)
        :return: Keyword arguments of the algorithm
        """
        zoo_sampler(trial, n_actions, n_envs, additional_args)  # gamma, lr, batch, schedule, trunk (and quantiles)
        trial.suggest_categorical("double_q", [True, False])
        trial.suggest_categorical("aggregation", ["mean", "max"])
        trial.suggest_categorical("stream_units", list(STREAM_UNITS))
        trial.suggest_categorical("n_steps", [1, 3, 5])
        return convert_dueling_params(trial.params)

    return sample_dueling_params


#: Sampler for DuelingDQN: the Zoo's DQN space and the dueling options
sample_dueling_dqn_params = with_dueling_options(sample_dqn_params)
#: Sampler for DuelingQRDQN: the Zoo's QR-DQN space (DQN's and ``n_quantiles``) and the dueling options
sample_dueling_qrdqn_params = with_dueling_options(sample_qrdqn_params)
