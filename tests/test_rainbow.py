"""Rainbow: each part switchable, the composition proved against the learners it generalises, and noisy nets."""

import subprocess
import sys

import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN
from stable_baselines3 import DQN
from stable_baselines3.common.logger import configure

from sb3_dueling import DuelingDQN, DuelingQRDQN, PrioritizedReplayBuffer, Rainbow, RainbowPolicy
from sb3_dueling.explain import explain
from sb3_dueling.heads import CategoricalHead
from sb3_dueling.noisy import NoisyLinear, mean_network, noisy_layers
from sb3_dueling.policies import aggregate
from tests.test_update_identity import BATCH, fixed_batch

STEPS = 4
#: Everything off: DQN
DQN_SWITCHES = dict(dueling=False, double_q=False, prioritized=False, n_steps=1, distribution=None, noisy=False)
COMMON = dict(learning_rate=0.05, gamma=0.9, buffer_size=100, max_grad_norm=0.5, seed=3, device="cpu")


def on_fixed_batch(model, batch) -> None:
    """Train ``model`` on ``batch`` only, with a target network unlike its online one."""
    model.set_logger(configure(None, []))
    with th.no_grad():
        for name, p in model.policy.named_parameters():
            if "_target" in name:
                p.add_(0.5 * th.randn(p.shape, generator=th.Generator().manual_seed(11)))
    model.replay_buffer.sample = lambda *args, **kwargs: batch


def copy_weights(source: th.nn.Module, destination: th.nn.Module) -> None:
    """Copy the parameters of one network into another of the same layers, in order (their names may differ)."""
    with th.no_grad():
        for mine, theirs in zip(destination.parameters(), source.parameters(), strict=True):
            mine.copy_(theirs)


def rainbow(**switches) -> Rainbow:
    return Rainbow("MlpPolicy", "CartPole-v1", **{**COMMON, **switches})


@pytest.mark.parametrize("n_step", [False, True])
def test_everything_off_is_sb3_dqn(n_step):
    batch = fixed_batch(prioritized=False, n_step=n_step)
    # SB3's Adam loops over the parameters (no fused kernel): the same here, for equal updates to the bit
    optimizer = dict(optimizer_kwargs=dict(eps=1.5e-4, fused=False), net_arch=[16])
    ours = rainbow(**DQN_SWITCHES, policy_kwargs=optimizer)
    theirs = DQN("MlpPolicy", "CartPole-v1", **COMMON, policy_kwargs=optimizer)
    copy_weights(theirs.q_net, ours.q_net)
    for model in (ours, theirs):
        on_fixed_batch(model, batch)
    copy_weights(theirs.q_net_target, ours.q_net_target)
    before = [p.clone() for p in ours.q_net.parameters()]
    for model in (ours, theirs):
        model.train(gradient_steps=STEPS, batch_size=BATCH)
    assert any(not th.equal(p, q) for p, q in zip(ours.q_net.parameters(), before))
    for mine, sb3s in zip(ours.q_net.parameters(), theirs.q_net.parameters(), strict=True):
        assert th.equal(mine, sb3s)


