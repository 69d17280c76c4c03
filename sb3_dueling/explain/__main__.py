"""
Run a trained dueling agent greedily and draw what its two streams attend to.

    python -m sb3_dueling.explain --model logs/dueling_dqn/LunarLander-v3_1/LunarLander-v3.zip \
        --env LunarLander-v3 --out explain/

For image observations (Atari): one PNG per step, the frame in grey with the value stream's saliency
in orange and the advantage stream's in blue (the paper's figure 2), step, V and the action written
on it, and an animated GIF per episode. For vector observations: per episode, a plot of V(s), the
advantage gap between the best and second-best action and the chosen action over time, with heat
maps of each stream's saliency per observation feature. Each episode's numbers also go to an .npz.
Runs on one torch thread unless ``--threads`` says otherwise (docs/speed.md).
"""

import argparse
import contextlib
import importlib
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack
from tqdm import tqdm

from sb3_dueling.checkpoints import CheckpointError, check_model_file, load_model_file
from sb3_dueling.explain import Explanation, dueling_network, explain
from sb3_dueling.explain.pictures import feature_names, plot_vector_episode, save_image_episode
from sb3_dueling.model_files import import_named
from sb3_dueling.rainbow import Rainbow
from sb3_dueling.rainbow_policies import RainbowPolicy
from sb3_dueling.user_input import UsageError, did_you_mean, is_atari

BATCH = 256  # observations per batched saliency pass


def load_dueling_model(path: Path) -> BaseAlgorithm:
    """A model with a dueling network, DQN, QR-DQN or Rainbow; a clear error for anything else."""
    try:
        # Which learner saved it, the policy class says (read by name: nothing is unpickled twice); the stock
        # class loads what either dueling learner saved; Rainbow's policy is Rainbow's alone
        saved = check_model_file(path, "DQN, QR-DQN or Rainbow").policy_class
        policy_class = import_named(saved) if saved is not None else None
        learner: type[BaseAlgorithm] = DQN
        if isinstance(policy_class, type) and issubclass(policy_class, QRDQNPolicy):
            learner = QRDQN
        elif isinstance(policy_class, type) and issubclass(policy_class, RainbowPolicy):
            learner = Rainbow
        model = load_model_file(path, learner)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    try:
        dueling_network(model)
    except TypeError as error:
        raise UsageError(f"--model {path}: {error}") from error
    return model


def make_env(env_id: str, model: BaseAlgorithm, seed: int) -> VecEnv:
    """The env the model was trained on: Atari preprocessing and frame stack for image models of Atari ids."""
    if env_id not in gym.envs.registry:
        raise UsageError(
            f"--env {env_id!r}: not a registered env id{did_you_mean(env_id, gym.envs.registry)} "
            "(add the package that registers it with --gym-packages)"
        )
    observation_space = model.observation_space
    assert isinstance(observation_space, spaces.Box)  # checked by load_dueling_model
    if is_image_space(observation_space) and is_atari(env_id):
        env: VecEnv = VecFrameStack(make_atari_env(env_id, n_envs=1, seed=seed), n_stack=observation_space.shape[0])
    else:
        env = make_vec_env(env_id, n_envs=1, seed=seed)
    env = BaseAlgorithm._wrap_env(env)  # channel-first images, as SB3 does when training
    if env.observation_space != observation_space or env.action_space != model.action_space:
        raise UsageError(
            f"--env {env_id!r} does not match the model: the env has observation space {env.observation_space} and "
            f"action space {env.action_space}, the model was trained on {observation_space} and {model.action_space}"
        )
    return env


def run_episode(model: BaseAlgorithm, env: VecEnv, max_steps: int, progress: tqdm) -> np.ndarray:
    """The observations of one greedy episode (the last one is the observation before the final action)."""
    observations = []
    obs = env.reset()
    for _ in range(max_steps):
        assert isinstance(obs, np.ndarray)  # Box observations
        observations.append(obs[0])
        action, _ = model.predict(obs, deterministic=True)
        obs, _, dones, _ = env.step(action)
        progress.update(1)
        if dones[0]:
            break
    return np.stack(observations)


def explain_batched(model: BaseAlgorithm, observations: np.ndarray) -> Explanation:
    parts = [explain(model, observations[start : start + BATCH]) for start in range(0, len(observations), BATCH)]
    return Explanation(*(np.concatenate([getattr(part, name) for part in parts]) for name in Explanation.__dataclass_fields__))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, required=True, help="a saved DuelingDQN or DuelingQRDQN (or DQN, QRDQN with a dueling policy)"
    )
    parser.add_argument("--env", required=True, help="the env id it was trained on")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("explain"), help="a new or empty folder for the pictures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=5000, help="steps per episode at most")
    parser.add_argument("--scale", type=int, default=4, help="upscaling of image frames")
    parser.add_argument("--gym-packages", nargs="+", default=[], help="modules to import that register envs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see docs/speed.md)")
    args = parser.parse_args(argv)
    try:
        if args.episodes < 1 or args.max_steps < 1 or args.scale < 1 or args.threads < 1:
            raise UsageError("--episodes, --max-steps, --scale and --threads must be positive")
        if args.out.exists() and any(args.out.iterdir()):
            raise UsageError(f"--out {args.out}: exists and is not empty (nothing there is overwritten); choose another")
        with contextlib.suppress(ImportError):  # Atari ids, when ale-py is installed
            importlib.import_module("ale_py")
        for package in args.gym_packages:
            try:
                importlib.import_module(package)
            except ImportError as error:
                raise UsageError(f"--gym-packages {package}: {error}") from error
        model = load_dueling_model(args.model)
        env = make_env(args.env, model, args.seed)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    th.set_num_threads(args.threads)  # the command's own process: the library leaves the setting alone
    args.out.mkdir(parents=True, exist_ok=True)
    image = is_image_space(model.observation_space)
    assert isinstance(model.observation_space, spaces.Box)
    unwrapped = env.get_attr("unwrapped")[0]
    meanings = unwrapped.get_action_meanings() if hasattr(unwrapped, "get_action_meanings") else None  # Atari
    with tqdm(desc="steps", unit="step") as progress:
        for episode in range(args.episodes):
            observations = run_episode(model, env, args.max_steps, progress)
            explanation = explain_batched(model, observations)
            stem = args.out / f"episode_{episode}"
            np.savez_compressed(stem.with_suffix(".npz"), **vars(explanation))
            if image:
                frames, gif = save_image_episode(observations, explanation, stem, meanings, args.scale)
                tqdm.write(f"episode {episode}: {len(frames)} frames in {stem}/, animation {gif}")
            else:
                names = feature_names(args.env, model.observation_space.shape[0])
                title = f"{args.env}, episode {episode}: {len(observations)} steps"
                tqdm.write(f"episode {episode}: {plot_vector_episode(explanation, names, title, stem.with_suffix('.png'))}")
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
