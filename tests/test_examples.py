"""The examples run as a user would run them (with tiny budgets)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize(
    "script, args, expected",
    [
        ("cartpole.py", ["--timesteps", "1500", "--eval-episodes", "2"], ["steps 1536/1500 (102%)", "reloaded: mean return"]),
        (
            "notebook_cartpole.py",
            ["--timesteps", "700"],
            ["steps 700/700 (100%)", "notebook experiment, 700 steps: mean return"],
        ),
        ("drop_in.py", ["--timesteps", "300", "--threads", "2"], ["stock DQN with DuelingMlpPolicy: mean return"]),
        (
            "atari.py",
            ["--timesteps", "200", "--learning-starts", "100", "--buffer-size", "500"],
            ["steps 200/200 (100%)", "200 steps on "],
        ),
    ],
)
def test_example_runs(tmp_path, script, args, expected):
    if script == "cartpole.py":
        args = [*args, "--output", str(tmp_path / "model")]
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # stdout is a pipe here: progress comes as lines (the last one at the end of training), not as a bar;
    # an off-policy run ends with its last whole rollout (cartpole.py: 6 of train_freq=256 steps)
    for line in expected:
        assert line in result.stdout


def test_cartpole_example_never_overwrites(tmp_path):
    (tmp_path / "model.zip").write_text("an earlier model")
    command = [sys.executable, str(EXAMPLES / "cartpole.py"), "--timesteps", "200", "--eval-episodes", "1"]
    result = subprocess.run([*command, "--output", str(tmp_path / "model")], capture_output=True, text=True, check=True)
    assert (tmp_path / "model.zip").read_text() == "an earlier model"
    assert (tmp_path / "model_1.zip").exists()
    assert f"model to {tmp_path / 'model_1.zip'}, reloaded" in result.stdout
