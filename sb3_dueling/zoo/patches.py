"""
Everything the Zoo glue changes in rl_zoo3, Optuna and Matplotlib, in one place: :func:`zoo_patches`
applies it for one command and undoes it when the command ends.
"""

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

import optuna
from matplotlib import pyplot as plt
from rl_zoo3 import exp_manager, hyperparams_opt, utils
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_dueling.buffers import PrioritizedDictReplayBuffer, PrioritizedReplayBuffer
from sb3_dueling.dueling_dqn import DuelingDQN
from sb3_dueling.dueling_qrdqn import DuelingQRDQN
from sb3_dueling.rainbow import Rainbow
from sb3_dueling.user_input import UsageError, evaluate_as_zoo, read_hyperparams_entry
from sb3_dueling.zoo.checkpointing import check_resumable, checkpoint_callback, resume_model
from sb3_dueling.zoo.figures import FigureFiles, has_display
from sb3_dueling.zoo.sampler import (
    ENTRY_POLICY_KWARGS,
    Sampler,
    convert_dueling_params,
    convert_rainbow_params,
    sample_dueling_dqn_params,
    sample_dueling_qrdqn_params,
    sample_rainbow_params,
)
from sb3_dueling.zoo.storages import Storage
from sb3_dueling.zoo.studies import with_heartbeat

#: DuelingDQN's name in the Zoo (``--algo dueling_dqn``), the commands' default algorithm
ALGO = "dueling_dqn"


class ZooAlgorithm(NamedTuple):
    """What the Zoo needs of an algorithm: the class, and for ``-optimize`` its Optuna sampler and converter."""

    cls: type[BaseAlgorithm]
    sampler: Sampler
    converter: Callable[[dict[str, Any]], dict[str, Any]]


#: The algorithms this package adds to the Zoo (``--algo NAME``)
ZOO_ALGORITHMS = {
    ALGO: ZooAlgorithm(DuelingDQN, sample_dueling_dqn_params, convert_dueling_params),
    "dueling_qrdqn": ZooAlgorithm(DuelingQRDQN, sample_dueling_qrdqn_params, convert_dueling_params),
    "rainbow": ZooAlgorithm(Rainbow, sample_rainbow_params, convert_rainbow_params),
}


@contextmanager
def zoo_patches(
    checkpoint_freq: int | None = None,
    resume: Path | None = None,
    heartbeat: int | None = None,
    storage: Storage | None = None,
    figures: FigureFiles | None = None,
) -> Iterator[None]:
    """
    Within the ``with`` block: the algorithms of :data:`ZOO_ALGORITHMS` are in the Zoo's tables of
    algorithms, samplers and converters, and the options given change the Zoo's runs.

    :param checkpoint_freq: Write crash-safe checkpoints every this many env steps
    :param resume: Continue from the newest complete checkpoint in this folder
    :param heartbeat: Give the database studies the Zoo creates a heartbeat, every this many seconds
    :param storage: The ``--storage``, which the Zoo knows only as shown (without its password)
    :param figures: Save the figures the Zoo shows to these files
    """
    with ExitStack() as stack:
        algorithms = ZOO_ALGORITHMS.items()
        stack.enter_context(mock.patch.dict(utils.ALGOS, {name: algo.cls for name, algo in algorithms}))
        stack.enter_context(
            mock.patch.dict(hyperparams_opt.HYPERPARAMS_SAMPLER, {name: algo.sampler for name, algo in algorithms})
        )
        stack.enter_context(
            mock.patch.dict(hyperparams_opt.HYPERPARAMS_CONVERTER, {name: algo.converter for name, algo in algorithms})
        )
        # The Zoo evaluates a YAML `replay_buffer_class` string in its exp_manager module (as it does for
        # HerReplayBuffer): our buffers must be names there
        for buffer_class in (PrioritizedReplayBuffer, PrioritizedDictReplayBuffer):
            stack.enter_context(mock.patch.object(exp_manager, buffer_class.__name__, buffer_class, create=True))
        # -optimize and --trial-id: the sampled policy_kwargs replace the entry's, whose extractor the env may need
        for name, entry in (("objective", trial_entry), ("load_trial", study_entry)):
            stack.enter_context(mock.patch.object(ExperimentManager, name, with_entry_policy_kwargs(name, entry)))
        if checkpoint_freq is not None:
            stack.enter_context(mock.patch.object(ExperimentManager, "create_callbacks", with_checkpoints(checkpoint_freq)))
        if resume is not None:
            stack.enter_context(mock.patch.object(ExperimentManager, "setup_experiment", resumed_experiment(resume)))
            stack.enter_context(mock.patch.object(ExperimentManager, "learn", continued_learn()))
        if heartbeat is not None or storage is not None:
            for name in ("create_study", "load_study"):
                stack.enter_context(mock.patch.object(optuna, name, in_storage(getattr(optuna, name), heartbeat, storage)))
        if figures is not None:
            stack.enter_context(mock.patch.object(plt, "show", saving_show(figures)))
        yield