@pytest.mark.parametrize("prioritized", [False, True])
@pytest.mark.parametrize("double_q", [True, False])
@pytest.mark.parametrize("distribution", [None, "quantile"])
def test_the_matching_switches_are_duelingdqn_and_duelingqrdqn(distribution, double_q, prioritized):
    batch = fixed_batch(prioritized, n_step=False)
    # (QR-DQN replaces the optimizer's arguments unless it is given the optimizer class)
    policy_kwargs: dict = dict(net_arch=[16], optimizer_class=th.optim.Adam, optimizer_kwargs=dict(eps=1.5e-4))
    if distribution == "quantile":
        policy_kwargs["n_quantiles"] = 7
    switches = dict(double_q=double_q, n_steps=1, distribution=distribution, noisy=False, prioritized=prioritized)
    ours = rainbow(**switches, policy_kwargs=policy_kwargs)
    learner = DuelingQRDQN if distribution == "quantile" else DuelingDQN
    buffer = dict(replay_buffer_class=PrioritizedReplayBuffer, replay_buffer_kwargs=dict(alpha=0.5)) if prioritized else {}
    theirs = learner("MlpPolicy", "CartPole-v1", **COMMON, double_q=double_q, policy_kwargs=policy_kwargs, **buffer)
    for mine, same in zip(ours._networks(), theirs._networks()):
        mine.load_state_dict(same.state_dict())  # the same layers: Q-networks and quantile networks alike
    for model in (ours, theirs):
        on_fixed_batch(model, batch)
        model.train(gradient_steps=STEPS, batch_size=BATCH)
    for mine, same in zip(ours._networks(), theirs._networks()):
        for (name, tensor), expected in zip(mine.state_dict().items(), same.state_dict().values(), strict=True):
            assert th.equal(tensor, expected), name
    if prioritized:
        np.testing.assert_array_equal(ours.replay_buffer.tree[batch.indices], theirs.replay_buffer.tree[batch.indices])


def test_categorical_greedy_action_is_the_argmax_of_the_expected_value():
    model = rainbow(noisy=False)
    network = model.q_net
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(256, 4)), dtype=th.float32)
    with th.no_grad():
        value, advantage = network.value_and_advantage(obs)
        # Make the advantage-only shortcut wrong: action 0's mass on the lowest atom, with a larger mean logit
        advantage[:, 0, 0] += 30.0
        q_values = network.head.q_values(aggregate(value, advantage))
    shortcut = advantage.mean(dim=1).argmax(dim=1)
    assert th.equal(network.head.greedy_actions(aggregate(value, advantage)), q_values.argmax(dim=1))
    assert not th.equal(shortcut, q_values.argmax(dim=1))
    with th.no_grad():
        # The network's own greedy action is the expected value's argmax, never the shortcut
        assert th.equal(network.greedy_actions(obs), network.head.q_values(network(obs)).argmax(dim=1))
    assert isinstance(network.head, CategoricalHead)


def test_noise_explores_and_deterministic_acting_uses_the_mean_weights():
    model = rainbow(learning_starts=1_000)
    assert model.exploration_initial_eps == model.exploration_final_eps == 0.0  # the noise explores
    assert rainbow(noisy=False).exploration_initial_eps == 1.0
    assert all(isinstance(layer, NoisyLinear) for layer in noisy_layers(model.q_net))
    assert len(noisy_layers(model.q_net)) == 4  # every linear layer after the features extractor
    model.policy.set_training_mode(False)  # as SB3 collects experience
    state = np.array([[0.01, 0.02, -0.03, 0.04]], dtype=np.float32)
    explored = {int(model.predict(state, deterministic=False)[0][0]) for _ in range(50)}
    assert explored == {0, 1}  # from one state, with epsilon 0: new noise at every acting step
    greedy = {int(model.predict(state, deterministic=True)[0][0]) for _ in range(20)}
    assert len(greedy) == 1
    # Deterministic acting is the mean network's argmax
    with th.no_grad(), mean_network(model.q_net):
        mean_q = model.q_net.head.q_values(model.q_net(th.as_tensor(state)))
    assert greedy == {int(mean_q.argmax())}


def test_every_gradient_step_draws_new_noise_for_each_network():
    model = rainbow(learning_starts=0)
    on_fixed_batch(model, fixed_batch(prioritized=True, n_step=False))
    seen = []
    layer, target_layer = noisy_layers(model.q_net)[0], noisy_layers(model.q_net_target)[0]
    original = model._next_values

    def spy(next_observations):
        seen.append((layer.epsilon_in.clone(), target_layer.epsilon_in.clone()))
        return original(next_observations)

    model._next_values = spy
    model.train(gradient_steps=2, batch_size=BATCH)
    (online_1, target_1), (online_2, target_2) = seen
    assert not th.equal(online_1, online_2) and not th.equal(target_1, target_2)
    assert not th.equal(online_1, target_1)  # independent draws


