"""
The paper's Atari agent: Dueling DQN with the Double DQN target on the paper's network
(Nature-DQN convolutions shared, a 512-unit layer per stream, 1/sqrt(2) gradient rescale),
with SB3's AtariWrapper and 4 stacked frames. Runs on the GPU when there is one.

    python examples/atari.py [--env PongNoFrameskip-v4] [--timesteps 10000000] [--seed 0] [--threads 1]

Hyperparameters are the RL Zoo's Atari settings for DQN (replay of 100k transitions, Adam
1e-4, target update every 1000 steps), with the paper's gradient clipping (norm 10). Progress shows
as a bar on a terminal, as a line every minute in a file or pipe.
"""

import argparse

import ale_py
import gymnasium as gym
import torch as th
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecFrameStack

from sb3_dueling import DuelingDQN
from sb3_dueling.progress import progress_callback

gym.register_envs(ale_py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="PongNoFrameskip-v4")
    parser.add_argument("--timesteps", type=int, default=10_000_000)
    parser.add_argument("--learning-starts", type=int, default=100_000)
    parser.add_argument("--buffer-size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tensorboard-log", default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see docs/speed.md)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    env = VecFrameStack(make_atari_env(args.env, n_envs=1, seed=args.seed), n_stack=4)
    model = DuelingDQN(
        "DuelingNatureCnnPolicy",  # the paper's network
        env,
        learning_rate=1e-4,
        buffer_size=args.buffer_size,
        learning_starts=args.learning_starts,
        batch_size=32,
        target_update_interval=1000,
        train_freq=4,
        gradient_steps=1,
        exploration_fraction=0.1,
        exploration_final_eps=0.01,
        max_grad_norm=10,  # the paper clips gradients to norm 10
        tensorboard_log=args.tensorboard_log,
        seed=args.seed,
        verbose=1,
    )
    model.learn(total_timesteps=args.timesteps, callback=progress_callback(interval=60))
    eval_env = VecFrameStack(make_atari_env(args.env, n_envs=1, seed=args.seed + 1000), n_stack=4)
    mean_reward, std_reward = evaluate_policy(model, eval_env, n_eval_episodes=10)
    print(f"{args.env}, {args.timesteps} steps on {model.device}: mean return {mean_reward:.1f} +/- {std_reward:.1f}")


if __name__ == "__main__":
    main()
