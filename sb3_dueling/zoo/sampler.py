"""
Optuna search spaces of DuelingDQN, DuelingQRDQN and Rainbow: the RL Zoo's DQN and QR-DQN spaces, plus what
the dueling agent adds (the same for all three), plus Rainbow's atoms, noise and prioritized replay.
"""

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import optuna
from rl_zoo3.hyperparams_opt import convert_offpolicy_params, sample_dqn_params, sample_qrdqn_params

# Hidden units of each stream (0: the stream is a single linear layer on the shared trunk)
STREAM_UNITS = (0, 64, 256)
DUELING_PARAMS = ("double_q", "aggregation", "stream_units", "n_steps")
# Rainbow's categorical support: [-v_max, v_max] (an env's discounted returns are unknown to the sampler) in n_atoms
N_ATOMS = (21, 51, 101)
V_MAX = (10.0, 30.0, 100.0, 300.0)
RAINBOW_PARAMS = ("n_atoms", "v_max", "per_alpha", "noisy", "sigma0", "noise_sample_freq")
#: A Zoo sampler: (trial, n_actions, n_envs, additional_args) -> hyperparameters
Sampler = Callable[[optuna.Trial, int, int, dict[str, Any]], dict[str, Any]]
#: Policy arguments that no sampler draws and that fit the network to the env (MinAtar's convolution and its 0/1
#: frames) or keep the entry's optimizer: the Zoo replaces an entry's ``policy_kwargs`` with the sampled ones, and
#: the converters put these back from :data:`ENTRY_POLICY_KWARGS`
KEPT_POLICY_KWARGS = (
    "features_extractor_class",
    "features_extractor_kwargs",
    "normalize_images",
    "optimizer_class",
    "optimizer_kwargs",
)
#: The ``policy_kwargs`` of the hyperparameter entry of the trial being sampled or converted (set by the Zoo patches
#: of ``sb3_dueling.zoo.patches``; none outside them)
ENTRY_POLICY_KWARGS: ContextVar[dict[str, Any] | None] = ContextVar("entry_policy_kwargs", default=None)


def convert_dueling_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn the values Optuna sampled (``trial.params``) into DuelingDQN or DuelingQRDQN hyperparameters; the
    ``policy_kwargs`` keep those of the entry's (:data:`ENTRY_POLICY_KWARGS`) that no sampler draws
    (:data:`KEPT_POLICY_KWARGS`).

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
    entry = ENTRY_POLICY_KWARGS.get() or {}
    kept = {key: entry[key] for key in KEPT_POLICY_KWARGS if key in entry}
    hyperparams["policy_kwargs"] = {**kept, **hyperparams["policy_kwargs"]}
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


def convert_rainbow_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn the values Optuna sampled (``trial.params``) into Rainbow hyperparameters.

    :param sampled_params: What :func:`convert_dueling_params` takes, and ``n_atoms``, ``v_max`` (the atoms span
        ``[-v_max, v_max]``), ``per_alpha``, ``noisy`` and, with ``noisy``, ``sigma0`` and ``noise_sample_freq``
    :return: Keyword arguments of Rainbow
    """
    hyperparams = convert_dueling_params({key: value for key, value in sampled_params.items() if key not in RAINBOW_PARAMS})
    v_max, noisy = sampled_params["v_max"], sampled_params["noisy"]
    hyperparams["policy_kwargs"].update(n_atoms=sampled_params["n_atoms"], v_min=-v_max, v_max=v_max)
    hyperparams.update(noisy=noisy, replay_buffer_kwargs=dict(alpha=sampled_params["per_alpha"]))
    if noisy:
        hyperparams["policy_kwargs"]["sigma0"] = sampled_params["sigma0"]
        hyperparams["noise_sample_freq"] = sampled_params["noise_sample_freq"]
        # The noise explores, without epsilon-greedy (Rainbow's default): the Zoo's DQN space draws a schedule
        # that only the trials without noise use
        del hyperparams["exploration_fraction"], hyperparams["exploration_final_eps"]
    return hyperparams


def sample_rainbow_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """
    Sampler for Rainbow: the Zoo's DQN space, the dueling options (``n_steps`` among them) and Rainbow's own.

    :param trial: The Optuna trial
    :param n_actions: Number of actions of the env
    :param n_envs: Number of envs
    :param additional_args: The Zoo's extra arguments (HER...)
    :return: Keyword arguments of Rainbow
    """
    sample_dueling_dqn_params(trial, n_actions, n_envs, additional_args)
    trial.suggest_categorical("n_atoms", list(N_ATOMS))
    trial.suggest_categorical("v_max", list(V_MAX))
    trial.suggest_float("per_alpha", 0.2, 0.8)  # Rainbow's 0.5; 0 would be uniform replay
    if trial.suggest_categorical("noisy", [True, False]):  # noisy layers, or epsilon-greedy with the DQN schedule
        trial.suggest_float("sigma0", 0.1, 1.0, log=True)
        trial.suggest_categorical("noise_sample_freq", [1, -1])  # a new draw at every step, or once per rollout
    return convert_rainbow_params(trial.params)
