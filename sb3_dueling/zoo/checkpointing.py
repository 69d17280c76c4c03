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
(:func:`sb3_dueling.zoo.patches.zoo_patches` hooks these into the Zoo's ``ExperimentManager``.)
"""

from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_dueling.checkpoints import ResumableCheckpointCallback, load_checkpoint

CHECKPOINTS = "checkpoints"


def checkpoint_callback(save_path: str, save_freq: int) -> ResumableCheckpointCallback:
    """
    :param save_path: The Zoo's run folder
    :param save_freq: Env steps between checkpoints
    :return: The callback writing crash-safe checkpoints to ``checkpoints/`` in the run folder
    """
    return ResumableCheckpointCallback(save_freq, Path(save_path) / CHECKPOINTS, verbose=1)


def resume_model(folder: Path, fresh: BaseAlgorithm, n_timesteps: int) -> BaseAlgorithm:
    """
    :param folder: A folder of checkpoints
    :param fresh: The model the Zoo built, whose envs the resumed model takes
    :param n_timesteps: The run's total of env steps, for the message
    :return: The model of the newest complete checkpoint in ``folder``
    """
    model = load_checkpoint(folder, env=fresh.get_env())
    print(f"Resuming from {folder} at step {model.num_timesteps} of {n_timesteps}")
    return model
