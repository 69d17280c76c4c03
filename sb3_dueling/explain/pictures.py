"""Pictures of the two streams: saliency overlays for image observations, timelines and heat maps for vectors."""

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageDraw

from sb3_dueling.explain.explanation import Explanation

#: Names of the observation features of Gymnasium's classic envs (from their documentation)
FEATURE_NAMES = {
    "CartPole": ["cart position", "cart velocity", "pole angle", "pole angular velocity"],
    "Acrobot": ["cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ1 velocity", "θ2 velocity"],
    "MountainCar": ["position", "velocity"],
    "LunarLander": [
        "x",
        "y",
        "x velocity",
        "y velocity",
        "angle",
        "angular velocity",
        "left leg contact",
        "right leg contact",
    ],
}
VALUE_COLOUR = np.array([1.0, 0.35, 0.0])  # orange
ADVANTAGE_COLOUR = np.array([0.0, 0.6, 1.0])  # blue


def feature_names(env_id: str, n_features: int) -> list[str]:
    """The env's feature names where known, else ``obs[i]``."""
    names = FEATURE_NAMES.get(env_id.split("/")[-1].split("-")[0], [])
    return names if len(names) == n_features else [f"obs[{i}]" for i in range(n_features)]


def saliency_scale(saliency: np.ndarray) -> float:
    """A display scale shared by a whole episode: its 99.5th percentile (so one hot pixel does not dim the rest)."""
    positive = saliency[saliency > 0]
    return float(np.percentile(positive, 99.5)) if positive.size else 1.0


def image_planes(observation: np.ndarray, saliency_value: np.ndarray, saliency_advantage: np.ndarray) -> tuple:
    """The grey frame (H, W) of a channel-first observation and each stream's saliency summed over channels."""
    frame = observation.mean(axis=0) if observation.shape[0] == 3 else observation[-1]  # RGB, or newest stacked frame
    return frame.astype(np.float32), saliency_value.sum(axis=0), saliency_advantage.sum(axis=0)


def overlay(frame: np.ndarray, value_map: np.ndarray, advantage_map: np.ndarray, text: str, scale: int = 4) -> np.ndarray:
    """
    The paper's picture: the frame in grey, value saliency in orange and advantage saliency in blue on top.

    :param frame: grey frame (H, W), 0-255
    :param value_map: value saliency (H, W), 0-1
    :param advantage_map: advantage saliency (H, W), 0-1
    :param text: written in the top-left corner
    :param scale: upscaling factor
    :return: an RGB image, uint8, (H * scale, W * scale, 3)
    """
    grey = np.repeat((0.6 * frame / 255.0)[..., None], 3, axis=2)
    value_map, advantage_map = (np.clip(m, 0.0, 1.0)[..., None] for m in (value_map, advantage_map))
    rgb = grey * (1 - 0.5 * np.maximum(value_map, advantage_map)) + value_map * VALUE_COLOUR + advantage_map * ADVANTAGE_COLOUR
    image = Image.fromarray((np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8))
    image = image.resize((frame.shape[1] * scale, frame.shape[0] * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, image.width, 13), fill=(0, 0, 0))
    draw.text((2, 1), text, fill=(255, 255, 255))
    return np.asarray(image)


def save_image_episode(
    observations: np.ndarray, explanation: Explanation, folder: Path, action_names: Sequence[str] | None = None, scale: int = 4
) -> tuple[list[Path], Path]:
    """Write one overlay PNG per step and an animated GIF of the episode; return their paths."""
    folder.mkdir(parents=True)
    value_scale = saliency_scale(explanation.value_saliency.sum(axis=1))
    advantage_scale = saliency_scale(explanation.advantage_saliency.sum(axis=1))
    frames, paths = [], []
    for step, observation in enumerate(observations):
        frame, value_map, advantage_map = image_planes(
            observation, explanation.value_saliency[step], explanation.advantage_saliency[step]
        )
        action = int(explanation.action[step])
        name = action_names[action] if action_names else str(action)
        text = f"step {step}  V {explanation.value[step]:.2f}  action {name}"
        picture = overlay(frame, value_map / value_scale, advantage_map / advantage_scale, text, scale)
        paths.append(folder / f"frame_{step:05d}.png")
        Image.fromarray(picture).save(paths[-1])
        frames.append(Image.fromarray(picture))
    gif = folder.with_suffix(".gif")
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50, loop=0)
    return paths, gif


def plot_vector_episode(explanation: Explanation, names: Sequence[str], title: str, path: Path) -> Path:
    """V(s), the advantage gap and the chosen action over the episode, and each stream's saliency per feature."""
    steps = np.arange(len(explanation.value))
    figure, axes = plt.subplots(5, 1, figsize=(11, 11), sharex=True, gridspec_kw={"height_ratios": [1.2, 1.2, 0.8, 1.5, 1.5]})
    axes[0].plot(steps, explanation.value, color="C1")
    axes[0].set_ylabel("V(s)")
    axes[1].plot(steps, explanation.advantage_gap, color="C0")
    axes[1].set_ylabel("A gap\n(best - 2nd)")
    axes[2].scatter(steps, explanation.action, s=4, color="k")
    axes[2].set_ylabel("action")
    axes[2].set_yticks(range(explanation.advantage.shape[1]))
    for axis, saliency, label, cmap in (
        (axes[3], explanation.value_saliency, "value saliency |dV/ds|", "Oranges"),
        (axes[4], explanation.advantage_saliency, "advantage saliency |dA(s,a*)/ds|", "Blues"),
    ):
        # Each feature's saliency relative to the largest of that stream in the episode
        image = axis.imshow(saliency.T / max(saliency.max(), 1e-12), aspect="auto", cmap=cmap, interpolation="nearest")
        axis.set_yticks(range(len(names)), names)
        axis.set_title(label, fontsize=10, loc="left")
        figure.colorbar(image, ax=axis, pad=0.01, fraction=0.02)
    axes[-1].set_xlabel("step")
    for axis in axes[:3]:
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
