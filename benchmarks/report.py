"""
Statistics, plots and ``docs/benchmark.md`` from the result files of ``benchmarks.grid`` and ``benchmarks.minatar``.

    python -m benchmarks.report [--results benchmarks/results] [--minatar-results benchmarks/results/minatar]
        [--docs docs] [--reps 2000]

(from the repository's root; or by path from anywhere: ``python path/to/benchmarks/report.py``)

All statistics are rliable's (Agarwal et al. 2021): the interquartile mean (IQM) of the final
evaluation returns with 95% stratified-bootstrap confidence intervals, per environment and over
all environments (returns normalised by a random policy's and the goal's score), the probability
that DuelingDQN improves on DQN (and prioritized replay on DuelingDQN), and sample-efficiency
curves (IQM over the evaluations, with CI bands); the same for DuelingQRDQN against QR-DQN and
DuelingDQN. Speed and memory are the medians over the seeds of the same runs. A partial grid (cells
with fewer seeds, or none yet) is reported as it is, with the number of seeds of each cell. Result
files written with other hyperparameters than the YAML files have now are left out (and named in the
report).

The MinAtar suite (DQN and Rainbow on three games) has a section of its own with the same statistics: the IQM per
game beside Revisiting Rainbow's published figures, P(Rainbow > DQN) per game and over the suite against the
issue's goal, and the curves. Its files made with other hyperparameters than ``benchmarks/minatar.py`` has now, or
with other settings than its protocol's, are left out and named; what the suite still lacks is said.
"""

import sys
from pathlib import Path

if not __package__:  # run by path: import the benchmarks as from the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from rliable import library as rly
from rliable import metrics

from benchmarks.arguments import positive_int
from benchmarks.grid import RESULTS, Run, Settings, describe, has_current_hyperparameters, made_with
from benchmarks.minatar import BUDGET, GAMES, MinAtarRun

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
# (score of a uniformly random policy, goal of the benchmark issue): normalised = (x - random) / (goal - random)
REFERENCE_SCORES = {
    "CartPole-v1": (22.0, 500.0),
    "Acrobot-v1": (-500.0, -75.0),
    "LunarLander-v3": (-180.0, 230.0),
    "MountainCar-v0": (-200.0, -105.0),
}
CANDIDATE, BASELINE = "DuelingDQN", "DQN"
DUELING_ALONE = "DuelingDQN(double_q=False)"
QUANTILE_CANDIDATE, QUANTILE_BASELINE = "DuelingQRDQN", "QRDQN"
QUANTILE_DUELING_ALONE = "DuelingQRDQN(double_q=False)"
RAINBOW = "Rainbow"
RAINBOW_ABLATIONS = [
    f"Rainbow({part})"
    for part in ("dueling=False", "double_q=False", "prioritized=False", "n_steps=1", "distribution=None", "noisy=False")
]
# (candidate, baseline) pairs for the probability of improvement; the ablations say how much of a dueling
# learner's difference to its baseline comes from the dueling network and how much from the Double target
COMPARISONS = [
    (CANDIDATE, BASELINE),
    (DUELING_ALONE, BASELINE),
    (CANDIDATE, DUELING_ALONE),
    ("DuelingDQN+PER", CANDIDATE),
    (QUANTILE_CANDIDATE, QUANTILE_BASELINE),
    (QUANTILE_CANDIDATE, CANDIDATE),
    (QUANTILE_DUELING_ALONE, QUANTILE_BASELINE),
    (QUANTILE_CANDIDATE, QUANTILE_DUELING_ALONE),
    (RAINBOW, BASELINE),
    (RAINBOW, QUANTILE_CANDIDATE),
    # What each part is worth inside Rainbow: the full agent against the agent without it
    *((RAINBOW, ablation) for ablation in RAINBOW_ABLATIONS),
    ("Rainbow(distribution=quantile)", RAINBOW),
]
# The goals of the benchmark issues for each candidate (IQM of the final return), next to its baseline's IQM
GOALS = {
    CANDIDATE: (BASELINE, {env: goal for env, (_, goal) in REFERENCE_SCORES.items()}),
    QUANTILE_CANDIDATE: (
        QUANTILE_BASELINE,
        {"CartPole-v1": 500.0, "Acrobot-v1": -70.0, "LunarLander-v3": 230.0, "MountainCar-v0": -100.0},
    ),
    RAINBOW: (BASELINE, {"CartPole-v1": 500.0, "Acrobot-v1": -68.0, "LunarLander-v3": 250.0, "MountainCar-v0": -100.0}),
}
Records = dict[str, dict[str, list[dict[str, Any]]]]  # env -> algo -> runs
# Revisiting Rainbow (Obando-Ceron & Castro 2021), figure 2: the final returns at 10M frames, read off the plot
# (about +-1; the paper prints no table), returns of the training episodes
PUBLISHED_MINATAR = {
    "Breakout": {BASELINE: 7.5, RAINBOW: 11.3},
    "Asterix": {BASELINE: 28.0, RAINBOW: 42.0},
    "SpaceInvaders": {BASELINE: 34.0, RAINBOW: 93.0},
}
# The MinAtar issue's goal: Rainbow ahead of DQN on each game, and P(Rainbow > DQN) over the suite at least this
MINATAR_GOAL = 0.75
# Seeds per (algorithm, game) of a full suite: the paper's 10 runs (and the grid's default --seeds)
MINATAR_SEEDS = 10


