"""DuelingQRDQN: the targets and the loss by hand, prioritized replay, SB3's features, save/load, learning."""

import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBufferSamples
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import SimpleMultiObsEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from sb3_dueling import DuelingQRDQN, PrioritizedDictReplayBuffer, PrioritizedReplayBuffer
from sb3_dueling.buffers import PrioritizedReplayBufferSamples
from sb3_dueling.quantile_policies import DuelingQuantileNetwork
from tests.cases import IDENTITY_SETTINGS, fixed_batch, identity_env, identity_return
from tests.conftest import SMALL_SETTINGS as SMALL
from tests.tiny_image_env import make_tiny_image_env

GAMMA = 0.9
N_QUANTILES = 3
#: n-step discounts (gamma ** steps taken) of the fixed batch, for the n-step case
DISCOUNTS = th.tensor([[GAMMA**3], [GAMMA**2], [GAMMA**3], [GAMMA], [GAMMA**3], [GAMMA**2]])


def numpy_quantiles(weights: dict[str, np.ndarray], obs: np.ndarray, aggregation: str) -> np.ndarray:
    """theta_i(s, a) = V_i(s) + A_i(s, a) - mean_a' A_i(s, a') (or max), by hand, for a network with no hidden layer."""
    value = obs @ weights["value_net.0.weight"].T + weights["value_net.0.bias"]
    advantage = obs @ weights["advantage_net.0.weight"].T + weights["advantage_net.0.bias"]
    advantage = advantage.reshape(len(obs), N_QUANTILES, -1)  # output i * n_actions + a is A_i(s, a)
    baseline = advantage.mean(axis=2, keepdims=True) if aggregation == "mean" else advantage.max(axis=2, keepdims=True)
    return value[:, :, None] + advantage - baseline


def numpy_quantile_huber(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each sample's quantile Huber loss (QR-DQN, eq. 10), summed over the current quantiles, averaged over the targets."""
    tau = (np.arange(current.shape[1]) + 0.5) / current.shape[1]
    delta = target[:, None, :] - current[:, :, None]
    huber = np.where(np.abs(delta) <= 1, 0.5 * delta**2, np.abs(delta) - 0.5)
    return (np.abs(tau[None, :, None] - (delta < 0)) * huber).mean(axis=2).sum(axis=1)


def make_fixed_batch_model(monkeypatch, aggregation: str = "mean", n_step: bool = False, prioritized: bool = False):
    """A model with no hidden layer, different online and target weights, and a fixed batch."""
    model = DuelingQRDQN(
        "MlpPolicy",
        "CartPole-v1",
        gamma=GAMMA,
        policy_kwargs=dict(net_arch=[], n_quantiles=N_QUANTILES, aggregation=aggregation),
        replay_buffer_class=PrioritizedReplayBuffer if prioritized else None,
        seed=1,
        learning_starts=0,
    )
    model.set_logger(configure(None, []))
    generator = th.Generator().manual_seed(3)
    with th.no_grad():
        for p in model.quantile_net_target.parameters():
            p.copy_(th.randn(p.shape, generator=generator))
    batch = fixed_batch(generator, DISCOUNTS if n_step else None)
    if prioritized:
        weights = th.tensor([[1.0], [0.5], [0.25], [0.8], [0.1], [0.6]])
        batch = PrioritizedReplayBufferSamples(*batch, weights=weights, indices=np.arange(10, 16))
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: batch)
    return model, batch


def expected_losses(model: DuelingQRDQN, batch: ReplayBufferSamples, double_q: bool) -> np.ndarray:
    """Each sample's loss, by hand."""
    aggregation = model.quantile_net.aggregation
    online = {k: v.numpy() for k, v in model.quantile_net.state_dict().items()}
    target = {k: v.numpy() for k, v in model.quantile_net_target.state_dict().items()}
    obs, next_obs = batch.observations.numpy(), batch.next_observations.numpy()
    rows = np.arange(len(obs))
    next_target = numpy_quantiles(target, next_obs, aggregation)
    if double_q:
        next_actions = numpy_quantiles(online, next_obs, aggregation).mean(axis=1).argmax(axis=1)  # online net picks
    else:
        next_actions = next_target.mean(axis=1).argmax(axis=1)  # QR-DQN: the target net's own greedy action
    next_quantiles = next_target[rows, :, next_actions]  # (batch, n_quantiles): the target net's quantiles
    discounts = batch.discounts.numpy() if batch.discounts is not None else GAMMA
    td_target = batch.rewards.numpy() + (1 - batch.dones.numpy()) * discounts * next_quantiles
    current = numpy_quantiles(online, obs, aggregation)[rows, :, batch.actions.numpy()[:, 0]]
    return numpy_quantile_huber(current, td_target)


