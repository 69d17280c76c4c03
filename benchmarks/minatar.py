"""
MinAtar (Young & Tian 2019): DQN, DuelingDQN and Rainbow on small pixel games, with the protocol of "Revisiting Rainbow"
(Obando-Ceron & Castro 2021), on the benchmark grid's machinery (Ray, locks, resume, one JSON file per run).

    python -m benchmarks.minatar --algos DQN Rainbow --games Breakout --seeds 5 --steps 1000000 \\
        --results benchmarks/results/minatar

Every flag of ``python -m benchmarks.grid`` works (``--workers``, ``--address``, ``--eval-freq`` ...); ``--games``
names the games (``--envs`` too). A finished run is skipped, a killed one redone. Needs the ``minatar`` extra
(``pip install -e ".[minatar,cluster]"``).

The protocol (:data:`COMMON`, :data:`LEARNERS`), from the paper and its Dopamine configurations: one convolution
(16 filters, 3x3, stride 1) and then the output layer; Adam with eps 3.125e-4; batch 32; replay of 100k
transitions; learning from step 1,000; a gradient step every 4 env steps; the target network every 1,000 steps;
gamma 0.99. DQN: learning rate 2.5e-4, the max target, epsilon from 1 to 0.01 over 250k steps. Rainbow: learning
rate 1e-4, 3-step returns, C51 with 51 atoms on [-100, 100], noisy nets, the dueling network, the Double target,
prioritized replay. DuelingDQN: DQN's settings with the dueling network (a value and an advantage layer after the
convolution) and its default Double target (the paper's "DQN + dueling" has DQN's max target). The paper ran 10M
frames (a step is a frame: MinAtar skips none); this suite's budget is 1M.
Differences left: SB3 clips gradients to norm 10 (Dopamine does not), starts the epsilon decay at step 0 (Dopamine
after the 1,000 warm-up steps) and initialises the layers as PyTorch does (Dopamine: Xavier uniform), and the
evaluations are greedy episodes on a separate env (the paper reports the training episodes' returns).
"""

import sys
from pathlib import Path

if not __package__:  # run by path: import the benchmarks as from the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import gymnasium as gym
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

from benchmarks import grid
from benchmarks.grid import RESULTS, Run
from sb3_dueling import DuelingDQN, Rainbow
from sb3_dueling.minatar_envs import ChannelFirst
from sb3_dueling.torch_layers import MinAtarConvExtractor

#: The games, by the name the results use, and MinAtar's own name
GAMES = {"Breakout": "breakout", "Asterix": "asterix", "SpaceInvaders": "space_invaders"}
#: Env steps per run
BUDGET = 1_000_000
#: MinAtar's default: with this probability the previous action is repeated instead of the chosen one
STICKY_ACTION_PROB = 0.1
#: Revisiting Rainbow's epsilon schedule for DQN: 1 -> 0.01 over the first 250k steps
EPSILON_DECAY_STEPS = 250_000


def make_minatar_env(game: str, sticky_action_prob: float = STICKY_ACTION_PROB) -> gym.Env:
    """
    A MinAtar game as a gymnasium env with channel-first ``uint8`` observations.

    :param game: A name of :data:`GAMES` (``"Breakout"``)
    :param sticky_action_prob: The probability that the previous action is repeated
    :return: The env; ``reset(seed=...)`` seeds the game and its sticky actions
    """
    from minatar.gym import BaseEnv  # an optional extra; imports matplotlib

    # All six actions, as Revisiting Rainbow's environment gives them (MinAtar's ``-v0`` ids)
    return ChannelFirst(BaseEnv(GAMES[game], use_minimal_action_set=False, sticky_action_prob=sticky_action_prob))


#: What the learners share (Obando-Ceron & Castro 2021, its Dopamine configurations for MinAtar)
COMMON: dict[str, Any] = dict(
    batch_size=32,
    buffer_size=100_000,
    learning_starts=1000,
    train_freq=4,
    gradient_steps=1,
    target_update_interval=1000,
    gamma=0.99,
)
#: The network: the convolution, then the output layer (no hidden layer); Adam (SB3's default) with Dopamine's eps
POLICY_KWARGS: dict[str, Any] = dict(
    features_extractor_class=MinAtarConvExtractor,
    net_arch=[],
    normalize_images=False,
    optimizer_kwargs=dict(eps=3.125e-4),
)


@dataclass(frozen=True)
class Learner:
    """
    An algorithm of the protocol.

    :param cls: The algorithm
    :param kwargs: Its own settings, on top of :data:`COMMON`
    :param policy_kwargs: Its own policy options, on top of :data:`POLICY_KWARGS`
    """

    cls: type[BaseAlgorithm]
    kwargs: dict[str, Any]
    policy_kwargs: dict[str, Any]


#: DQN's own settings: its learning rate and epsilon schedule
DQN_SETTINGS: dict[str, Any] = dict(
    learning_rate=2.5e-4,
    exploration_initial_eps=1.0,
    exploration_final_eps=0.01,
    exploration_fraction=EPSILON_DECAY_STEPS / BUDGET,
)

LEARNERS = {
    "DQN": Learner(DQN, DQN_SETTINGS, {}),
    # DQN with the dueling network and the Double target: what the dueling network is worth outside Rainbow
    "DuelingDQN": Learner(DuelingDQN, DQN_SETTINGS, {}),
    # All six parts, as Rainbow's defaults have them, but for these settings. Noisy nets explore: no epsilon
    "Rainbow": Learner(
        Rainbow,
        dict(
            learning_rate=1e-4,
            n_steps=3,
            distribution="categorical",
            dueling=True,
            double_q=True,
            noisy=True,
            prioritized=True,
            # Dopamine's prioritized replay: priorities to the power 0.5, importance weights to the power 0.5 throughout
            replay_buffer_kwargs=dict(alpha=0.5, beta=0.5, final_beta=0.5),
        ),
        dict(n_atoms=51, v_min=-100.0, v_max=100.0),
    ),
}


@dataclass(frozen=True)
class MinAtarRun(Run):
    """A run of the MinAtar suite: the protocol's algorithms on MinAtar's games, each with the budget :data:`BUDGET`."""

    algos: ClassVar[tuple[str, ...]] = tuple(LEARNERS)
    budgets: ClassVar[dict[str, int]] = dict.fromkeys(GAMES, BUDGET)
    env_flags: ClassVar[tuple[str, ...]] = ("--games", "--envs")
    results: ClassVar[Path] = RESULTS / "minatar"
    # Episodes of a trained agent are long: an evaluation every 50k steps, 20 in a run
    eval_freq: ClassVar[int] = 50_000

    def hyperparameters(self) -> dict[str, Any]:
        learner = LEARNERS[self.algo]
        return {**COMMON, **learner.kwargs, "policy_kwargs": {**POLICY_KWARGS, **learner.policy_kwargs}}

    def env_maker(self) -> Callable[[], gym.Env]:
        return partial(make_minatar_env, self.env)

    def make_model(self) -> BaseAlgorithm:
        env = make_vec_env(self.env_maker(), n_envs=1)  # seeded by the model, as an env given by id is
        return LEARNERS[self.algo].cls("CnnPolicy", env, seed=self.seed, **self.hyperparameters())


def main(argv: list[str] | None = None) -> None:
    """The suite's command line: the grid's, on :class:`MinAtarRun` runs."""
    grid.main(argv, kind=MinAtarRun, description=__doc__)


if __name__ == "__main__":
    main()
