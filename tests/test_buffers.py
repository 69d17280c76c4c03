"""Prioritized replay: samples against SB3's buffers, the sampling distribution, weights, updates, save/load."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from scipy import stats
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import SimpleMultiObsEnv

from sb3_dueling import DuelingDQN, PrioritizedDictReplayBuffer, PrioritizedReplayBuffer
from sb3_dueling.heads import ScalarHead
from tests.conftest import SMALL_SETTINGS as SMALL

OBS_SPACE = spaces.Box(-10, 10, (3,), np.float32)
ACTION_SPACE = spaces.Discrete(2)


def fill(buffers, steps: int, n_envs: int = 1, seed: int = 0) -> None:
    """Add the same random transitions, with terminations and timeouts, to every buffer."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        obs, next_obs = rng.normal(size=(2, n_envs, 3)).astype(np.float32)
        action = rng.integers(0, 2, size=(n_envs, 1))
        reward = rng.normal(size=n_envs).astype(np.float32)
        done = rng.random(n_envs) < 0.15
        infos = [{"TimeLimit.truncated": bool(d and rng.random() < 0.5)} for d in done]
        for buffer in buffers:
            buffer.add(obs, next_obs, action, reward, done, infos)


@pytest.mark.parametrize("n_steps", [1, 3])
@pytest.mark.parametrize("steps", [7, 10, 23])  # not full, just full, wrapped around
def test_transitions_match_sb3_buffers(n_steps, steps):
    reference = (
        ReplayBuffer(10, OBS_SPACE, ACTION_SPACE, device="cpu")
        if n_steps == 1
        else NStepReplayBuffer(10, OBS_SPACE, ACTION_SPACE, device="cpu", n_steps=n_steps, gamma=0.9)
    )
    buffer = PrioritizedReplayBuffer(10, OBS_SPACE, ACTION_SPACE, device="cpu", n_steps=n_steps, gamma=0.9)
    fill([reference, buffer], steps)
    positions = np.arange(10 if steps >= 10 else steps)
    expected = reference._get_samples(positions)
    got = buffer._get_transitions(positions, np.zeros_like(positions), None)
    for name, value in zip(expected._fields, got, strict=True):
        if name == "discounts" and n_steps == 1:
            assert expected.discounts is None and value is None
        else:
            th.testing.assert_close(value, getattr(expected, name), msg=name)


def test_transitions_match_sb3_with_optimize_memory_usage():
    kwargs = dict(device="cpu", optimize_memory_usage=True, handle_timeout_termination=False)
    reference = ReplayBuffer(10, OBS_SPACE, ACTION_SPACE, **kwargs)
    buffer = PrioritizedReplayBuffer(10, OBS_SPACE, ACTION_SPACE, **kwargs)
    fill([reference, buffer], 14)
    # The transition at the write position has lost its observation: never sampled
    assert buffer.tree[buffer.pos] == 0 and all(buffer.tree[np.delete(np.arange(10), buffer.pos)] > 0)
    positions = np.delete(np.arange(10), buffer.pos)
    expected = reference._get_samples(positions)
    got = buffer._get_transitions(positions, np.zeros_like(positions), None)
    for name, value in zip(expected._fields[:5], got[:5], strict=True):
        th.testing.assert_close(value, getattr(expected, name), msg=name)
    assert buffer.pos not in {int(i) for i in buffer.sample(256).indices}


def test_new_transitions_get_the_largest_priority_and_sampling_follows_priorities():
    buffer = PrioritizedReplayBuffer(8, OBS_SPACE, ACTION_SPACE, device="cpu", alpha=0.6)
    fill([buffer], 6)
    np.testing.assert_allclose(buffer.tree[np.arange(8)], [1, 1, 1, 1, 1, 1, 0, 0])
    errors = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 8.0])
    buffer.update_priorities(np.arange(6), errors)
    priorities = (errors + buffer.epsilon) ** 0.6
    assert buffer.max_priority == pytest.approx(priorities.max())
    fill([buffer], 1)
    assert buffer.tree[6] == pytest.approx(priorities.max())

    np.random.seed(0)
    counts = np.bincount(np.concatenate([buffer.sample(64).indices for _ in range(500)]), minlength=8)
    expected = np.append(priorities, priorities.max())
    expected = expected / expected.sum() * counts.sum()
    assert counts[7] == 0
    assert stats.chisquare(counts[:7], expected).pvalue > 1e-3
    # The same counts clearly reject uniform sampling: the test can tell the two apart
    assert stats.chisquare(counts[1:7], np.full(6, counts[1:7].sum() / 6)).pvalue < 1e-6