@pytest.mark.parametrize("n_step", [False, True])
@pytest.mark.parametrize("aggregation", ["mean", "max"])
@pytest.mark.parametrize("double_q", [True, False])
def test_target_and_loss_match_hand_computation(monkeypatch, double_q, aggregation, n_step):
    model, batch = make_fixed_batch_model(monkeypatch, aggregation, n_step)
    model.double_q = double_q
    double_loss, max_loss = expected_losses(model, batch, True).mean(), expected_losses(model, batch, False).mean()
    assert abs(double_loss - max_loss) > 1e-3, "the fixed batch must tell the two targets apart"
    model.train(gradient_steps=1, batch_size=6)
    logged = model.logger.name_to_value["train/loss"]
    assert logged == pytest.approx(double_loss if double_q else max_loss, rel=1e-5)


def test_prioritized_replay_weights_each_sample_and_its_loss_is_its_priority(monkeypatch):
    model, batch = make_fixed_batch_model(monkeypatch, prioritized=True)
    per_sample = expected_losses(model, batch, double_q=True)
    written = []
    monkeypatch.setattr(model.replay_buffer, "update_priorities", lambda indices, errors: written.append((indices, errors)))
    model.train(gradient_steps=1, batch_size=6)
    weighted = (batch.weights.numpy()[:, 0] * per_sample).mean()
    assert weighted != pytest.approx(per_sample.mean(), rel=1e-3), "the weights must change the loss"
    assert model.logger.name_to_value["train/loss"] == pytest.approx(weighted, rel=1e-5)
    [(indices, errors)] = written
    np.testing.assert_array_equal(indices, batch.indices)
    np.testing.assert_allclose(errors, per_sample, rtol=1e-5)


def test_priorities_are_written_back_to_the_buffer():
    model = DuelingQRDQN(
        "MlpPolicy", "CartPole-v1", replay_buffer_class=PrioritizedReplayBuffer, policy_kwargs=dict(n_quantiles=5), **SMALL
    )
    model.learn(200)
    buffer = model.replay_buffer
    np.random.seed(1)
    state = np.random.get_state()
    samples = buffer.sample(16)
    with th.no_grad():
        next_quantiles = model._next_values(samples.next_observations)
        target = samples.rewards + (1 - samples.dones) * model.gamma * next_quantiles
        current = model._online_output(samples.observations, samples.actions).current_values
    per_sample = numpy_quantile_huber(current.numpy(), target.numpy())
    np.random.set_state(state)  # train() draws the same batch
    model.train(gradient_steps=1, batch_size=16)
    expected = (per_sample + buffer.epsilon) ** buffer.alpha
    np.testing.assert_allclose(buffer.tree[samples.indices], expected, rtol=1e-4)


def test_logs_value_and_advantage_as_means_over_quantiles(monkeypatch):
    model, batch = make_fixed_batch_model(monkeypatch)
    with th.no_grad():
        value, advantage = model.quantile_net.value_and_advantage(batch.observations)
    model.train(gradient_steps=1, batch_size=6)
    mean_advantage = advantage.mean(dim=1)
    spread = mean_advantage.amax(dim=1) - mean_advantage.amin(dim=1)
    logged = model.logger.name_to_value
    assert logged["train/value_mean"] == pytest.approx(value.mean().item(), rel=1e-6)
    assert logged["train/advantage_range"] == pytest.approx(spread.mean().item(), rel=1e-6)
    th.testing.assert_close(logged["train/value_hist"], value.mean(dim=1).flatten())