def in_storage(
    open_study: Callable[..., optuna.Study], heartbeat: int | None, known: Storage | None
) -> Callable[..., optuna.Study]:
    """
    Optuna's ``create_study`` or ``load_study``, opening the study's storage with :func:`with_heartbeat`.

    :param open_study: Optuna's function
    :param heartbeat: Seconds between heartbeats (``None``: no heartbeat)
    :param known: The command's ``--storage``, which the Zoo passes as shown
    """

    def open_study_in_storage(*args: Any, storage: Any = None, **kwargs: Any) -> optuna.Study:
        return open_study(*args, storage=with_heartbeat(storage, heartbeat, known), **kwargs)

    return open_study_in_storage


def with_entry_policy_kwargs(name: str, entry: Callable[[ExperimentManager], Any]) -> Callable[..., Any]:
    """
    The Zoo's ``ExperimentManager`` method ``name``, with the ``policy_kwargs`` of the run's hyperparameter entry
    (given by ``entry``) known to this package's converters (:data:`~sb3_dueling.zoo.sampler.ENTRY_POLICY_KWARGS`),
    which keep those that no sampler draws.
    """
    method = getattr(ExperimentManager, name)

    def with_entry(self: ExperimentManager, *args: Any, **kwargs: Any) -> Any:
        try:
            policy_kwargs = evaluate_as_zoo(entry(self))
        except Exception:  # eval of a user's string, which the checks before the Zoo have read: any error
            policy_kwargs = None
        token = ENTRY_POLICY_KWARGS.set(policy_kwargs if isinstance(policy_kwargs, dict) else None)
        try:
            return method(self, *args, **kwargs)
        finally:
            ENTRY_POLICY_KWARGS.reset(token)

    return with_entry


def trial_entry(manager: ExperimentManager) -> Any:
    """The ``policy_kwargs`` of an Optuna trial's entry (``objective``), as the Zoo has read them."""
    return manager._hyperparams.get("policy_kwargs")


def study_entry(manager: ExperimentManager) -> Any:
    """The ``policy_kwargs`` of the entry in the YAML file, for ``load_trial``, which the Zoo calls while reading it."""
    config = Path(manager.config)
    if config.suffix not in (".yml", ".yaml") or not config.is_file():
        return None
    try:
        return read_hyperparams_entry(config, manager.env_name.gym_id)[1].get("policy_kwargs")
    except UsageError:
        return None


def with_checkpoints(save_freq: int) -> Callable[[ExperimentManager], None]:
    """The Zoo's ``ExperimentManager.create_callbacks``, adding the checkpoint callback."""
    create_callbacks = ExperimentManager.create_callbacks

    def create_callbacks_with_checkpoints(self: ExperimentManager) -> None:
        create_callbacks(self)
        self.callbacks.append(checkpoint_callback(self.save_path, save_freq))

    return create_callbacks_with_checkpoints


def resumed_experiment(folder: Path) -> Callable[[ExperimentManager], tuple[BaseAlgorithm, dict[str, Any]] | None]:
    """The Zoo's ``ExperimentManager.setup_experiment``, with the model of the newest checkpoint in ``folder``."""
    setup_experiment = ExperimentManager.setup_experiment

    def setup_resumed_experiment(self: ExperimentManager) -> tuple[BaseAlgorithm, dict[str, Any]] | None:
        check_resumable(folder, self.algo)
        result = setup_experiment(self)
        if result is None:
            return None
        fresh, saved_hyperparams = result
        return resume_model(folder, fresh, self.n_timesteps), saved_hyperparams

    return setup_resumed_experiment


def continued_learn() -> Callable[[ExperimentManager, BaseAlgorithm], None]:
    """The Zoo's ``ExperimentManager.learn``, going on to the run's total of env steps from the resumed model's."""
    learn = ExperimentManager.learn

    def learn_on(self: ExperimentManager, model: BaseAlgorithm) -> None:
        self.n_timesteps = max(self.n_timesteps - model.num_timesteps, 0)
        # The Zoo calls model.learn(n) itself: keep the counters instead of resetting them. Patched on
        # the class for this call (an instance attribute would be saved with the model).
        cls = type(model)
        with mock.patch.object(cls, "learn", functools.partialmethod(cls.learn, reset_num_timesteps=False)):
            learn(self, model)

    return learn_on


def saving_show(figures: FigureFiles) -> Callable[..., None]:
    """Matplotlib's ``plt.show``, saving the open figures first (and closing them, as closing their windows does)."""
    show = plt.show

    def save_and_show(*args: Any, **kwargs: Any) -> None:
        figures.save_open_figures()
        if has_display():
            show(*args, **kwargs)
        plt.close("all")

    return save_and_show
