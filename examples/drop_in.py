"""
Dueling DQN in existing SB3 code: import sb3_dueling and name a dueling policy.

    python examples/drop_in.py [--timesteps 50000] [--threads 1]

Stock ``stable_baselines3.DQN`` trains the dueling network with DQN's usual max target;
``sb3_dueling.DuelingDQN`` adds the Double DQN target the paper trained with.
"""

import argparse
import tempfile
from pathlib import Path

import torch as th
from cartpole import HYPERPARAMS  # examples/cartpole.py: the RL Zoo's tuned CartPole-v1 settings
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import sb3_dueling  # noqa: F401  registers DuelingMlpPolicy, DuelingCnnPolicy, ... in DQN.policy_aliases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see docs/speed.md)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    # was "MlpPolicy": the same trunk, now with a value and an advantage head
    model = DQN("DuelingMlpPolicy", "CartPole-v1", seed=0, **HYPERPARAMS)
    model.learn(total_timesteps=args.timesteps)
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "dqn_dueling")
        loaded = DQN.load(Path(folder) / "dqn_dueling")
    mean_reward, std_reward = evaluate_policy(loaded, make_vec_env("CartPole-v1", n_envs=1, seed=1000), n_eval_episodes=20)
    print(f"stock DQN with DuelingMlpPolicy: mean return {mean_reward:.1f} +/- {std_reward:.1f}")


if __name__ == "__main__":
    main()
