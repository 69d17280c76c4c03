"""Training progress that shows in a log file too: SB3's progress bar draws only on a terminal."""

import sys
import time
from datetime import timedelta
from typing import TextIO

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback


class ProgressLogCallback(BaseCallback):
    """
    Print one line of progress every ``interval`` seconds and at the end of training: env steps
    done and total, env steps per second, time left and the mean return of the last episodes
    (those SB3's ``Monitor`` recorded, as in ``rollout/ep_rew_mean``).

    :param interval: seconds between two lines (0: a line at every env step)
    :param stream: where to write (default: ``sys.stdout`` at the time of writing)
    """

    def __init__(self, interval: float = 30.0, stream: TextIO | None = None) -> None:
        super().__init__()
        if interval < 0:
            raise ValueError(f"interval must be a number of seconds >= 0, got {interval}")
        self.interval = interval
        self.stream = stream
        self.total_timesteps = 0
        self.start_timesteps = 0
        self.start_time = self.last_print = 0.0

    def _on_training_start(self) -> None:
        # SB3 passes learn()'s locals: total_timesteps already counts the steps of earlier learn() calls
        self.total_timesteps = int(self.locals["total_timesteps"])
        self.start_timesteps = self.num_timesteps
        self.start_time = self.last_print = time.monotonic()

    def _on_step(self) -> bool:
        if time.monotonic() - self.last_print >= self.interval:
            self.print_progress()
        return True

    def _on_training_end(self) -> None:
        self.print_progress()

    def print_progress(self) -> None:
        """Write the progress line now."""
        now = time.monotonic()
        self.last_print = now
        rate = (self.num_timesteps - self.start_timesteps) / max(now - self.start_time, 1e-9)
        left = max(self.total_timesteps - self.num_timesteps, 0)
        line = f"steps {self.num_timesteps}/{self.total_timesteps} ({self.num_timesteps / max(self.total_timesteps, 1):.0%})"
        line += f", {rate:.0f} steps/s"
        if rate > 0:
            line += f", {timedelta(seconds=round(left / rate))} left"
        episodes = self.model.ep_info_buffer
        if episodes:
            line += f", mean episode return {np.mean([info['r'] for info in episodes]):.1f} (last {len(episodes)})"
        print(line, file=self.stream or sys.stdout, flush=True)


def progress_callback(interval: float = 30.0) -> BaseCallback:
    """
    The progress display that fits where the output goes.

    :param interval: seconds between two lines when the output is not a terminal
    :return: SB3's progress bar when standard output is a terminal, else a ``ProgressLogCallback``
    """
    return ProgressBarCallback() if sys.stdout.isatty() else ProgressLogCallback(interval)
