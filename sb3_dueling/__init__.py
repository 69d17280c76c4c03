import os

from sb3_dueling.buffers import PrioritizedDictReplayBuffer, PrioritizedReplayBuffer
from sb3_dueling.dueling_dqn import DuelingDQN
from sb3_dueling.dueling_qrdqn import DuelingQRDQN
from sb3_dueling.policies import (
    DuelingCnnPolicy,
    DuelingDQNPolicy,
    DuelingMlpPolicy,
    DuelingMultiInputPolicy,
    DuelingNatureCnnPolicy,
)
from sb3_dueling.quantile_policies import (
    DuelingQRDQNCnnPolicy,
    DuelingQRDQNMlpPolicy,
    DuelingQRDQNMultiInputPolicy,
    DuelingQRDQNNatureCnnPolicy,
    DuelingQRDQNPolicy,
)
from sb3_dueling.rainbow import Rainbow
from sb3_dueling.rainbow_policies import (
    RainbowCnnPolicy,
    RainbowMlpPolicy,
    RainbowMultiInputPolicy,
    RainbowNatureCnnPolicy,
    RainbowPolicy,
)
from sb3_dueling.registration import register_dueling_policies

# Read version from file
version_file = os.path.join(os.path.dirname(__file__), "version.txt")
with open(version_file) as file_handler:
    __version__ = file_handler.read().strip()

register_dueling_policies()

__all__ = [
    "DuelingCnnPolicy",
    "DuelingDQN",
    "DuelingDQNPolicy",
    "DuelingMlpPolicy",
    "DuelingMultiInputPolicy",
    "DuelingNatureCnnPolicy",
    "DuelingQRDQN",
    "DuelingQRDQNCnnPolicy",
    "DuelingQRDQNMlpPolicy",
    "DuelingQRDQNMultiInputPolicy",
    "DuelingQRDQNNatureCnnPolicy",
    "DuelingQRDQNPolicy",
    "PrioritizedDictReplayBuffer",
    "PrioritizedReplayBuffer",
    "Rainbow",
    "RainbowCnnPolicy",
    "RainbowMlpPolicy",
    "RainbowMultiInputPolicy",
    "RainbowNatureCnnPolicy",
    "RainbowPolicy",
    "register_dueling_policies",
]
