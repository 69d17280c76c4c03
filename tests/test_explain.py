"""The streams' values and saliency, the pictures, and the explain command end to end."""

import subprocess
import sys

import numpy as np
import pytest
import torch as th
from PIL import Image
from sb3_contrib import QRDQN
from stable_baselines3 import DQN

from sb3_dueling import DuelingDQN, DuelingQRDQN, Rainbow
from sb3_dueling.explain import dueling_network, explain
from sb3_dueling.explain.__main__ import main as explain_main
from sb3_dueling.explain.pictures import feature_names, overlay
from sb3_dueling.policies import PAPER_GRADIENT_SCALE
from tests.tiny_image_env import make_tiny_image_env

EXPLAIN = [sys.executable, "-m", "sb3_dueling.explain"]


def tiny_model(learner: type[DQN | QRDQN] = DuelingDQN, policy: str = "MlpPolicy", **policy_kwargs) -> DQN | QRDQN:
    if issubclass(learner, QRDQN):
        policy_kwargs.setdefault("n_quantiles", 5)
    return learner(policy, "CartPole-v1", seed=0, policy_kwargs=dict(net_arch=[8], activation_fn=th.nn.Tanh, **policy_kwargs))


def quantile_streams(model: DQN | QRDQN, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V_i(s), shape (batch, n_quantiles), and A_i(s, a), (batch, n_quantiles, n_actions): one quantile for a Q-network."""
    with th.no_grad():
        value, advantage = dueling_network(model).value_and_advantage(th.as_tensor(observations, dtype=th.float32))
    batch, n_actions = len(observations), advantage.shape[-1]
    return value.double().numpy().reshape(batch, -1), advantage.double().numpy().reshape(batch, -1, n_actions)


@pytest.mark.parametrize("scale", [1.0, PAPER_GRADIENT_SCALE])
@pytest.mark.parametrize("learner, aggregation", [(DuelingDQN, "mean"), (DuelingQRDQN, "mean"), (DuelingQRDQN, "max")])
def test_streams_and_saliency_match_a_hand_computation(learner, aggregation, scale):
    model = tiny_model(learner, aggregation=aggregation, shared_gradient_scale=scale)
    observations = np.random.default_rng(0).normal(size=(5, 4))
    explanation = explain(model, observations)
    epsilon = 1e-3

    def streams(obs):
        # V and A as their means over the quantiles
        value, advantage = quantile_streams(model, obs)
        return value.mean(axis=1), advantage.mean(axis=1)

    for feature in range(4):
        step = np.zeros(4)
        step[feature] = epsilon
        (v_plus, a_plus), (v_minus, a_minus) = streams(observations + step), streams(observations - step)
        rows = np.arange(5)
        value_difference = (v_plus - v_minus) / (2 * epsilon)
        advantage_difference = (a_plus[rows, explanation.action] - a_minus[rows, explanation.action]) / (2 * epsilon)
        np.testing.assert_allclose(explanation.value_saliency[:, feature], np.abs(value_difference), rtol=2e-2, atol=1e-4)
        np.testing.assert_allclose(
            explanation.advantage_saliency[:, feature], np.abs(advantage_difference), rtol=2e-2, atol=1e-4
        )
    # the streams themselves, and Q the mean over the quantiles of theta_i = V_i + A_i - mean (or max) of A_i
    value, advantage = quantile_streams(model, observations)
    baseline = advantage.max(axis=2) if aggregation == "max" else advantage.mean(axis=2)
    q_values = (value[:, :, None] + advantage - baseline[:, :, None]).mean(axis=1)
    np.testing.assert_allclose(explanation.value, value.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(explanation.advantage, advantage.mean(axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(explanation.q_values, q_values, rtol=1e-5)
    if aggregation == "max":  # the aggregate of the means is another number: the test tells them apart
        mean_advantage = advantage.mean(axis=1)
        of_means = value.mean(axis=1)[:, None] + mean_advantage - mean_advantage.max(axis=1, keepdims=True)
        assert not np.allclose(q_values, of_means, rtol=1e-3)
    assert (explanation.action == advantage.mean(axis=1).argmax(1)).all()
    assert (explanation.action == model.predict(observations.astype(np.float32), deterministic=True)[0]).all()
    assert (explanation.advantage_gap >= 0).all()


def test_overlay_shape_and_colours():
    frame = np.full((10, 12), 128.0)
    value_map, advantage_map = np.zeros((10, 12)), np.zeros((10, 12))
    value_map[5, 5], advantage_map[7, 8] = 1.0, 1.0  # below the text bar
    picture = overlay(frame, value_map, advantage_map, "step 0", scale=3)
    assert picture.shape == (30, 36, 3) and picture.dtype == np.uint8
    value_pixel, advantage_pixel, plain = picture[16, 16], picture[22, 25], picture[25, 2]
    assert value_pixel[0] > value_pixel[2] and advantage_pixel[2] > advantage_pixel[0]  # orange, blue
    assert plain[0] == plain[1] == plain[2]  # grey elsewhere
    assert feature_names("LunarLander-v3", 8)[1] == "y" and feature_names("Foo-v0", 2) == ["obs[0]", "obs[1]"]


@pytest.mark.parametrize(
    "learner, policy",
    [(DuelingDQN, "MlpPolicy"), (DuelingQRDQN, "MlpPolicy"), (QRDQN, "DuelingMlpPolicy"), (Rainbow, "MlpPolicy")],
)
def test_command_on_a_vector_env(tmp_path, learner, policy):
    model = tiny_model(learner, policy)
    model.save(tmp_path / "model.zip")
    result = subprocess.run(
        [
            *EXPLAIN,
            "--model",
            str(tmp_path / "model.zip"),
            "--env",
            "CartPole-v1",
            "--episodes",
            "2",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for episode in range(2):
        image = Image.open(tmp_path / "out" / f"episode_{episode}.png")
        assert image.size[0] > 500 and image.getextrema()[0][0] < image.getextrema()[0][1]  # not blank
        numbers = np.load(tmp_path / "out" / f"episode_{episode}.npz")
        assert numbers["value_saliency"].shape == (len(numbers["value"]), 4)
        assert numbers["q_values"].shape == numbers["advantage"].shape == (len(numbers["value"]), 2)


def test_command_on_an_image_env(tmp_path):
    model = DuelingDQN("CnnPolicy", make_tiny_image_env(), seed=0, buffer_size=100, learning_starts=0)
    model.save(tmp_path / "model.zip")
    command = [*EXPLAIN, "--model", str(tmp_path / "model.zip"), "--env", "TinyImage-v0", "--out", str(tmp_path / "out")]
    result = subprocess.run([*command, "--gym-packages", "tests.tiny_image_env"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    frames = sorted((tmp_path / "out" / "episode_0").glob("frame_*.png"))
    assert len(frames) == 10  # one per step of the 10-step episode
    picture = np.asarray(Image.open(frames[0]))
    assert picture.shape == (36 * 4, 36 * 4, 3) and picture.std() > 0
    gif = Image.open(tmp_path / "out" / "episode_0.gif")
    assert gif.n_frames == 10


def test_command_errors(tmp_path, capsys):
    plain = DQN("MlpPolicy", "CartPole-v1")
    plain.save(tmp_path / "plain.zip")
    QRDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(n_quantiles=5)).save(tmp_path / "plain_quantiles.zip")
    dueling = tiny_model()
    dueling.save(tmp_path / "dueling.zip")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    cases = [
        (["--model", str(tmp_path / "plain.zip"), "--env", "CartPole-v1"], "no dueling head"),
        (["--model", str(tmp_path / "plain_quantiles.zip"), "--env", "CartPole-v1"], "its network is QuantileNetwork"),
        (["--model", str(tmp_path / "dueling.zip"), "--env", "Acrobot-v1"], "does not match the model"),
        (["--model", str(tmp_path / "dueling.zip"), "--env", "NoSuchEnv-v0"], "not a registered env id"),
        (["--model", str(tmp_path / "dueling.zip"), "--env", "CartPole-v2"], "did you mean 'CartPole-v1'?"),
        (["--model", str(tmp_path / "missing.zip"), "--env", "CartPole-v1"], "no such file"),
        (["--model", str(tmp_path / "dueling.zip"), "--env", "CartPole-v1", "--gym-packages", "no_such_module"], "no_such"),
        (["--model", str(tmp_path / "dueling.zip"), "--env", "CartPole-v1", "--out", str(tmp_path / "full")], "not empty"),
        (["--model", str(tmp_path / "dueling.zip"), "--env", "CartPole-v1", "--threads", "0"], "must be positive"),
    ]
    for arguments, message in cases:
        if "--out" not in arguments:
            arguments = [*arguments, "--out", str(tmp_path / "out")]
        assert explain_main(arguments) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(TypeError, match="no dueling head"):
        explain(plain, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="shape"):
        explain(dueling, np.zeros((1, 3)))


def test_command_sets_its_threads_and_the_library_does_not(tmp_path, monkeypatch):
    tiny_model().save(tmp_path / "model.zip")
    calls: list[int] = []
    monkeypatch.setattr(th, "set_num_threads", calls.append)
    command = ["--model", str(tmp_path / "model.zip"), "--env", "CartPole-v1", "--max-steps", "5"]
    assert explain_main([*command, "--out", str(tmp_path / "default")]) == 0
    assert explain_main([*command, "--out", str(tmp_path / "two"), "--threads", "2"]) == 0
    assert calls == [1, 2]
    # importing the library leaves a user's setting alone (the API is re-exported by the package)
    code = (
        "import torch as th; th.set_num_threads(2); import sb3_dueling, sb3_dueling.progress;"
        "from sb3_dueling.explain import Explanation, explain; print(th.get_num_threads())"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "2\n"


@pytest.mark.parametrize("learner", [DuelingDQN, DuelingQRDQN])
def test_explain_leaves_the_network_as_it_found_it(learner):
    model = tiny_model(learner, shared_gradient_scale=PAPER_GRADIENT_SCALE)
    network = dueling_network(model)
    network.set_training_mode(True)
    scales_seen = []
    # What another user of the network (a training step on another thread, a hook) would see during the call
    hook = network.value_net.register_forward_hook(lambda *_: scales_seen.append(network.shared_gradient_scale))
    try:
        explain(model, np.zeros((3, 4)))
    finally:
        hook.remove()
    assert scales_seen == [PAPER_GRADIENT_SCALE]
    assert network.training and all(module.training for module in network.modules())
    assert network.shared_gradient_scale == PAPER_GRADIENT_SCALE
