"""DuelingDQN: the target, the diagnostics, and SB3's features with the dueling policy."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer, ReplayBufferSamples
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from sb3_dueling import DuelingDQN
from tests.cases import fixed_batch
from tests.conftest import SMALL_SETTINGS as SMALL

GAMMA = 0.9
N_ACTIONS = 3


def numpy_q(weights: dict[str, np.ndarray], obs: np.ndarray) -> np.ndarray:
    """Q = V + A - mean(A), by hand, for a network with no hidden layer."""
    value = obs @ weights["value_net.0.weight"].T + weights["value_net.0.bias"]
    advantage = obs @ weights["advantage_net.0.weight"].T + weights["advantage_net.0.bias"]
    return value + advantage - advantage.mean(axis=1, keepdims=True)


@pytest.fixture
def fixed_batch_model(monkeypatch):
    """A model with no hidden layer, different online and target weights, and a fixed batch."""
    model = DuelingDQN("MlpPolicy", "CartPole-v1", gamma=GAMMA, policy_kwargs=dict(net_arch=[]), seed=1, learning_starts=0)
    model.set_logger(configure(None, []))
    generator = th.Generator().manual_seed(3)
    with th.no_grad():
        for p in model.q_net_target.parameters():
            p.copy_(th.randn(p.shape, generator=generator))
    batch = fixed_batch(generator)
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: batch)
    return model, batch


def expected_loss(model: DuelingDQN, batch: ReplayBufferSamples, double_q: bool) -> float:
    online = {k: v.numpy() for k, v in model.q_net.state_dict().items()}
    target = {k: v.numpy() for k, v in model.q_net_target.state_dict().items()}
    obs, next_obs = batch.observations.numpy(), batch.next_observations.numpy()
    rows = np.arange(len(obs))
    next_q_target = numpy_q(target, next_obs)
    if double_q:
        next_actions = numpy_q(online, next_obs).argmax(axis=1)  # online net picks
        next_values = next_q_target[rows, next_actions]  # target net values
    else:
        next_values = next_q_target.max(axis=1)
    td_target = batch.rewards.numpy()[:, 0] + (1 - batch.dones.numpy()[:, 0]) * GAMMA * next_values
    current = numpy_q(online, obs)[rows, batch.actions.numpy()[:, 0]]
    error = np.abs(current - td_target)
    return float(np.mean(np.where(error < 1, 0.5 * error**2, error - 0.5)))


@pytest.mark.parametrize("double_q", [True, False])
def test_target_matches_hand_computation(fixed_batch_model, double_q):
    model, batch = fixed_batch_model
    model.double_q = double_q
    double_loss, max_loss = expected_loss(model, batch, True), expected_loss(model, batch, False)
    assert abs(double_loss - max_loss) > 1e-3, "the fixed batch must tell the two targets apart"
    model.train(gradient_steps=1, batch_size=6)
    logged = model.logger.name_to_value["train/loss"]
    assert logged == pytest.approx(double_loss if double_q else max_loss, rel=1e-5)


def test_double_q_online_pass_builds_no_graph(fixed_batch_model, monkeypatch):
    model, _ = fixed_batch_model
    grad_enabled = []
    advantage = model.q_net.advantage

    def spy(obs):
        grad_enabled.append(th.is_grad_enabled())
        return advantage(obs)

    monkeypatch.setattr(model.q_net, "advantage", spy)
    model.train(gradient_steps=2, batch_size=6)
    assert grad_enabled == [False, False]


def test_train_logs_dueling_diagnostics_of_the_last_batch(fixed_batch_model, monkeypatch):
    model, first = fixed_batch_model
    last = first._replace(observations=first.observations * 3 + 1)
    batches = iter([first, last])
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: next(batches))
    streams = []  # V and A of the online network in each gradient step, as the loss saw them
    value_and_advantage = model.q_net.value_and_advantage

    def spy(obs):
        value, advantage = value_and_advantage(obs)
        streams.append((obs, value.detach().clone(), advantage.detach().clone()))
        return value, advantage

    monkeypatch.setattr(model.q_net, "value_and_advantage", spy)
    model.train(gradient_steps=2, batch_size=6)

    obs, value, advantage = streams[-1]
    assert len(streams) == 2 and th.equal(obs, last.observations)
    spread = advantage.amax(dim=1) - advantage.amin(dim=1)
    logged = model.logger.name_to_value
    assert logged["train/value_mean"] == pytest.approx(value.mean().item(), rel=1e-6)
    assert logged["train/advantage_range"] == pytest.approx(spread.mean().item(), rel=1e-6)
    assert logged["train/n_updates"] == 2
    # the same as histograms, for TensorBoard only
    th.testing.assert_close(logged["train/value_hist"], value.flatten())
    th.testing.assert_close(logged["train/advantage_range_hist"], spread)
    assert model.logger.name_to_excluded["train/value_hist"] == ("stdout", "log", "json", "csv")
    # not those of the first batch
    assert logged["train/value_mean"] != pytest.approx(streams[0][1].mean().item(), rel=1e-3)


@pytest.mark.parametrize("algo", [DuelingDQN, DQN])
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")  # DQN's loss of no step
def test_zero_gradient_steps_train_nothing(algo):
    model = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL)
    model.set_logger(configure(None, []))
    model.learn(60)
    n_updates, parameters = model._n_updates, [p.clone() for p in model.policy.parameters()]
    model.train(gradient_steps=0, batch_size=8)
    assert model._n_updates == n_updates and model.logger.name_to_value["train/n_updates"] == n_updates
    assert all(th.equal(before, p) for before, p in zip(parameters, model.policy.parameters(), strict=True))


def test_train_updates_only_the_online_network(fixed_batch_model):
    model, _ = fixed_batch_model
    online = [p.clone() for p in model.q_net.parameters()]
    target = [p.clone() for p in model.q_net_target.parameters()]
    model.train(gradient_steps=3, batch_size=6)
    assert all(not th.equal(before, p) for before, p in zip(online, model.q_net.parameters()))
    assert all(th.equal(before, p) for before, p in zip(target, model.q_net_target.parameters()))


def gradient_steps_of_sb3(model: DuelingDQN) -> None:
    # SB3 trains after each rollout of train_freq=4 steps once past learning_starts=50: steps 52, 56, ..., 200
    assert model._n_updates == len(range(52, 201, 4))


def discounts_of_n_steps(model: DuelingDQN) -> None:
    assert isinstance(model.replay_buffer, NStepReplayBuffer)
    discounts = model.replay_buffer.sample(256).discounts
    # gamma ** steps taken: 3, or fewer at the end of an episode
    assert th.unique(discounts).tolist() == pytest.approx([0.99**3, 0.99**2, 0.99])


def max_target(model: DuelingDQN) -> None:
    obs = model.replay_buffer.sample(64).next_observations
    with th.no_grad():
        for p in model.q_net_target.parameters():
            p.add_(th.randn_like(p))  # a target network unlike the online one: the Double target would differ
        assert model.q_net(obs).argmax(dim=1).ne(model.q_net_target(obs).argmax(dim=1)).any()
        th.testing.assert_close(model._next_values(obs), model.q_net_target(obs).amax(dim=1, keepdim=True))


def one_observation_array(model: DuelingDQN) -> None:
    assert model.replay_buffer.optimize_memory_usage and not hasattr(model.replay_buffer, "next_observations")


def plain_replay_buffer(model: DuelingDQN) -> None:
    assert type(model.replay_buffer) is ReplayBuffer


def soft_target_updates(model: DuelingDQN) -> None:
    online = [p.clone() for p in model.q_net.parameters()]
    target = [p.clone() for p in model.q_net_target.parameters()]
    model._on_step()  # every step (target_update_interval=1): target <- 0.5 online + 0.5 target
    for o, t, after in zip(online, target, model.q_net_target.parameters(), strict=True):
        th.testing.assert_close(after, 0.5 * o + 0.5 * t)


def one_gradient_step_per_env_step(model: DuelingDQN) -> None:
    # gradient_steps=-1: as many as env steps, for every episode ending after learning_starts=50
    assert model.num_timesteps - 50 <= model._n_updates <= model.num_timesteps
    assert model._n_updates > len(range(52, 201, 4))


def max_aggregation_and_streams(model: DuelingDQN) -> None:
    q_net = model.q_net
    assert [layer.out_features for layer in (q_net.shared_net[0], q_net.value_net[0], q_net.advantage_net[0])] == [16, 8, 8]
    obs = model.replay_buffer.sample(8).observations
    with th.no_grad():
        value, advantage = q_net.value_and_advantage(obs)
        th.testing.assert_close(q_net(obs), value + advantage - advantage.amax(dim=1, keepdim=True))


def half_gradient_into_shared_layers(model: DuelingDQN) -> None:
    obs = model.replay_buffer.sample(8).observations
    gradients = []
    for scale in (model.q_net.shared_gradient_scale, 1.0):  # the model's, then none
        model.q_net.shared_gradient_scale = scale
        model.q_net.zero_grad()
        model.q_net(obs).sum().backward()
        gradients.append(model.q_net.shared_net[0].weight.grad.clone())
    th.testing.assert_close(gradients[0], 0.5 * gradients[1])


@pytest.mark.parametrize(
    "kwargs, effect",
    [
        (dict(), gradient_steps_of_sb3),
        (dict(double_q=False), max_target),
        (dict(n_steps=3), discounts_of_n_steps),
        (dict(optimize_memory_usage=True, replay_buffer_kwargs=dict(handle_timeout_termination=False)), one_observation_array),
        (dict(replay_buffer_class=ReplayBuffer), plain_replay_buffer),
        (dict(tau=0.5, target_update_interval=1), soft_target_updates),
        (dict(train_freq=(1, "episode"), gradient_steps=-1), one_gradient_step_per_env_step),
        (
            dict(policy_kwargs=dict(aggregation="max", net_arch=dict(shared=[16], value=[8], advantage=[8]))),
            max_aggregation_and_streams,
        ),
        (dict(policy_kwargs=dict(shared_gradient_scale=0.5)), half_gradient_into_shared_layers),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_run_options(kwargs, effect):
    model = DuelingDQN("MlpPolicy", "CartPole-v1", seed=0, **{**SMALL, **kwargs})
    model.learn(200)
    assert model.num_timesteps >= 200  # an episode-based train_freq finishes the episode
    effect(model)


def test_exploration_schedule_and_target_updates_are_sb3s():
    model = DuelingDQN("MlpPolicy", "CartPole-v1", seed=0, exploration_fraction=0.5, **SMALL)
    model.learn(200)
    assert model.exploration_rate == pytest.approx(model.exploration_schedule(model._current_progress_remaining))
    assert model._n_calls == 200


def test_several_envs_callbacks_tensorboard_progress_bar(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    callbacks = [
        EvalCallback(eval_env, eval_freq=50, n_eval_episodes=2, log_path=str(tmp_path / "eval")),
        CheckpointCallback(save_freq=50, save_path=str(tmp_path / "ckpt"), name_prefix="duel"),
    ]
    model = DuelingDQN("MlpPolicy", env, seed=0, tensorboard_log=str(tmp_path / "tb"), **SMALL)
    model.learn(400, callback=callbacks, progress_bar=True)
    assert model.num_timesteps == 400
    assert (tmp_path / "eval" / "evaluations.npz").exists()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir())[0].startswith("duel_")
    assert list((tmp_path / "tb").glob("DuelingDQN_1/events.out.tfevents.*"))


def test_cnn_observations():
    env = FakeImageEnv(screen_height=40, screen_width=40, n_channels=1)
    for policy in ("CnnPolicy", "DuelingNatureCnnPolicy"):
        model = DuelingDQN(policy, env, seed=0, **{**SMALL, "buffer_size": 200})
        model.learn(100)
        action, _ = model.predict(env.observation_space.sample(), deterministic=True)
        assert env.action_space.contains(int(action))


def test_dict_observations():
    env = SimpleMultiObsEnv(random_start=False)
    model = DuelingDQN("MultiInputPolicy", env, seed=0, **SMALL)
    model.learn(150)
    mean_reward, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=2)
    assert np.isfinite(mean_reward)


def test_evaluate_policy_and_stock_dqn_with_dueling_policy():
    model = DQN("DuelingMlpPolicy", "CartPole-v1", seed=0, **SMALL)
    model.learn(200)

    def evaluate(**kwargs):
        return evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=5), n_eval_episodes=4, **kwargs)

    rewards, lengths = evaluate(return_episode_rewards=True)
    assert rewards == lengths  # CartPole: +1 a step
    # The greedy dueling policy is deterministic: the same episodes again (a random policy would not repeat them)
    mean_reward, std_reward = evaluate()
    assert mean_reward == pytest.approx(np.mean(rewards)) and std_reward == pytest.approx(np.std(rewards))
    assert len(set(rewards)) > 1, "episodes of different lengths, so that repeating them means something"


def test_to_device():
    device = "cuda" if th.cuda.is_available() else "cpu"
    model = DuelingDQN("MlpPolicy", "CartPole-v1", seed=0, device=device, **SMALL)
    model.learn(100)
    assert model._n_updates > 0
    assert all(p.device.type == device and th.isfinite(p).all() for p in model.policy.parameters())
    samples = model.replay_buffer.sample(8)
    with th.no_grad():
        q_values = model.q_net(samples.observations)
        value, advantage = model.q_net.value_and_advantage(samples.observations)
    for output in (samples.observations, q_values, value, advantage):
        assert output.device.type == device and th.isfinite(output).all()
    assert np.isfinite(model.logger.name_to_value["train/loss"])