def load_results(results: Path, kind: type[Run] = Run) -> tuple[Records, list[Path]]:
    """
    The current results (env -> algo -> runs), and the files run with other hyperparameters than the YAML's.

    :param kind: The kind of run the files are results of: the grid's, or another suite's (``MinAtarRun``)
    """
    records: Records = defaultdict(lambda: defaultdict(list))
    stale = []
    for path in sorted(results.glob("*/*/seed_*.json")):
        record = json.loads(path.read_text())
        if has_current_hyperparameters(record, kind(record["algo"], record["env"], record["seed"])):
            records[record["env"]][record["algo"]].append(record)
        else:
            stale.append(path)
    return records, stale


def load_minatar_results(results: Path) -> tuple[Records, dict[Path, str]]:
    """
    The MinAtar suite's current results (game -> algo -> runs), and the files left out with why: run with other
    hyperparameters than ``benchmarks/minatar.py`` has now, or with other settings than its protocol's (budget, evaluations).
    """
    records, stale = load_results(results, MinAtarRun)
    left_out = dict.fromkeys(stale, "other hyperparameters than `benchmarks/minatar.py` has now")
    current: Records = defaultdict(lambda: defaultdict(list))
    for game, algos in records.items():
        for algo, runs in algos.items():
            for record in runs:
                run = MinAtarRun(algo, game, record["seed"])
                protocol = Settings(eval_freq=run.eval_freq).of(run)
                if made_with(record, protocol):
                    current[game][algo].append(record)
                else:
                    left_out[run.path(results)] = (
                        f"other settings ({describe(record, protocol)}; the protocol's: {describe(protocol)})"
                    )
    return current, left_out


def load_atari_results(results: Path) -> dict[str, list[dict[str, Any]]]:
    """The result files of ``benchmarks.atari`` by folder (one folder per set of runs made side by side)."""
    sets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted((results / "atari").rglob("*.json")):
        sets[str(path.parent.relative_to(results))].append(json.loads(path.read_text()))
    return dict(sets)


def iqm(scores: np.ndarray) -> np.ndarray:
    return np.array([metrics.aggregate_iqm(scores)])


def iqm_per_point(scores: np.ndarray) -> np.ndarray:
    return np.array([metrics.aggregate_iqm(scores[..., point]) for point in range(scores.shape[-1])])


def normalised(score: np.ndarray, env: str) -> np.ndarray:
    random_score, goal = REFERENCE_SCORES[env]
    return (score - random_score) / (goal - random_score)


def with_interval(point: np.ndarray, interval: np.ndarray) -> tuple[float, float, float]:
    """(point estimate, CI low, CI high) of a one-value rliable estimate."""
    low, high = np.ravel(interval)
    return float(np.ravel(point)[0]), float(low), float(high)


def estimate(scores: dict[str, Any], func: Callable[..., np.ndarray], reps: int, seed: int = 0) -> tuple[dict, dict]:
    """rliable's point estimates and 95% stratified-bootstrap CIs of ``func`` on each entry of ``scores``."""
    # rliable 1.2 draws its resamples from NumPy's global generator, whatever `random_state` says: seed that one,
    # afresh per estimate, so the report is reproducible and adding an env changes no other number
    caller_state = np.random.get_state()
    np.random.seed(seed)
    try:
        return rly.get_interval_estimates(scores, func, reps=reps)
    finally:
        np.random.set_state(caller_state)


