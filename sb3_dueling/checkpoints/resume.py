"""Checkpoint a run as it trains (``ResumableCheckpointCallback``) and continue it (``resume_training``)."""

from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_dueling.checkpoints.manifest import read_manifest
from sb3_dueling.checkpoints.save_load import load_checkpoint, save_checkpoint


def resume_training(
    folder: Path | str,
    total_timesteps: int,
    save_freq: int,
    keep: int = 3,
    env: VecEnv | None = None,
    callback: BaseCallback | list[BaseCallback] | None = None,
    **learn_kwargs: Any,
) -> BaseAlgorithm:
    """
    Continue the run checkpointed in ``folder`` until ``total_timesteps`` in all (the same total as the
    first call, so that the schedules stay the same), checkpointing on into the same folder.

    :param folder: the checkpoint folder
    :param total_timesteps: the run's total number of env steps
    :param save_freq: env steps between checkpoints from here on
    :param keep: how many checkpoints to keep
    :param env: the envs, if the checkpoint can bring back none
    :param callback: more callbacks
    :return: the trained model
    """
    model = load_checkpoint(folder, env=env, restore_random_state=True)
    callbacks = callback if isinstance(callback, list) else [] if callback is None else [callback]
    checkpoints = ResumableCheckpointCallback(save_freq, folder, keep=keep)
    remaining = max(total_timesteps - model.num_timesteps, 0)
    return model.learn(remaining, callback=[checkpoints, *callbacks], reset_num_timesteps=False, **learn_kwargs)


class ResumableCheckpointCallback(BaseCallback):
    """
    Save a complete, crash-safe checkpoint (see ``save_checkpoint``) every ``save_freq`` env steps and
    at the end of training, keeping the newest ``keep``.

    Checkpoints are taken between rollouts, after the training step that ends one rollout and before
    the next begins, so that a resumed run repeats exactly what the uninterrupted one does next.

    :param save_freq: env steps between checkpoints (counted over all envs, like ``num_timesteps``)
    :param save_path: the checkpoint folder
    :param keep: how many checkpoints to keep
    :param save_replay_buffer: save the replay buffer too (needed to resume exactly)
    :param verbose: 1 to print each checkpoint's path
    """

    def __init__(
        self, save_freq: int, save_path: Path | str, keep: int = 3, save_replay_buffer: bool = True, verbose: int = 0
    ) -> None:
        super().__init__(verbose)
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
            raise ValueError(f"save_freq must be a positive integer (env steps), got {save_freq!r}")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive integer, got {keep!r}")
        self.save_freq = save_freq
        self.save_path = Path(save_path)
        self.keep = keep
        self.save_replay_buffer = save_replay_buffer
        self.next_save = save_freq

    def _init_callback(self) -> None:
        read_manifest(self.save_path)  # fail now, not after the first save_freq steps, on a foreign manifest

    def _on_training_start(self) -> None:
        # Only now does the callback know the step a resumed run starts from: no save of the step it resumed from
        self.next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _save(self) -> None:
        path = save_checkpoint(self.model, self.save_path, self.keep, self.save_replay_buffer)
        if self.verbose >= 1:
            print(f"Saved checkpoint {path}")

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.next_save:
            self._save()
            self.next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._save()
