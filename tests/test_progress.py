"""Progress lines for runs whose output goes to a file or a pipe."""

import io
import re

import pytest
from stable_baselines3.common.callbacks import ProgressBarCallback

from sb3_dueling import DuelingDQN
from sb3_dueling.progress import ProgressLogCallback, progress_callback

LINE = re.compile(
    r"steps (\d+)/(\d+) \((\d+)%\), (\d+) steps/s(, \d+:\d\d:\d\d left)?(, mean episode return [\d.-]+ \(last (\d+)\))?"
)


def test_lines_count_the_steps_of_each_learn_call(small):
    stream = io.StringIO()
    model = DuelingDQN("MlpPolicy", "CartPole-v1", seed=0, **small)
    model.learn(300, callback=ProgressLogCallback(interval=0, stream=stream))
    model.learn(200, callback=ProgressLogCallback(interval=0, stream=stream), reset_num_timesteps=False)

    matches = [LINE.fullmatch(line) for line in stream.getvalue().splitlines()]
    assert all(matches), stream.getvalue()
    steps = [(int(match[1]), int(match[2])) for match in matches if match]
    # a line at every step and one at the end of each learn() call; the second call's total counts the first
    assert len(steps) == 300 + 1 + 200 + 1
    assert steps[0] == (1, 300) and steps[300] == (300, 300)
    assert steps[301] == (301, 500) and steps[-1] == (500, 500)
    last = matches[-1]
    assert last is not None and last[3] == "100" and last[5] == ", 0:00:00 left"
    # CartPole episodes of a barely trained agent are short: some have ended and are averaged
    assert last[6] is not None and int(last[7]) == len(model.ep_info_buffer) > 0


def test_interval_spaces_the_lines(small):
    stream = io.StringIO()
    DuelingDQN("MlpPolicy", "CartPole-v1", seed=0, **small).learn(300, callback=ProgressLogCallback(3600, stream))
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[-1]]
    assert stream.getvalue().startswith("steps 300/300 (100%)")


def test_bad_interval():
    with pytest.raises(ValueError, match="interval"):
        ProgressLogCallback(interval=-1)


@pytest.mark.parametrize("terminal, expected", [(True, ProgressBarCallback), (False, ProgressLogCallback)])
def test_progress_callback_fits_the_output(monkeypatch, terminal, expected):
    stdout = io.StringIO()
    monkeypatch.setattr(stdout, "isatty", lambda: terminal)
    monkeypatch.setattr("sys.stdout", stdout)
    assert type(progress_callback()) is expected
