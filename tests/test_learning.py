"""Learning tests: one small deterministic one in the default run, the CartPole goal marked slow."""

import subprocess
import sys
from pathlib import Path

import pytest

from sb3_dueling import DuelingDQN
from tests.cases import IDENTITY_SETTINGS, identity_env, identity_return

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize("double_q", [True, False])
def test_learns_identity(double_q):
    model = DuelingDQN("MlpPolicy", identity_env(), policy_kwargs=dict(net_arch=[32]), double_q=double_q, **IDENTITY_SETTINGS)
    model.learn(3000)
    assert identity_return(model) >= 9.5


@pytest.mark.slow
def test_cartpole_example_reaches_475(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "cartpole.py"), "--seed", "0", "--output", str(tmp_path / "model")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [line for line in out.splitlines() if "mean return" in line]
    returns = {line.split()[0]: float(line.split("mean return ")[1].split()[0]) for line in lines}
    assert set(returns) == {"final", "best", "saved"}, out
    assert returns["best"] >= 475 and returns["saved"] >= 475, out
    assert (tmp_path / "model.zip").exists()