def test_check_finite_stops_before_the_optimizer_step(monkeypatch):
    model, _ = make_fixed_batch_model(monkeypatch)
    model.check_finite = True
    with th.no_grad():
        model.quantile_net.value_net[0].bias[0] = float("nan")
    before = [p.clone() for p in model.quantile_net.parameters()]
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        model.train(gradient_steps=1, batch_size=6)
    for b, p in zip(before, model.quantile_net.parameters()):
        th.testing.assert_close(p, b, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("max_grad_norm", [None, 10.0])
def test_check_finite_stops_at_a_non_finite_gradient(monkeypatch, max_grad_norm):
    # QR-DQN's default max_grad_norm of None computes no norm for clipping: the guard computes its own
    model, _ = make_fixed_batch_model(monkeypatch)
    model.check_finite = True
    model.max_grad_norm = max_grad_norm
    model.quantile_net.advantage_net[0].weight.register_hook(lambda grad: grad * float("inf"))
    before = [p.clone() for p in model.quantile_net.parameters()]
    with pytest.raises(FloatingPointError, match="non-finite gradient"):
        model.train(gradient_steps=1, batch_size=6)
    for b, p in zip(before, model.quantile_net.parameters()):
        th.testing.assert_close(p, b, rtol=0, atol=0)


def test_every_qrdqn_argument_and_default():
    ours = inspect.signature(DuelingQRDQN).parameters
    theirs = inspect.signature(QRDQN).parameters
    names = list(theirs)
    at = names.index("stats_window_size")  # the new arguments come where DuelingDQN has them
    assert list(ours) == [*names[:at], "double_q", "check_finite", *names[at:]]
    assert all(ours[name].default == parameter.default for name, parameter in theirs.items())
    assert ours["double_q"].default is True and ours["check_finite"].default is False


def test_bad_learner_arguments():
    with pytest.raises(TypeError, match="double_q must be a bool"):
        DuelingQRDQN("MlpPolicy", "CartPole-v1", double_q="yes")
    with pytest.raises(TypeError, match="needs a dueling policy"):
        DuelingQRDQN(QRDQNPolicy, "CartPole-v1", buffer_size=10)


def n_step_discounts(model: DuelingQRDQN) -> None:
    assert isinstance(model.replay_buffer, NStepReplayBuffer)
    discounts = model.replay_buffer.sample(256).discounts
    assert th.unique(discounts).tolist() == pytest.approx([0.99**3, 0.99**2, 0.99])


def prioritized_n_step_returns(model: DuelingQRDQN) -> None:
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer) and buffer.n_steps == 3
    assert len(np.unique(buffer.tree[np.arange(buffer.pos)])) > 10  # priorities written back by train()


def max_target(model: DuelingQRDQN) -> None:
    obs = model.replay_buffer.sample(64).next_observations
    with th.no_grad():
        target = model.quantile_net_target(obs)
        greedy = target.mean(dim=1).argmax(dim=1)
        th.testing.assert_close(model._next_values(obs), target[th.arange(64), :, greedy])


