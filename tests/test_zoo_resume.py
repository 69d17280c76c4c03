"""The Zoo's ``train --resume`` refuses a checkpoint of another algorithm before it writes anything."""

import re

import numpy as np
import pytest

from sb3_dueling import DuelingDQN, DuelingQRDQN
from sb3_dueling.checkpoints import save_checkpoint
from sb3_dueling.user_input import UsageError
from sb3_dueling.zoo.__main__ import main
from sb3_dueling.zoo.checkpointing import check_resumable, resume_model
from sb3_dueling.zoo.patches import zoo_patches


def test_resume_of_a_dueling_qrdqn_checkpoint_as_dueling_dqn_is_refused(tmp_path, monkeypatch, capsys):
    checkpoints = tmp_path / "checkpoints"
    save_checkpoint(DuelingQRDQN("MlpPolicy", "CartPole-v1", buffer_size=100), checkpoints)
    monkeypatch.chdir(tmp_path)
    command = ["train", "--algo", "dueling_dqn", "--env", "CartPole-v1", "-n", "100", "-f", "logs"]
    assert main([*command, "--resume", str(checkpoints)]) == 2  # the exit code
    assert capsys.readouterr().err == (
        f"error: --resume {checkpoints}: its checkpoint step_000000000000 was saved by DuelingQRDQN "
        "(sb3_dueling.dueling_qrdqn:DuelingQRDQN), and --algo dueling_dqn trains DuelingDQN: "
        "resume it with --algo dueling_qrdqn\n"
    )
    assert not (tmp_path / "logs").exists()  # nothing written


@pytest.mark.parametrize("algo, refused", [("dqn", True), ("qrdqn", True), ("dueling_dqn", False)])
def test_resume_needs_the_algorithm_that_saved_the_checkpoint(tmp_path, algo, refused):
    save_checkpoint(DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=100), tmp_path)
    with zoo_patches():
        if not refused:
            check_resumable(tmp_path, algo)
            return
        message = f"and --algo {algo} trains {algo.upper()}: resume it with --algo dueling_dqn"
        with pytest.raises(UsageError, match=re.escape(message)):
            check_resumable(tmp_path, algo)


def test_resume_model_continues_the_saved_random_generators(tmp_path):
    # Loading to evaluate leaves the process's generators alone; the Zoo's --resume goes on where the run was
    model = DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=100, seed=3)
    np.random.seed(11)
    save_checkpoint(model, tmp_path)
    expected = np.random.random(3)
    np.random.seed(99)
    resume_model(tmp_path, model, 1_000)
    np.testing.assert_array_equal(np.random.random(3), expected)