@pytest.mark.parametrize("noise_sample_freq, new_draws", [(1, set(range(1, 12))), (3, {3, 6, 9}), (-1, {6})])
def test_noise_sample_freq_draws_the_acting_noise_on_its_schedule(noise_sample_freq, new_draws):
    # Two rollouts of 6 acting steps, no gradient step between them: which steps act with new noise
    model = rainbow(learning_starts=0, train_freq=6, gradient_steps=0, noise_sample_freq=noise_sample_freq)
    layer, seen = noisy_layers(model.q_net)[0], []
    original = model.q_net.greedy_actions

    def spy(observation):
        seen.append(layer.epsilon_in.clone())
        return original(observation)

    model.q_net.greedy_actions = spy
    model.learn(12)
    assert len(seen) == 12
    assert {step for step in range(1, 12) if not th.equal(seen[step], seen[step - 1])} == new_draws
    assert model.q_net.draws_noise_to_act  # predict(deterministic=False) draws new noise again after learn


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(policy_kwargs=dict(v_min=5.0, v_max=5.0)), ValueError, "v_min"),
        (dict(policy_kwargs=dict(n_atoms=1)), ValueError, "n_atoms"),
        (dict(distribution="gaussian"), ValueError, "distribution"),
        (dict(policy_kwargs=dict(sigma0=0.0)), ValueError, "sigma0"),
        (dict(dueling=1), TypeError, "dueling"),
        (dict(noisy="yes"), TypeError, "noisy"),
        (dict(prioritized=None), TypeError, "prioritized"),
        (dict(double_q=0), TypeError, "double_q"),
        (dict(policy_kwargs=dict(noisy=False)), TypeError, "noisy"),
        (dict(prioritized=False, replay_buffer_class=PrioritizedReplayBuffer), ValueError, "prioritized"),
        (dict(noise_sample_freq=0), ValueError, "noise_sample_freq"),
        (dict(noise_sample_freq=2.0), TypeError, "noise_sample_freq"),
        (dict(noise_sample_freq=-1, noisy=False), ValueError, "noise_sample_freq"),
    ],
)
def test_bad_input_is_refused_at_construction_naming_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=name):
        rainbow(**kwargs)


def test_stock_dqn_refuses_rainbows_policy():
    with pytest.raises(TypeError, match=r"trained by sb3_dueling\.Rainbow only"):
        DQN(RainbowPolicy, "CartPole-v1")
    with pytest.raises(TypeError, match=r"trained by sb3_dueling\.Rainbow only"):
        QRDQN(RainbowPolicy, "CartPole-v1")


LOAD_AND_PREDICT = """
import sys, numpy as np
from sb3_dueling import Rainbow
model = Rainbow.load(sys.argv[1], device="cpu")
obs = np.load(sys.argv[2])
print(" ".join(map(str, model.predict(obs, deterministic=True)[0])))
print(model.q_net.head.__class__.__name__, model.distribution, model.noisy, model.dueling, model.prioritized)
"""


@pytest.mark.parametrize("distribution", ["categorical", "quantile", None])
def test_save_and_load_in_a_fresh_process(tmp_path, distribution):
    model = rainbow(distribution=distribution, learning_starts=50)
    model.learn(200)
    observations = np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32)
    np.save(tmp_path / "obs.npy", observations)
    model.save(tmp_path / "model.zip")
    output = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, str(tmp_path / "model.zip"), str(tmp_path / "obs.npy")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert output[0] == " ".join(map(str, model.predict(observations, deterministic=True)[0]))
    assert output[1] == f"{type(model.q_net.head).__name__} {distribution} True True True"


