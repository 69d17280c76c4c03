"""Settings and fixtures shared by the tests."""

import os
from typing import Any

import pytest
import torch as th

# The networks in the tests are tiny: one thread is faster, and keeps parallel test processes
# (and the example scripts they start) from fighting over the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
th.set_num_threads(1)

#: Off-policy settings small enough for a few hundred steps of CartPole to train
SMALL_SETTINGS: dict[str, Any] = dict(
    learning_starts=50, buffer_size=500, batch_size=16, train_freq=4, target_update_interval=50
)


@pytest.fixture
def small() -> dict[str, Any]:
    """A fresh copy of :data:`SMALL_SETTINGS`, for ``DuelingDQN(..., **small)``."""
    return dict(SMALL_SETTINGS)