@pytest.mark.parametrize("n_envs", [1, 3])
def test_importance_weights(n_envs):
    buffer = PrioritizedReplayBuffer(20, OBS_SPACE, ACTION_SPACE, device="cpu", n_envs=n_envs, beta=0.4)
    fill([buffer], 5, n_envs=n_envs)
    stored = 5 * n_envs
    buffer.update_priorities(np.arange(stored), np.arange(stored) + 1.0)
    samples = buffer.sample(32)
    probabilities = buffer.tree[samples.indices] / buffer.tree.total
    weights = (stored * probabilities) ** -0.4
    np.testing.assert_allclose(samples.weights.numpy().ravel(), weights / weights.max(), rtol=1e-6)
    assert samples.weights.shape == (32, 1) and samples.weights.max() == 1
    # Each (step, env) pair is one transition: the sample comes from that env's column
    positions, envs = np.divmod(samples.indices, n_envs)
    np.testing.assert_array_equal(samples.observations.numpy(), buffer.observations[positions, envs])


def test_beta_is_annealed_to_final_beta_with_training_progress():
    buffer = PrioritizedReplayBuffer(8, OBS_SPACE, ACTION_SPACE, beta=0.4, final_beta=1.0)
    for remaining, beta in [(1.0, 0.4), (0.5, 0.7), (0.0, 1.0), (-0.01, 1.0)]:
        buffer.anneal_beta(remaining)
        assert buffer.beta == pytest.approx(beta)


def test_train_weights_the_loss_and_writes_priorities_back():
    model = DuelingDQN("MlpPolicy", "CartPole-v1", replay_buffer_class=PrioritizedReplayBuffer, seed=0, **SMALL)
    model.learn(200)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer) and buffer.beta > 0.4

    np.random.seed(1)
    state = np.random.get_state()
    samples = buffer.sample(16)
    with th.no_grad():
        current = model.q_net(samples.observations).gather(1, samples.actions.long())
        next_actions = model.q_net(samples.next_observations).argmax(dim=1, keepdim=True)
        next_q = model.q_net_target(samples.next_observations).gather(1, next_actions)
        target = samples.rewards + (1 - samples.dones) * model.gamma * next_q
    np.random.set_state(state)  # train() draws the same batch
    model.train(gradient_steps=1, batch_size=16)
    expected = (np.abs((current - target).numpy().ravel()) + buffer.epsilon) ** buffer.alpha
    np.testing.assert_allclose(buffer.tree[samples.indices], expected, rtol=1e-4)

    assert not buffer.priorities_due


def test_the_scalar_heads_huber_loss_weights_the_samples_and_returns_the_td_errors():
    huber_loss = ScalarHead().loss
    generator = th.Generator().manual_seed(0)
    current, target, weights = th.randn(8, 1, generator=generator) * 2, th.randn(8, 1, generator=generator), th.rand(8, 1)
    per_sample = th.nn.functional.smooth_l1_loss(current, target, reduction="none")
    loss, td_errors = huber_loss(current, target, weights)
    th.testing.assert_close(loss, (weights * per_sample).mean())
    th.testing.assert_close(td_errors, current - target)
    # Uniform replay: DQN's loss
    loss, td_errors = huber_loss(current, target)
    th.testing.assert_close(loss, th.nn.functional.smooth_l1_loss(current, target))
    th.testing.assert_close(td_errors, current - target)


@pytest.mark.parametrize("kwargs", [dict(n_envs=4), dict(n_steps=3), dict(optimize_memory_usage=True)])
def test_learns_with_sb3_features(kwargs):
    n_envs = kwargs.pop("n_envs", 1)
    extra = dict(replay_buffer_kwargs=dict(handle_timeout_termination=False)) if "optimize_memory_usage" in kwargs else {}
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=0)
    model = DuelingDQN("MlpPolicy", env, replay_buffer_class=PrioritizedReplayBuffer, seed=0, **SMALL, **kwargs, **extra)
    model.learn(300)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    assert buffer.n_steps == kwargs.get("n_steps", 1) and buffer.n_envs == n_envs
    stored = buffer.tree[np.arange(buffer.pos * n_envs)]
    assert len(np.unique(stored)) > 10  # priorities were written back by train()


def test_dict_observations():
    model = DuelingDQN(
        "MultiInputPolicy", SimpleMultiObsEnv(), replay_buffer_class=PrioritizedDictReplayBuffer, seed=0, **SMALL
    )
    model.learn(200)
    samples = model.replay_buffer.sample(8)
    assert set(samples.observations) == {"img", "vec"} and samples.weights.shape == (8, 1)