def test_a_rainbow_file_is_not_a_duelingdqn_one(tmp_path):
    rainbow().save(tmp_path / "model.zip")
    with pytest.raises(Exception, match=r"load it with Rainbow\.load$"):
        DuelingDQN.load(tmp_path / "model.zip")


def test_explain_gives_v_and_a_as_expected_values():
    model = rainbow()
    observations = np.random.default_rng(2).normal(size=(6, 4))
    explanation = explain(model, observations)
    # Q - mean Q is the advantage; the greedy action is the argmax of the expected values
    np.testing.assert_allclose(
        explanation.advantage, explanation.q_values - explanation.q_values.mean(axis=1, keepdims=True), atol=1e-5
    )
    np.testing.assert_array_equal(explanation.action, model.predict(observations, deterministic=True)[0])
    assert explanation.value_saliency.shape == observations.shape and np.all(explanation.value_saliency >= 0)
    assert np.all(explanation.value >= -10) and np.all(explanation.value <= 10)


@pytest.mark.parametrize(
    "distribution, dueling, noisy", [("categorical", True, True), ("quantile", False, True), (None, True, False)]
)
def test_trains_with_sb3_features(distribution, dueling, noisy):
    # Dict observations, n-step prioritized replay, several envs, and the logs
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.envs import SimpleMultiObsEnv

    env = make_vec_env(SimpleMultiObsEnv, n_envs=2)
    model = Rainbow(
        "MultiInputPolicy", env, distribution=distribution, dueling=dueling, noisy=noisy, learning_starts=20, seed=0
    )
    model.learn(120)
    assert model.num_timesteps >= 120 and model._n_updates > 0
    assert type(model.replay_buffer).__name__ == "PrioritizedDictReplayBuffer" and model.replay_buffer.n_steps == 3


@pytest.mark.parametrize("noise_sample_freq", [1, -1])
def test_resume_is_exact(tmp_path, noise_sample_freq):
    # The noise, the priorities and the categorical network come back as they were: the resumed run is the same
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_dueling.checkpoints import ResumableCheckpointCallback, read_manifest, resume_training

    def run(folder):
        env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
        model = Rainbow(
            "MlpPolicy",
            env,
            learning_starts=100,
            buffer_size=1_000,
            target_update_interval=200,
            seed=0,
            noise_sample_freq=noise_sample_freq,
        )
        model.learn(800, callback=ResumableCheckpointCallback(400, folder, keep=5))
        return model

    uninterrupted, _ = run(tmp_path / "a"), run(tmp_path / "b")
    for entry in read_manifest(tmp_path / "b")[1:]:  # a crash right after the checkpoint at step 400
        (tmp_path / "b" / entry["name"] / "model.zip").unlink()
    with pytest.warns(UserWarning, match="skipping a damaged checkpoint"):
        resumed = resume_training(tmp_path / "b", total_timesteps=800, save_freq=400)
    assert type(resumed) is Rainbow and resumed._n_updates == uninterrupted._n_updates > 0
    for got, expected in zip(resumed.policy.state_dict().values(), uninterrupted.policy.state_dict().values(), strict=True):
        assert th.equal(got, expected)
    np.testing.assert_array_equal(resumed.replay_buffer.tree.levels[0], uninterrupted.replay_buffer.tree.levels[0])


@pytest.mark.parametrize("policy", ["CnnPolicy", "NatureCnnPolicy"])
def test_image_policies(policy):
    from tests.tiny_image_env import make_tiny_image_env

    model = Rainbow(policy, make_tiny_image_env(), buffer_size=200, learning_starts=20, batch_size=8, seed=0)
    model.learn(60)
    assert model._n_updates > 0 and len(noisy_layers(model.q_net)) == (2 if policy == "CnnPolicy" else 4)


def test_check_finite_stops_a_diverging_rainbow():
    model = rainbow(distribution=None, learning_rate=1e38, learning_starts=10, check_finite=True)
    with pytest.raises(FloatingPointError, match="non-finite"):
        model.learn(300)
