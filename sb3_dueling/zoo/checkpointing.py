"""
Crash-safe checkpoints and resume for the Zoo's ``train`` command:

    python -m sb3_dueling.zoo train --env CartPole-v1 --checkpoint-freq 10000
    python -m sb3_dueling.zoo train --env CartPole-v1 --checkpoint-freq 10000 \
        --resume logs/dueling_dqn/CartPole-v1_1/checkpoints

``--checkpoint-freq`` adds a ``ResumableCheckpointCallback`` writing to ``checkpoints/`` in the run
folder. ``--resume`` continues from the newest complete checkpoint of a folder: step counter,
exploration schedule, target-update phase, optimizer and replay buffer go on where they were, and
training stops at the same total (``-n`` or the YAML's ``n_timesteps``). The Zoo's envs log to
files and so cannot be pickled: the resumed run starts new episodes in a new run folder.
"""

import functools
from pathlib import Path
from typing import Any

from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_dueling.checkpoints import ResumableCheckpointCallback, load_checkpoint

CHECKPOINTS = "checkpoints"


def enable_checkpoints(save_freq: int) -> None:
    """Make the Zoo's runs write crash-safe checkpoints every ``save_freq`` env steps."""
    create_callbacks = ExperimentManager.create_callbacks

    def with_checkpoints(self: ExperimentManager) -> None:
        create_callbacks(self)
        self.callbacks.append(ResumableCheckpointCallback(save_freq, Path(self.save_path) / CHECKPOINTS, verbose=1))

    ExperimentManager.create_callbacks = with_checkpoints  # type: ignore[method-assign]


def enable_resume(folder: Path) -> None:
    """Make the Zoo's ``train`` continue from the newest complete checkpoint in ``folder``."""
    setup_experiment = ExperimentManager.setup_experiment
    learn = ExperimentManager.learn

    def resumed_experiment(self: ExperimentManager) -> tuple[BaseAlgorithm, dict[str, Any]] | None:
        result = setup_experiment(self)
        if result is None:
            return None
        fresh, saved_hyperparams = result
        model = load_checkpoint(folder, env=fresh.get_env())
        print(f"Resuming from {folder} at step {model.num_timesteps} of {self.n_timesteps}")
        return model, saved_hyperparams

    def continued_learn(self: ExperimentManager, model: BaseAlgorithm) -> None:
        self.n_timesteps = max(self.n_timesteps - model.num_timesteps, 0)
        # The Zoo calls model.learn(n) itself: keep the counters instead of resetting them. Patched on
        # the class for this call (an instance attribute would be saved with the model).
        cls = type(model)
        own = cls.__dict__.get("learn")
        cls.learn = functools.partialmethod(cls.learn, reset_num_timesteps=False)  # type: ignore[method-assign,assignment]
        try:
            learn(self, model)
        finally:
            if own is None:
                del cls.learn
            else:
                cls.learn = own  # type: ignore[method-assign]

    ExperimentManager.setup_experiment = resumed_experiment  # type: ignore[method-assign]
    ExperimentManager.learn = continued_learn  # type: ignore[method-assign]
