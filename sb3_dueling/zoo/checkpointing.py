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

from rl_zoo3.utils import ALGOS
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import load_from_pkl

from sb3_dueling.checkpoints import ResumableCheckpointCallback, find_latest_checkpoint, load_checkpoint
from sb3_dueling.checkpoints.save_load import STATE
from sb3_dueling.user_input import UsageError

CHECKPOINTS = "checkpoints"


def checkpoint_callback(save_path: str, save_freq: int) -> ResumableCheckpointCallback:
    """
    :param save_path: The Zoo's run folder
    :param save_freq: Env steps between checkpoints
    :return: The callback writing crash-safe checkpoints to ``checkpoints/`` in the run folder
    """
    return ResumableCheckpointCallback(save_freq, Path(save_path) / CHECKPOINTS, verbose=1)


def check_resumable(folder: Path, algo: str) -> None:
    """
    Refuse to resume with ``--algo algo`` a checkpoint that another algorithm saved: the run folder of
    ``algo`` would get a model that ``enjoy --algo algo`` cannot load. (Called before the Zoo writes anything.)

    :param folder: A folder of checkpoints
    :param algo: The Zoo's name of the algorithm asked for (a key of its ``ALGOS``)
    """
    checkpoint = find_latest_checkpoint(folder)
    if checkpoint is None or algo not in ALGOS:
        return  # said before the Zoo starts (no checkpoint), or by the Zoo (an unknown algorithm)
    state = load_from_pkl(checkpoint / STATE)
    saved = state.get("algorithm") if isinstance(state, dict) else None  # else load_checkpoint says what is wrong
    names = {f"{cls.__module__}:{cls.__qualname__}": name for name, cls in ALGOS.items()}
    if saved is None or names.get(saved) == algo:
        return
    saver = saved.rpartition(":")[2]
    hint = f": resume it with --algo {names[saved]}" if saved in names else ""
    raise UsageError(
        f"--resume {folder}: its checkpoint {checkpoint.name} was saved by {saver} ({saved}), "
        f"and --algo {algo} trains {ALGOS[algo].__name__}{hint}"
    )


def resume_model(folder: Path, fresh: BaseAlgorithm, n_timesteps: int) -> BaseAlgorithm:
    """
    :param folder: A folder of checkpoints
    :param fresh: The model the Zoo built, whose envs the resumed model takes
    :param n_timesteps: The run's total of env steps, for the message
    :return: The model of the newest complete checkpoint in ``folder``
    """
    model = load_checkpoint(folder, env=fresh.get_env(), restore_random_state=True)
    print(f"Resuming from {folder} at step {model.num_timesteps} of {n_timesteps}")
    return model
