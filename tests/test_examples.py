"""The examples run as a user would run them (with tiny budgets)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize(
    "script, args, expected",
    [
        ("cartpole.py", ["--timesteps", "1500", "--eval-episodes", "2"], "reloaded: mean return"),
        ("notebook_cartpole.py", ["--timesteps", "700"], "notebook experiment, 700 steps: mean return"),
        ("drop_in.py", ["--timesteps", "300"], "stock DQN with DuelingMlpPolicy: mean return"),
        ("atari.py", ["--timesteps", "200", "--learning-starts", "100", "--buffer-size", "500"], "200 steps on "),
    ],
)
def test_example_runs(tmp_path, script, args, expected):
    if script == "cartpole.py":
        args = [*args, "--output", str(tmp_path / "model")]
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_cartpole_example_never_overwrites(tmp_path):
    (tmp_path / "model.zip").write_text("an earlier model")
    command = [sys.executable, str(EXAMPLES / "cartpole.py"), "--timesteps", "200", "--eval-episodes", "1"]
    result = subprocess.run([*command, "--output", str(tmp_path / "model")], capture_output=True, text=True, check=True)
    assert (tmp_path / "model.zip").read_text() == "an earlier model"
    assert (tmp_path / "model_1.zip").exists()
    assert f"model to {tmp_path / 'model_1.zip'}, reloaded" in result.stdout