@pytest.mark.parametrize(
    "kwargs, effect",
    [
        (dict(n_steps=3), n_step_discounts),
        (dict(n_steps=3, replay_buffer_class=PrioritizedReplayBuffer), prioritized_n_step_returns),
        (dict(double_q=False, check_finite=True, max_grad_norm=10), max_target),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_run_options(kwargs, effect):
    model = DuelingQRDQN("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(n_quantiles=5), **SMALL, **kwargs)
    model.learn(200)
    assert model._n_updates == len(range(52, 201, 4))
    effect(model)


def test_several_envs_callbacks_tensorboard(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    callbacks = [
        EvalCallback(make_vec_env("CartPole-v1", seed=1), eval_freq=50, n_eval_episodes=2, log_path=str(tmp_path / "eval")),
        CheckpointCallback(save_freq=50, save_path=str(tmp_path / "ckpt"), name_prefix="duel"),
    ]
    model = DuelingQRDQN("MlpPolicy", env, seed=0, tensorboard_log=str(tmp_path / "tb"), **SMALL)
    model.learn(400, callback=callbacks)
    assert model.num_timesteps == 400 and model._n_updates > 0
    assert (tmp_path / "eval" / "evaluations.npz").exists()
    assert list((tmp_path / "ckpt").glob("duel_*.zip"))
    assert list((tmp_path / "tb").glob("DuelingQRDQN_1/events.out.tfevents.*"))


@pytest.mark.parametrize(
    "policy, env, buffer_class",
    [
        ("CnnPolicy", make_tiny_image_env, None),
        ("DuelingNatureCnnPolicy", make_tiny_image_env, None),
        ("MultiInputPolicy", SimpleMultiObsEnv, PrioritizedDictReplayBuffer),
    ],
)
def test_image_and_dict_observations(policy, env, buffer_class):
    model = DuelingQRDQN(
        policy,
        env(),
        seed=0,
        replay_buffer_class=buffer_class,
        policy_kwargs=dict(n_quantiles=5),
        **{**SMALL, "buffer_size": 200},
    )
    model.learn(100)
    assert model._n_updates > 0 and all(th.isfinite(p).all() for p in model.policy.parameters())
    mean_reward, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=2)
    assert np.isfinite(mean_reward)


def test_stock_qrdqn_trains_the_dueling_network_with_its_own_train():
    model = QRDQN("DuelingMlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(n_quantiles=5, aggregation="max"), **SMALL)
    assert isinstance(model.quantile_net, DuelingQuantileNetwork) and model.n_quantiles == 5
    before = [p.clone() for p in model.quantile_net.parameters()]
    model.learn(200)
    assert model._n_updates == len(range(52, 201, 4))
    assert all(not th.equal(b, p) for b, p in zip(before, model.quantile_net.parameters()))
    rewards, lengths = evaluate_policy(
        model, make_vec_env("CartPole-v1", seed=5), n_eval_episodes=2, return_episode_rewards=True
    )
    assert rewards == lengths


# Runs in a fresh interpreter: nothing imported beforehand, so unpickling the saved policy class must import
# sb3_dueling by itself. Loads each saved model with both classes and writes their outputs.
LOAD_AND_PREDICT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch as th
    from sb3_contrib import QRDQN
    from sb3_dueling import DuelingQRDQN

    folder = sys.argv[1]
    obs = np.load(folder + "/obs.npy")
    for saver in ("QRDQN", "DuelingQRDQN"):
        for loader in (QRDQN, DuelingQRDQN):
            model = loader.load(f"{folder}/{saver}.zip", device="cpu")
            actions, _ = model.predict(obs, deterministic=True)
            with th.no_grad():
                quantiles = model.quantile_net(th.as_tensor(obs)).numpy()
            np.savez(f"{folder}/{saver}-{loader.__name__}", actions=actions, quantiles=quantiles,
                     policy=type(model.policy).__name__, aggregation=model.quantile_net.aggregation,
                     double_q=getattr(model, "double_q", None))
    """
)


def test_round_trip_across_both_classes_in_fresh_process(tmp_path):
    policy_kwargs = dict(n_quantiles=7, net_arch=dict(shared=[32], value=[16]), aggregation="max", shared_gradient_scale=0.5)
    saved = {
        "QRDQN": QRDQN("DuelingMlpPolicy", "CartPole-v1", seed=0, policy_kwargs=policy_kwargs, **SMALL),
        "DuelingQRDQN": DuelingQRDQN("MlpPolicy", "CartPole-v1", seed=0, double_q=False, policy_kwargs=policy_kwargs, **SMALL),
    }
    obs = np.stack([saved["QRDQN"].observation_space.sample() for _ in range(32)])
    np.save(tmp_path / "obs.npy", obs)
    outputs = {}
    for name, model in saved.items():
        model.learn(200)
        model.save(tmp_path / f"{name}.zip")
        with th.no_grad():
            outputs[name] = model.predict(obs, deterministic=True)[0], model.quantile_net(th.as_tensor(obs)).numpy()

    script = tmp_path / "load.py"
    script.write_text(LOAD_AND_PREDICT)
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    for saver, (actions, quantiles) in outputs.items():
        for loader in ("QRDQN", "DuelingQRDQN"):
            loaded = np.load(tmp_path / f"{saver}-{loader}.npz")
            np.testing.assert_array_equal(loaded["actions"], actions)
            np.testing.assert_array_equal(loaded["quantiles"], quantiles)
            assert str(loaded["policy"]) == "DuelingQRDQNPolicy" and str(loaded["aggregation"]) == "max"
        assert not np.load(tmp_path / "DuelingQRDQN-DuelingQRDQN.npz")["double_q"]  # the learner's own setting survives


@pytest.mark.parametrize("double_q", [True, False])
def test_learns_identity(double_q):
    policy_kwargs = dict(net_arch=[32], n_quantiles=10)
    model = DuelingQRDQN("MlpPolicy", identity_env(), policy_kwargs=policy_kwargs, double_q=double_q, **IDENTITY_SETTINGS)
    model.learn(2000)
    assert identity_return(model) >= 9.5
