"""The states of the global random number generators a run draws from, saved and set again on resume."""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch as th


def get_random_state() -> dict[str, Any]:
    """The states of Python's, NumPy's, PyTorch's and CUDA's global generators."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": th.get_rng_state(),
        "cuda": th.cuda.get_rng_state_all() if th.cuda.is_available() else [],
    }


def set_random_state(state: dict[str, Any]) -> None:
    """Set the global generators to the states ``get_random_state`` gave."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])
    if state["cuda"] and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def random_state_kept() -> Iterator[None]:
    """Give the global generators back the states they had on entry, whatever ran inside (SB3's ``load`` reseeds them)."""
    state = get_random_state()
    try:
        yield
    finally:
        set_random_state(state)
