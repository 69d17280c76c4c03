"""
The figures of the Zoo's plot commands, saved to files: the Zoo only shows them (``plt.show()``),
which on a machine without a display shows nothing and writes nothing.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib import pyplot as plt
from matplotlib.backends import BackendFilter, backend_registry


@dataclass(frozen=True)
class FigureFiles:
    """
    Where a plot command's figures go: ``<folder>/<prefix><figure label>.png``.

    :param folder: The folder of the files (made if missing)
    :param prefix: The start of each file name
    """

    folder: Path
    prefix: str

    def save_open_figures(self) -> list[Path]:
        """Save each open figure and say where."""
        self.folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for number in plt.get_fignums():
            figure = plt.figure(number)
            label = re.sub(r"[^\w.-]+", "_", str(figure.get_label())).strip("_") or f"figure_{number}"
            path = self.folder / f"{self.prefix}{label}.png"
            figure.savefig(path)
            print(f"Saved the figure to {path}")
            paths.append(path)
        return paths


def has_display() -> bool:
    """Whether Matplotlib's backend shows figures in windows (not Agg, as on a machine without a display)."""
    return matplotlib.get_backend().lower() not in backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE)