def final_returns(runs: dict[str, list[dict[str, Any]]]) -> dict[str, np.ndarray]:
    """Each algorithm's final returns as rliable takes them (runs x 1 task), from its result records."""
    return {algo: np.array([[r["final_return"]] for r in records]) for algo, records in runs.items()}


def iqms(scores: dict[str, np.ndarray], reps: int, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """The IQM of each algorithm's scores (runs x tasks), with its CI."""
    points, intervals = estimate(scores, iqm, reps, seed)
    return {algo: with_interval(points[algo], intervals[algo]) for algo in points}


def improvement_probability(
    name: str, candidate: np.ndarray, baseline: np.ndarray, reps: int, seed: int = 0
) -> tuple[float, float, float]:
    """P(candidate > baseline), averaged over the tasks (the scores' columns), with its CI."""
    points, intervals = estimate({name: (candidate, baseline)}, metrics.probability_of_improvement, reps, seed)
    return with_interval(points[name], intervals[name])


def iqm_curves(runs: dict[str, list[dict[str, Any]]], reps: int, seed: int = 0) -> dict[str, Any]:
    """Sample-efficiency curves of one env: each algorithm's evaluation steps, IQM over its seeds and CI bands."""
    # each algorithm's own evaluation steps (the same for all in a full grid; a quick check may differ)
    timesteps = {algo: records[0]["timesteps"] for algo, records in runs.items()}
    returns = {algo: np.array([[r["eval_returns"]] for r in records]) for algo, records in runs.items()}  # runs x 1 x points
    points, intervals = estimate(returns, iqm_per_point, max(reps // 4, 50), seed)
    return {"timesteps": timesteps, "iqm": points, "ci": intervals}


def summarise(records: Records, reps: int, seed: int = 0) -> dict[str, Any]:
    """Every number of the report, computed with rliable."""
    envs = [env for env in REFERENCE_SCORES if env in records]
    algos = sorted({algo for env in envs for algo in records[env]})
    finals = {env: final_returns(records[env]) for env in envs}
    per_env = {env: iqms(finals[env], reps, seed) for env in envs}

    # Over all envs: runs x envs, normalised; only algorithms with as many seeds in every env
    complete = complete_algorithms(finals, algos)
    overall_scores = {algo: np.hstack([normalised(finals[env][algo], env) for env in envs]) for algo in complete}
    overall = iqms(overall_scores, reps, seed) if overall_scores else {}

    improvement: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {}
    for candidate, baseline in COMPARISONS:
        pairs = {
            env: (finals[env][candidate], finals[env][baseline]) for env in envs if {candidate, baseline} <= set(finals[env])
        }
        if {candidate, baseline} <= set(overall_scores):
            pairs["all (normalised)"] = (overall_scores[candidate], overall_scores[baseline])
        for name, pair in pairs.items():
            improvement.setdefault((candidate, baseline), {})[name] = improvement_probability(name, *pair, reps, seed)

    curves = {env: iqm_curves(records[env], reps, seed) for env in envs}
    resources = {
        env: {
            algo: (
                float(np.median([r["steps_per_second"] for r in records[env][algo]])),
                float(np.median([r["peak_rss_mb"] for r in records[env][algo]])),
                len(records[env][algo]),
            )
            for algo in records[env]
        }
        for env in envs
    }
    return {"envs": envs, "algos": algos, "per_env": per_env, "overall": overall, "improvement": improvement,
            "curves": curves, "resources": resources}  # fmt: skip


def complete_algorithms(finals: dict[str, dict[str, np.ndarray]], algos: Sequence[str]) -> list[str]:
    """The algorithms with results in every env of ``finals`` (env -> algo -> runs), as many seeds in each."""
    n_runs = {algo: {len(finals[env].get(algo, [])) for env in finals} for algo in algos}
    return [algo for algo in algos if len(n_runs[algo]) == 1 and 0 not in n_runs[algo]]


def plot_curves(
    curves: dict[str, dict[str, Any]],
    colors: dict[str, str],
    references: dict[str, list[tuple[float, str]]],
    title: str,
    path: Path,
) -> Path:
    """
    Sample-efficiency curves, one panel per env (``curves``: env -> :func:`iqm_curves`), in a PNG file.

    :param references: Dotted lines per env: (return, color)
    """
    envs = list(curves)
    # Figures of their own, drawn by Agg whatever pyplot's backend is: no windows, no global state
    figure = Figure(figsize=(max(4.2 * len(envs), 8.0), 4.2))
    axes = figure.subplots(1, len(envs), squeeze=False)
    for ax, env in zip(axes[0], envs):
        curve = curves[env]
        for algo, points in curve["iqm"].items():
            steps = np.array(curve["timesteps"][algo]) / 1000
            ax.plot(steps, points, color=colors[algo], label=algo, linewidth=2)
            ax.fill_between(steps, curve["ci"][algo][0], curve["ci"][algo][1], color=colors[algo], alpha=0.2)
        for value, color in references.get(env, []):
            ax.axhline(value, color=color, linestyle=":", linewidth=1)
        ax.set(title=env, xlabel="env steps (thousands)", ylabel="IQM return")
        ax.grid(alpha=0.3)
    legend = {
        label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels())
    }  # all envs' algorithms
    figure.legend(
        legend.values(), legend.keys(), loc="lower center", ncol=min(len(legend), 4), fontsize="small", frameon=False
    )
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def summarise_minatar(records: Records, reps: int, seed: int = 0) -> dict[str, Any]:
    """The MinAtar section's numbers: IQMs per game, P(Rainbow > DQN) per game and over the suite, curves."""
    games = [game for game in GAMES if game in records]
    finals = {game: final_returns(records[game]) for game in games}
    compared = [game for game in games if {RAINBOW, BASELINE} <= set(finals[game])]
    improvement = {
        game: improvement_probability(game, finals[game][RAINBOW], finals[game][BASELINE], reps, seed) for game in compared
    }
    # Over the suite as rliable takes it: runs x games, averaged over the games; as many seeds in each game
    suite = {game: finals[game] for game in compared}
    if suite and complete_algorithms(suite, [RAINBOW, BASELINE]) == [RAINBOW, BASELINE]:
        rainbow, dqn = (np.hstack([suite[game][algo] for game in suite]) for algo in (RAINBOW, BASELINE))
        improvement["suite"] = improvement_probability("suite", rainbow, dqn, reps, seed)
    return {
        "games": games,
        "per_game": {game: iqms(finals[game], reps, seed) for game in games},
        "seeds": {game: {algo: len(runs) for algo, runs in records[game].items()} for game in games},
        "improvement": improvement,
        "suite": list(suite),
        "curves": {game: iqm_curves(records[game], reps, seed) for game in games},
    }


def plot_minatar(summary: dict[str, Any], images: Path) -> Path | None:
    """The MinAtar suite's curves, one panel per game with results; ``None`` (and no figure left) without results."""
    path = images / "minatar_curves.png"
    if not summary["games"]:
        path.unlink(missing_ok=True)  # a figure of results that are no longer current
        return None
    colors = {algo: f"C{i}" for i, algo in enumerate(MinAtarRun.algos)}
    dotted = {game: [(value, colors[algo]) for algo, value in PUBLISHED_MINATAR[game].items()] for game in GAMES}
    title = "MinAtar: greedy return during training, IQM over seeds, 95% bootstrap CI (dotted: Revisiting Rainbow at 10M)"
    return plot_curves(summary["curves"], colors, dotted, title, path)


def plot(summary: dict[str, Any], images: Path) -> dict[str, Path]:
    images.mkdir(parents=True, exist_ok=True)
    colors = {algo: f"C{i}" for i, algo in enumerate(summary["algos"])}
    envs = summary["envs"]
    goals = {env: [(REFERENCE_SCORES[env][1], "grey")] for env in envs}
    title = "Greedy return during training: IQM over seeds, 95% bootstrap CI (dotted: goal)"
    paths = {"curves": plot_curves(summary["curves"], colors, goals, title, images / "learning_curves.png")}

    rows = [*envs, "all (normalised)"] if summary["overall"] else envs
    figure = Figure(figsize=(3.6 * len(rows), 0.5 + 0.45 * len(summary["algos"])))
    axes = figure.subplots(1, len(rows), squeeze=False)
    for ax, row in zip(axes[0], rows):
        table = summary["overall"] if row == "all (normalised)" else summary["per_env"][row]
        names = [algo for algo in summary["algos"] if algo in table]
        for y, algo in enumerate(names):
            point, low, high = table[algo]
            ax.barh(y, high - low, left=low, color=colors[algo], alpha=0.6, height=0.6)
            ax.plot([point, point], [y - 0.3, y + 0.3], color="black")
        ax.set_yticks(range(len(names)), names if row == rows[0] else [""] * len(names))
        ax.set_title(row, fontsize="medium")
        ax.set_xlabel("IQM of final return")
        ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    paths["iqm"] = images / "final_iqm.png"
    figure.savefig(paths["iqm"], dpi=110)
    return paths


def family_baseline(algo: str) -> str:
    """The algorithm a learner's speed and memory are compared with: QR-DQN for the quantile learners, else DQN."""
    return QUANTILE_BASELINE if "QRDQN" in algo else BASELINE


def format_interval(values: tuple[float, float, float], digits: int = 1) -> str:
    point, low, high = values
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def goals_table(summary: dict[str, Any], candidate: str) -> list[str]:
    """
    A benchmark issue's goals for ``candidate`` (see ``GOALS``): its IQM against the goal and against its
    baseline's, per env, and whether its normalised IQM is the best of the grid. Empty without results.
    """
    baseline, goals = GOALS[candidate]
    envs = [env for env in summary["envs"] if candidate in summary["per_env"][env]]
    if not envs:
        return []
    lines = [
        f"## Goals: {candidate} (IQM of the final return) against the goal and against {baseline}",
        "",
        f"| environment | goal | {candidate} | goal met | {baseline} | {candidate} >= {baseline} | seeds |",
        "|---|---:|---:|:---:|---:|:---:|---:|",
    ]
    for env in envs:
        results = summary["per_env"][env]
        goal, score = goals[env], results[candidate][0]
        baseline_score = results[baseline][0] if baseline in results else None
        versus = "-" if baseline_score is None else ("yes" if score >= baseline_score else "no")
        seeds = summary["resources"][env][candidate][2]
        lines.append(
            f"| {env} | {goal:g} | {score:.1f} | {'yes' if score >= goal else 'no'} | "
            f"{number(baseline_score, 1)} | {versus} | {seeds} |"
        )
    overall = summary["overall"]
    if candidate in overall:
        best = max(overall, key=lambda algo: overall[algo][0])
        # Three decimals: the leaders can be within a rounding of each other
        verdict = "the best of the grid" if best == candidate else f"below {best}'s {overall[best][0]:.3f}"
        lines += ["", f"Normalised IQM over all environments: {overall[candidate][0]:.3f}, {verdict}."]
    return [*lines, ""]


def compared_seeds(summary: dict[str, Any], candidate: str, baseline: str, row: str) -> str:
    """The seeds behind a probability of improvement: ``candidate's vs baseline's`` (in each env for the normalised row)."""
    overall = row == "all (normalised)"  # only algorithms with as many seeds in every env
    seeds = summary["resources"][summary["envs"][0] if overall else row]
    return f"{seeds[candidate][2]} vs {seeds[baseline][2]}" + (" per env" if overall else "")


def seeds_per_cell(summary: dict[str, Any]) -> str:
    """One sentence: the usual number of seeds per (algorithm, env) and the cells that differ."""
    return seeds_sentence({(algo, env): n for env, cells in summary["resources"].items() for algo, (_, _, n) in cells.items()})


def seeds_sentence(counts: dict[tuple[str, str], int]) -> str:
    """One sentence from the seeds of each (algorithm, env): the usual number and the cells that differ."""
    usual = Counter(counts.values()).most_common(1)[0][0]
    others = [f"{algo} on {env}: {n}" for (algo, env), n in counts.items() if n != usual]
    return f"Seeds per cell: {usual}" + (f", except {'; '.join(others)}" if others else "") + "."


def number(value: float | None, digits: int = 0) -> str:
    """A table cell: the value rounded, or "-" where a run has none (no GPU, stopped before training)."""
    return "-" if value is None else f"{value:.{digits}f}"


def atari_section(sets: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Speed and GPU memory on Atari, each run against the DQN run on the same game in the same set."""
    if not sets:
        return []
    lines = [
        "## Atari on a GPU: speed and memory (`python -m benchmarks.atari`)",
        "",
        "The paper's network (`DuelingNatureCnnPolicy`) against SB3 DQN's `CnnPolicy`, each with its YAML `atari` entry",
        "(AtariWrapper, 4 stacked frames, one gradient step every 4 env steps) and `learning_starts` lowered so that most",
        "steps train. The runs of a set went at once, one process each, on one GPU: the ratios compare runs that shared",
        "the machine alike. A run still going at `--max-seconds` stopped there (env steps made < budget); the runs of its",
        "set that had finished no longer shared the machine with its last part. GPU memory is PyTorch's peak allocation",
        "(the CUDA context comes on top).",
        "",
    ]
    for folder, runs in sets.items():
        hardware = runs[0]["hardware"]
        lines += [
            f"**{folder}**: {hardware['gpu']}, {hardware['cpu_count']} CPU cores ({hardware['cpu']}), PyTorch "
            f"{hardware['torch']} (CUDA {hardware['cuda']}), SB3 {hardware['stable_baselines3']}; budget {runs[0]['budget']}"
            f" env steps, `learning_starts` {runs[0]['hyperparams']['learning_starts']}.",
            "",
            "| game | algorithm | env steps made | env steps/s | steps/s training | GPU peak (MB) | peak RSS (MB)"
            " | steps/s vs DQN | GPU peak vs DQN |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        baselines = {run["env"]: run for run in runs if run["algo"] == BASELINE}
        for run in sorted(runs, key=lambda run: (run["env"], run["algo"])):
            dqn = baselines.get(run["env"])
            speed_ratio = run["steps_per_second"] / dqn["steps_per_second"] if dqn else None
            gpu, dqn_gpu = run["gpu_peak_allocated_mb"], dqn and dqn["gpu_peak_allocated_mb"]
            memory_ratio = gpu / dqn_gpu if gpu and dqn_gpu else None
            lines.append(
                f"| {run['env']} | {run['algo']} | {run['timesteps']} | {number(run['steps_per_second'])} | "
                f"{number(run['training_steps_per_second'])} | {number(gpu)} | {number(run['peak_rss_mb'])} | "
                f"{number(speed_ratio, 3)} | {number(memory_ratio, 3)} |"
            )
        lines.append("")
    return lines


def shown(path: Path) -> str:
    """A path as the report names it: from the repository's root when it lies inside."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def minatar_section(
    summary: dict[str, Any], image: Path | None, left_out: dict[Path, str], results: Path = MinAtarRun.results
) -> list[str]:
    """
    The MinAtar suite against Revisiting Rainbow's figures and the issue's goal, as far as it has results.

    :param image: The curves' figure, relative to the report's folder (``None``: no results to draw)
    :param left_out: The result files left out, with why (:func:`load_minatar_results`)
    :param results: The folder the results were read from
    """
    games, protocol = summary["games"], Settings(eval_freq=MinAtarRun.eval_freq)
    # The goal's two algorithms, and any other of the suite that has results
    algos = [
        algo for algo in MinAtarRun.algos if algo in (BASELINE, RAINBOW) or any(algo in summary["seeds"][g] for g in games)
    ]
    budget = f"{BUDGET / 1e6:g}M"
    lines = [
        f"## MinAtar: {BASELINE} and {RAINBOW} against Revisiting Rainbow (`python -m benchmarks.minatar`)",
        "",
        f"From the result files in `{shown(results)}/` (`python -m benchmarks.minatar` makes them): {BASELINE} and {RAINBOW}",
        "with the protocol of Revisiting Rainbow (Obando-Ceron & Castro 2021; `benchmarks/minatar.py` sets it out, with",
        f"the differences left) on {', '.join(GAMES)}, {budget} env steps per run (a step is a frame: MinAtar",
        f"skips none), {protocol.eval_episodes} greedy episodes on a separate env every {protocol.eval_freq:,} steps.",
        "Statistics as above: IQM of the final evaluation return, 95% stratified-bootstrap CIs in brackets. The",
        f"published figures are the paper's figure 2 at 10M frames, ours at {budget} env steps; and theirs are the",
        "returns of its training episodes, read off the plot (about +-1; the paper prints no table), ours greedy",
        f"evaluations. They say where the learners go, not where they should be at {budget}.",
        "",
    ]
    seeds = {(algo, game): summary["seeds"].get(game, {}).get(algo, 0) for game in GAMES for algo in algos}
    missing = [f"{algo} on {game}" for (algo, game), n in seeds.items() if n == 0]
    few = [cell for cell, n in seeds.items() if 0 < n < MINATAR_SEEDS]
    if not games:
        lines += [f"**Not yet measured**: no current result files in `{shown(results)}/`.", ""]
    else:
        if missing or few:
            parts = [f"no results yet for {', '.join(missing)}"] if missing else []
            parts += [f"fewer seeds than the paper's {MINATAR_SEEDS} runs in {len(few)} cell(s)"] if few else []
            lines += [f"**Partial suite**: {'; '.join(parts)}.", ""]
        lines += [seeds_sentence({cell: n for cell, n in seeds.items() if n}), ""]
    if left_out:
        lines += [f"Left out: {len(left_out)} result file(s) made otherwise than the protocol has now:", ""]
        lines += [f"- `{path.relative_to(results)}`: {why}" for path, why in sorted(left_out.items())]
        lines.append("")
    if image is not None:
        lines += [f"![MinAtar learning curves]({image})", ""]
    for game in GAMES:
        results_of = summary["per_game"].get(game, {})
        lines += [
            f"### {game}",
            "",
            "| algorithm | final return, IQM [95% CI] | seeds | Revisiting Rainbow, 10M frames |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {algo} | {format_interval(results_of[algo]) if algo in results_of else '-'} | {seeds[algo, game]} "
            f"| {published(PUBLISHED_MINATAR[game].get(algo))} |"
            for algo in algos
        ]
        lines.append("")
    lines += minatar_goal(summary, missing)
    return lines


def published(value: float | None) -> str:
    """A published figure as read off the plot (``7.5``, ``93``), or "-" where the paper has none."""
    return "-" if value is None else f"{value:g}"


def minatar_goal(summary: dict[str, Any], missing: Sequence[str]) -> list[str]:
    """P(Rainbow > DQN) per game and over the suite, and whether the issue's goal is met."""
    improvement, suite = summary["improvement"], summary["suite"]
    ahead = {game: summary["per_game"][game][RAINBOW][0] > summary["per_game"][game][BASELINE][0] for game in suite}
    lines = [
        f"### Probability of improvement: {RAINBOW} over {BASELINE}, and the goal",
        "",
        f"The goal (the MinAtar issue): {RAINBOW} ahead of {BASELINE} (IQM of the final return) on each of the",
        f"{len(GAMES)} games, and P({RAINBOW} > {BASELINE}) >= {MINATAR_GOAL} over the suite (rliable's over the tasks:",
        "the mean over the games of each game's probability).",
        "",
        f"| games | {RAINBOW} ahead | P({RAINBOW} > {BASELINE}) [95% CI] | seeds |",
        "|---|:---:|---:|---:|",
    ]
    for game in GAMES:
        seeds = summary["seeds"].get(game, {})
        versus = f"{seeds[RAINBOW]} vs {seeds[BASELINE]}" if game in ahead else "-"
        lines.append(
            f"| {game} | {'yes' if ahead.get(game) else 'no' if game in ahead else '-'} | "
            f"{format_interval(improvement[game], 2) if game in improvement else '-'} | {versus} |"
        )
    label = "suite: all games" if len(suite) == len(GAMES) else f"suite so far: {', '.join(suite) or 'no game'}"
    if "suite" in improvement:
        first = summary["seeds"][suite[0]]
        lines.append(
            f"| {label} | - | {format_interval(improvement['suite'], 2)} | {first[RAINBOW]} vs {first[BASELINE]} per game |"
        )
    else:
        lines.append(f"| {label} | - | - | - |")
    lines.append("")
    if missing or "suite" not in improvement:
        why = f"no results yet for {', '.join(missing)}" if missing else "the games have different numbers of seeds"
        verdict = f"**Goal: not yet measured** ({why})."
    else:
        behind = [game for game in suite if not ahead[game]]
        probability = improvement["suite"][0]
        reasons = [f"{RAINBOW} not ahead of {BASELINE} on {', '.join(behind)}"] if behind else []
        if probability < MINATAR_GOAL:
            reasons.append(f"P({RAINBOW} > {BASELINE}) over the suite {probability:.2f} < {MINATAR_GOAL}")
        verdict = f"**Goal: not met** ({'; '.join(reasons)})." if reasons else "**Goal: met**."
    return [*lines, verdict, ""]


def write_report(
    summary: dict[str, Any],
    images: dict[str, Path],
    path: Path,
    stale: Sequence[Path] = (),
    atari: dict[str, list[dict[str, Any]]] | None = None,
    minatar: Sequence[str] = (),
) -> None:
    envs, algos = summary["envs"], summary["algos"]
    relative = {name: image.relative_to(path.parent) for name, image in images.items()}
    missing = [env for env in REFERENCE_SCORES if env not in envs]
    partial = f"**Partial grid**: no results yet for {', '.join(missing)}; the normalised column covers the rest."
    lines = [
        "# Benchmark: Dueling DQN and Dueling QR-DQN against DQN and QR-DQN",
        "",
        "Generated by `python -m benchmarks.report` from the result files in `benchmarks/results/`",
        "(`python -m benchmarks.grid` makes them). Statistics from `rliable`: interquartile mean (IQM)",
        "of the final evaluation return (10 greedy episodes on a separate env), 95% stratified-bootstrap",
        "confidence intervals in brackets. Each algorithm runs with its own YAML entry (the package's",
        "`dueling_dqn.yml` and `dueling_qrdqn.yml` for DuelingDQN and DuelingQRDQN, the RL Zoo's `dqn.yml`",
        "and `qrdqn.yml` for DQN and QR-DQN).",
        "",
        *([partial, ""] if missing else []),
        *(
            [f"Left out: {len(stale)} result file(s) run with other hyperparameters than the YAML files have now.", ""]
            if stale
            else []
        ),
        f"![learning curves]({relative['curves']})",
        "",
        "## Final return, IQM [95% CI]",
        "",
        "| algorithm | " + " | ".join(envs) + (" | all (normalised) |" if summary["overall"] else " |"),
        "|---|" + "---:|" * (len(envs) + bool(summary["overall"])),
    ]
    for algo in algos:
        cells = [format_interval(summary["per_env"][env][algo]) if algo in summary["per_env"][env] else "-" for env in envs]
        if summary["overall"]:
            cells.append(format_interval(summary["overall"][algo], 2) if algo in summary["overall"] else "-")
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    lines += ["", seeds_per_cell(summary), "", f"![final IQM]({relative['iqm']})", ""]
    for candidate in GOALS:
        lines += goals_table(summary, candidate)
    for (candidate, baseline), table in summary["improvement"].items():
        lines += [
            f"## Probability of improvement: {candidate} over {baseline}",
            "",
            "| environment | P(improvement) [95% CI] | seeds |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {name} | {format_interval(value, 2)} | {compared_seeds(summary, candidate, baseline, name)} |"
            for name, value in table.items()
        ]
        lines.append("")
    lines += [
        "## Speed and memory (medians over the same runs)",
        "",
        f"Ratios to the baseline of the algorithm's family: {QUANTILE_BASELINE} for the quantile learners, "
        f"{BASELINE} for the others.",
        "",
        "| environment | algorithm | env steps/s (training) | peak RSS (MB) | steps/s vs baseline | peak RSS vs baseline |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for env in envs:
        table = summary["resources"][env]
        for algo, (speed, memory, _) in sorted(table.items()):
            baseline = table.get(family_baseline(algo))
            speed_ratio = "-" if baseline is None else f"{speed / baseline[0]:.3f}"
            memory_ratio = "-" if baseline is None else f"{memory / baseline[1]:.3f}"
            lines.append(f"| {env} | {algo} | {speed:.0f} | {memory:.0f} | {speed_ratio} | {memory_ratio} |")
    lines += [
        "",
        "The grid's runs were made over several sessions, some beside other jobs on the same cores: read",
        "its speed ratios as indications; [speed.md](speed.md) measures the algorithms side by side.",
        "Peak RSS is the whole process, imports included; speed.md says which runs carry extra imports.",
        "",
        *atari_section(atari or {}),
        *minatar,
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--reps", type=positive_int, default=2000, help="bootstrap replications")
    parser.add_argument("--minatar-results", type=Path, default=MinAtarRun.results, help="the MinAtar suite's results")
    args = parser.parse_args()
    records, stale = load_results(args.results)
    if not records:
        raise SystemExit(f"no current result files under {args.results}: run python -m benchmarks.grid first")
    summary = summarise(records, reps=args.reps)
    images = plot(summary, args.docs / "images")
    minatar_records, left_out = load_minatar_results(args.minatar_results)
    minatar = summarise_minatar(minatar_records, reps=args.reps)
    curves = plot_minatar(minatar, args.docs / "images")
    figure = curves and curves.relative_to(args.docs)
    lines = minatar_section(minatar, figure, left_out, args.minatar_results)
    write_report(summary, images, args.docs / "benchmark.md", stale, load_atari_results(args.results), lines)
    written = [*images.values(), *([curves] if curves else [])]
    print(f"wrote {args.docs / 'benchmark.md'} and {', '.join(str(p) for p in written)}")


if __name__ == "__main__":
    main()
