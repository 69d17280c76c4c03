"""
The experiment of the notebook in ``shared/seed/``, rebuilt with sb3_dueling.

Same network sizes, optimizer, loss, exploration and update schedule, as SB3 arguments; two
bugs of the notebook are fixed by the package, not here:
- the advantage mean is taken over the actions of each state (the notebook took it over the
  whole batch, so the Q-values of a state depended on the other states in the batch);
- the value and advantage heads end in a linear layer (the notebook put a LeakyReLU on them,
  which bends negative Q-values).
Its evaluation also kept exploring (epsilon-greedy); here evaluation is greedy.

    python examples/notebook_cartpole.py [--timesteps 40000] [--seed 0] [--threads 1]
"""

import argparse
import math

import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from torch import nn

from sb3_dueling import DuelingDQN
from sb3_dueling.progress import progress_callback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see docs/speed.md)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    hidden = 512  # HIDDEN_SIZE
    model = DuelingDQN(
        "MlpPolicy",
        "CartPole-v0",  # the notebook's env: episodes end after 200 steps
        learning_rate=5e-4,  # LEARNING_RATE
        buffer_size=500_000,  # REPLAY_MEMORY_SIZE
        learning_starts=512,  # updates start once the memory holds one batch
        batch_size=512,  # BATCH_SIZE
        gamma=0.99,  # GAMMA
        train_freq=1,  # one update per env step
        gradient_steps=1,
        target_update_interval=1500,  # UPDATE_FREQUENCY, in env steps
        exploration_initial_eps=0.9,  # EPSILON_START
        exploration_final_eps=0.01,  # EPSILON_END
        exploration_fraction=min(1.0, 10_000 / args.timesteps),  # EPSILON_ANNEAL_OVER_STEPS = 10000
        max_grad_norm=math.inf,  # the notebook does not clip gradients
        double_q=False,  # the notebook uses the max target of DQN
        policy_kwargs=dict(
            net_arch=dict(shared=[hidden, hidden], value=[hidden], advantage=[hidden]),
            activation_fn=nn.LeakyReLU,
            optimizer_class=th.optim.AdamW,
        ),
        seed=args.seed,
    )
    model.learn(total_timesteps=args.timesteps, callback=progress_callback(interval=10))
    mean_reward, std_reward = evaluate_policy(model, make_vec_env("CartPole-v0", n_envs=1, seed=1000), n_eval_episodes=20)
    print(f"notebook experiment, {args.timesteps} steps: mean return {mean_reward:.1f} +/- {std_reward:.1f} (max 200)")


if __name__ == "__main__":
    main()
