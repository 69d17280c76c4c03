"""
Fingerprint of the training step: a SHA-256 of the network parameters after a few hundred updates.

Trains ``DuelingDQN`` on CartPole-v1 on the CPU, one thread, fixed seed, in four configurations
(DQN's max target, the Double DQN target, prioritized replay, 3-step returns), and ``DuelingQRDQN`` in
three (the Double target, QR-DQN's own, prioritized replay with 3-step returns), and prints one hash of
all the parameters and buffers of the online and the target network per configuration. Run it
before and after a change of the update: identical hashes mean the change computes exactly what
the code computed before.

    python -m benchmarks.update_identity
    PYTHONPATH=/path/to/other/checkout python benchmarks/update_identity.py   # the same for another checkout
"""

import hashlib
from typing import Any

import torch as th

from sb3_dueling import DuelingDQN, DuelingQRDQN, PrioritizedReplayBuffer

# A learning rate and a target update interval large enough for the online and the target network to
# pick different next actions (else the Double and the max target would agree)
SETTINGS: dict[str, Any] = dict(
    learning_starts=100, learning_rate=1e-3, buffer_size=1_000, train_freq=1, target_update_interval=250
)
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "max target": dict(double_q=False),
    "Double DQN target": dict(),
    "prioritized replay": dict(replay_buffer_class=PrioritizedReplayBuffer),
    "3-step returns": dict(n_steps=3),
}
QUANTILE_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "quantile Double": dict(),
    "quantile max": dict(double_q=False),
    "quantile PER 3-step": dict(replay_buffer_class=PrioritizedReplayBuffer, n_steps=3),
}
TIMESTEPS = 600  # 500 gradient updates


def parameters_sha256(model: DuelingDQN | DuelingQRDQN) -> str:
    """SHA-256 of every parameter and buffer of the online and the target network, in a fixed order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    th.set_num_threads(1)
    runs: list[tuple[type[DuelingDQN | DuelingQRDQN], str, dict[str, Any]]]
    runs = [(DuelingDQN, name, kwargs) for name, kwargs in CONFIGURATIONS.items()]
    quantiles = dict(policy_kwargs=dict(n_quantiles=7))
    runs += [(DuelingQRDQN, name, {**kwargs, **quantiles}) for name, kwargs in QUANTILE_CONFIGURATIONS.items()]
    for learner, name, kwargs in runs:
        model = learner("MlpPolicy", "CartPole-v1", seed=0, device="cpu", **SETTINGS, **kwargs)
        model.learn(TIMESTEPS)
        print(f"{name:<20} updates {model._n_updates}  sha256 {parameters_sha256(model)}")


if __name__ == "__main__":
    main()
