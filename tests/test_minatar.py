"""The MinAtar suite: its envs, the protocol's learners on them, and its command line (on the grid's machinery)."""

import json
from contextlib import nullcontext
from typing import Any

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

import benchmarks.grid as grid
import benchmarks.minatar as minatar
from benchmarks.minatar import BUDGET, EPSILON_DECAY_STEPS, GAMES, LEARNERS, MinAtarRun, make_minatar_env
from sb3_dueling import DuelingDQN, PrioritizedReplayBuffer
from sb3_dueling.torch_layers import MinAtarConvExtractor

#: The channels of each game (one per kind of object)
CHANNELS = {"Breakout": 4, "Asterix": 4, "SpaceInvaders": 6}
RIGHT = 3  # in MinAtar's full action set: no-op, left, up, right, down, fire


def rollout(game: str, seed: int, steps: int = 200) -> list[tuple[np.ndarray, float]]:
    """The observations and rewards of a seeded env under a fixed sequence of random actions."""
    env, actions = make_minatar_env(game), np.random.default_rng(0).integers(6, size=steps)
    observation, _ = env.reset(seed=seed)
    trajectory = [(observation, 0.0)]
    for action in actions:
        observation, reward, terminated, _, _ = env.step(action)
        trajectory.append((observation, float(reward)))
        if terminated:
            observation, _ = env.reset()
    return trajectory


@pytest.mark.parametrize("game", list(GAMES))
def test_observations_are_channel_first_binary_bytes(game):
    env = make_minatar_env(game)
    assert env.observation_space == spaces.Box(0, 1, (CHANNELS[game], 10, 10), np.uint8)
    assert env.action_space == spaces.Discrete(6)
    observations = [observation for observation, _ in rollout(game, seed=1, steps=50)]
    assert all(env.observation_space.contains(observation) for observation in observations)
    assert max(observation.max() for observation in observations) == 1


@pytest.mark.parametrize("game", list(GAMES))
def test_a_seed_gives_the_same_episodes(game):
    first, again, other = rollout(game, seed=3), rollout(game, seed=3), rollout(game, seed=4)
    assert all(np.array_equal(a, b) and r == s for (a, r), (b, s) in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, other, strict=True))


def paddle_after_moving_right(sticky_action_prob: float) -> int:
    """Breakout's paddle column after one step right from the start (the previous action there is a no-op)."""
    env = make_minatar_env("Breakout", sticky_action_prob)
    start, _ = env.reset(seed=0)
    observation, *_ = env.step(RIGHT)
    return int(observation[0, 9].argmax()) - int(start[0, 9].argmax())


def test_sticky_actions():
    assert make_minatar_env("Breakout").unwrapped.game.sticky_action_prob == 0.1  # MinAtar's default
    assert paddle_after_moving_right(0.0) == 1
    assert paddle_after_moving_right(1.0) == 0  # the previous action (no-op) repeated


def test_protocol():
    dqn, rainbow = (MinAtarRun(algo, "Breakout", 0).hyperparameters() for algo in ("DQN", "Rainbow"))
    for hyperparams in (dqn, rainbow):
        assert hyperparams.items() >= {"batch_size": 32, "buffer_size": 100_000, "train_freq": 4}.items()
        assert hyperparams["target_update_interval"] == 1000 and hyperparams["policy_kwargs"]["net_arch"] == []
    assert dqn["learning_rate"] == 2.5e-4 and rainbow["learning_rate"] == 1e-4
    assert rainbow.items() >= {"n_steps": 3, "noisy": True, "dueling": True, "prioritized": True}.items()
    assert rainbow["policy_kwargs"].items() >= {"n_atoms": 51, "v_min": -100.0, "v_max": 100.0}.items()
    model = LEARNERS["DQN"].cls("CnnPolicy", make_minatar_env("Breakout"), **dqn, device="cpu")
    # epsilon reaches 0.01 after 250k of the 1M steps (SB3's schedule takes the progress remaining, 1 -> 0)
    assert model.exploration_schedule(1 - EPSILON_DECAY_STEPS / BUDGET) == pytest.approx(0.01)
    assert model.exploration_schedule(1 - EPSILON_DECAY_STEPS / BUDGET / 2) == pytest.approx(0.505)


def test_dueling_dqn_is_dqn_with_the_dueling_network_and_the_double_target():
    dqn, dueling = (MinAtarRun(algo, "Breakout", 0).hyperparameters() for algo in ("DQN", "DuelingDQN"))
    assert dueling == dqn  # the same settings: only the learner differs
    model = MinAtarRun("DuelingDQN", "Breakout", 0).make_model()
    assert type(model) is DuelingDQN and model.double_q
    # the two streams come straight after the convolution, as DQN's output layer does
    assert (model.q_net.value_net[0].in_features, model.q_net.value_net[0].out_features) == (1600, 1)
    assert (model.q_net.advantage_net[0].in_features, model.q_net.advantage_net[0].out_features) == (1600, 6)
    assert len(model.q_net.shared_net) == 0


@pytest.fixture
def quick_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The protocol with learning from step 100, so that a few hundred steps train."""
    monkeypatch.setitem(minatar.COMMON, "learning_starts", 100)


@pytest.mark.parametrize("algo", list(LEARNERS))
def test_the_learners_train_on_a_game(algo, quick_start):
    model = MinAtarRun(algo, "SpaceInvaders", 0).make_model()
    assert isinstance(model.q_net.features_extractor, MinAtarConvExtractor)
    assert model.q_net.features_extractor.features_dim == 16 * 10 * 10
    assert isinstance(model.replay_buffer, PrioritizedReplayBuffer) == (algo == "Rainbow")
    before = [parameter.detach().clone() for parameter in model.q_net.parameters()]
    model.learn(300)
    assert model.num_timesteps == 300 and model._n_updates == (300 - 100) // 4
    assert all(not th.equal(old, new) for old, new in zip(before, model.q_net.parameters(), strict=True))


def run_here(work: Any, items: list[grid.Run], on_result: Any, **_: Any) -> list[grid.Run]:
    """The grid's :func:`~benchmarks.cluster.run_all` without Ray: each run trains in this process."""
    for run in items:
        on_result(run, work(run))
    return []


def test_the_command_line_writes_a_result_and_skips_it_when_finished(quick_start, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(grid, "ray_session", lambda address, workers: nullcontext())
    monkeypatch.setattr(grid, "run_all", run_here)
    command = ["--algos", "Rainbow", "--games", "Breakout", "--seeds", "1", "--steps", "300", "--eval-freq", "300"]
    command += ["--eval-episodes", "1", "--results", str(tmp_path)]
    minatar.main(command)
    result_file = MinAtarRun("Rainbow", "Breakout", 0).path(tmp_path)
    result = json.loads(result_file.read_text())
    assert result.items() >= {"algo": "Rainbow", "env": "Breakout", "seed": 0, "budget": 300, "eval_freq": 300}.items()
    assert result["timesteps"] == [300] and result["hyperparams"]["n_steps"] == "3" and result["steps_per_second"] > 0
    written = result_file.stat().st_mtime_ns
    minatar.main(command)
    assert "1 runs in the grid, 1 finished, 0 to run" in capsys.readouterr().out
    assert result_file.stat().st_mtime_ns == written
    with pytest.raises(SystemExit) as exit_status:
        minatar.main(["--games", "Pong"])
    assert exit_status.value.code == 2 and "invalid choice: 'Pong'" in capsys.readouterr().err