def test_replay_buffer_save_load_keeps_priorities(tmp_path):
    model = DuelingDQN("MlpPolicy", "CartPole-v1", replay_buffer_class=PrioritizedReplayBuffer, seed=0, **SMALL)
    model.learn(200)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    fresh = DuelingDQN("MlpPolicy", "CartPole-v1", replay_buffer_class=PrioritizedReplayBuffer, seed=1, **SMALL)
    fresh.load_replay_buffer(tmp_path / "buffer.pkl")
    for fresh_level, level in zip(fresh.replay_buffer.tree.levels, model.replay_buffer.tree.levels, strict=True):
        np.testing.assert_array_equal(fresh_level, level)
    assert fresh.replay_buffer.max_priority == model.replay_buffer.max_priority
    fresh.learn(100, reset_num_timesteps=False)
    assert fresh._n_updates > 0

    dqn = DQN("MlpPolicy", "CartPole-v1", **SMALL)
    dqn.load_replay_buffer(tmp_path / "buffer.pkl")
    with pytest.raises(TypeError, match=r"use sb3_dueling\.DuelingDQN"):
        dqn.learn(100)
    assert dqn._n_updates == 1


@pytest.mark.parametrize("algorithm", [DQN, QRDQN])
def test_stock_learners_are_refused_after_their_first_gradient_step(algorithm):
    model = algorithm("MlpPolicy", "CartPole-v1", replay_buffer_class=PrioritizedReplayBuffer, **SMALL)
    message = r"priorities of the last sample were updated.*use sb3_dueling\.DuelingDQN or sb3_dueling\.DuelingQRDQN"
    with pytest.raises(TypeError, match=message):
        model.learn(100)
    # Its one gradient step came after env step 52 (learning_starts 50, train_freq 4); step 53 is not stored
    assert model._n_updates == 1 and model.num_timesteps == 53


def test_sampling_by_hand_needs_no_step_but_new_data_needs_the_priorities():
    buffer = PrioritizedReplayBuffer(8, OBS_SPACE, ACTION_SPACE, device="cpu")
    fill([buffer], 5)
    samples = [buffer.sample(4) for _ in range(3)]
    with pytest.raises(TypeError, match="update_priorities"):
        fill([buffer], 1)
    assert buffer.pos == 5  # nothing was added
    buffer.update_priorities(samples[-1].indices, np.ones(4))
    fill([buffer], 1)
    assert buffer.pos == 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=-0.1), "alpha"),
        (dict(alpha="0.6"), "alpha"),
        (dict(beta=1.5), "beta"),
        (dict(final_beta=-1), "final_beta"),
        (dict(epsilon=0), "epsilon"),
        (dict(n_steps=0), "n_steps"),
        (dict(n_steps=2.0), "n_steps"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PrioritizedReplayBuffer(8, OBS_SPACE, ACTION_SPACE, **kwargs)


def test_n_steps_with_optimize_memory_usage_raises_as_sb3():
    kwargs = dict(n_steps=3, optimize_memory_usage=True, handle_timeout_termination=False)
    with pytest.raises(NotImplementedError, match="NStepReplayBuffer doesn't support optimize_memory_usage"):
        NStepReplayBuffer(8, OBS_SPACE, ACTION_SPACE, **kwargs)
    with pytest.raises(NotImplementedError, match="PrioritizedReplayBuffer doesn't support optimize_memory_usage"):
        PrioritizedReplayBuffer(8, OBS_SPACE, ACTION_SPACE, **kwargs)


def test_non_finite_td_errors_are_refused_with_their_cause():
    buffer = PrioritizedReplayBuffer(8, OBS_SPACE, ACTION_SPACE, device="cpu")
    fill([buffer], 5)
    samples = buffer.sample(4)
    td_errors = np.array([0.5, np.nan, 1.0, np.inf])
    with pytest.raises(ValueError, match=r"2 of the 4 sampled transitions \(at \[\d+, \d+\]: \[nan, inf\]\)") as error:
        buffer.update_priorities(samples.indices, td_errors)
    assert "check_finite=True" in str(error.value)
    assert buffer.tree.total == pytest.approx(5.0)  # the priorities are the ones before, every one finite


def test_a_diverging_learner_without_check_finite_names_the_cause():
    """Not an IndexError deep in the sum tree: the NaN TD errors and the option that stops at the first NaN."""
    model = DuelingDQN(
        "MlpPolicy", "CartPole-v1", learning_rate=1e38, check_finite=False, seed=0,
        replay_buffer_class=PrioritizedReplayBuffer, **SMALL,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"non-finite TD errors .*check_finite=True"):
        model.learn(300)
    assert np.isfinite(model.replay_buffer.tree.total)
