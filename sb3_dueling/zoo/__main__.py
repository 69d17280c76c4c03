"""
The RL Zoo's commands, with ``dueling_dqn`` (DuelingDQN), ``dueling_qrdqn`` (DuelingQRDQN) and ``rainbow``
(Rainbow) registered:

    python -m sb3_dueling.zoo train --algo dueling_dqn --env CartPole-v1 [any rl_zoo3 train flag]
    python -m sb3_dueling.zoo train --algo dueling_qrdqn --env CartPole-v1
    python -m sb3_dueling.zoo train --algo rainbow --env CartPole-v1
    python -m sb3_dueling.zoo enjoy --algo dueling_dqn --env CartPole-v1 -f logs/
    python -m sb3_dueling.zoo plot_train | plot_from_file | all_plots ... [--figure-folder DIR]
    python -m sb3_dueling.zoo config [dueling_dqn|dueling_qrdqn|rainbow|dqn|qrdqn]   (prints the path of a hyperparameter file)

(``sb3-dueling-zoo`` is the same command; ``COMMAND -h`` lists the Zoo's options and ours.)

``train`` and ``enjoy`` add, before handing over to the Zoo: ``--algo dueling_dqn`` and
``--num-threads 1`` when they are not given (one PyTorch thread: the small networks train no faster
on more, and on a busy machine more threads spin against the other processes; see docs/speed.md);
``train`` also ``-conf`` the package's file of the algorithm (``dueling_dqn.yml``, ``dueling_qrdqn.yml``,
``rainbow.yml``), and with ``-optimize`` an SQLite study under the log folder (``--storage``) named ``<algo>_<env>``
(``--study-name``) unless given, so that running the same command again resumes the study. A database
URL may come from an environment variable (``--storage env:NAME``: a command line shows in ``ps``); its
password is masked in every message and file of the run (``postgres://`` is read as ``postgresql://``). For a MinAtar
id (``MinAtar/Breakout-v0``) both register MinAtar's ids with Gymnasium first (the ``minatar`` extra). Bad input
(an unknown env id, a MinAtar id without the ``minatar`` package, an env without discrete actions, an unknown
hyperparameter or policy, a bad ``n_quantiles``, atom support or ``sigma0``, an unsupported or unreachable storage,
a missing model) stops it with a clear message and exit code 2, before anything is written.
Database studies get a heartbeat (``--optuna-heartbeat SECONDS``, default 60): a killed worker's
trial is marked FAIL once three beats are missed, instead of staying RUNNING.
``--checkpoint-freq N`` writes crash-safe checkpoints and ``--resume FOLDER`` continues from the
newest one (see ``sb3_dueling.zoo.checkpointing``). The plot commands save their figures as PNG
files (``--figure-folder``) and print where, besides showing them where there is a display.
"""

import argparse
import contextlib
import io
import sys
import traceback
from pathlib import Path
from typing import Any
from unittest import mock

from sb3_dueling.minatar_envs import is_minatar_id, register_minatar_envs
from sb3_dueling.model_files import CheckpointError
from sb3_dueling.user_input import (
    CONFIGS,
    UsageError,
    check_discrete_actions,
    check_env_id,
    check_hyperparam_values,
    check_hyperparams,
    check_policy,
    evaluate_as_zoo,
    read_hyperparams_entry,
)
from sb3_dueling.zoo.figures import FigureFiles
from sb3_dueling.zoo.patches import ALGO, ZOO_ALGORITHMS, zoo_patches
from sb3_dueling.zoo.storages import check_storage, read_storage
from sb3_dueling.zoo.studies import HEARTBEAT_INTERVAL

COMMANDS = ("train", "enjoy", "plot_train", "plot_from_file", "all_plots")
PLOTS = ("plot_train", "plot_from_file", "all_plots")
#: The Zoo's algorithms that act in a Discrete action space only
DISCRETE_ALGOS = (*ZOO_ALGORITHMS, "dqn", "qrdqn")
FIGURE_FOLDER_HELP = "  --figure-folder DIR     where the figures are saved as PNG files (default: {})\n"
#: This package's options and defaults, printed before the Zoo's own help
OWN_HELP = {
    "train": (
        "  --checkpoint-freq N     write a crash-safe checkpoint every N env steps (to <run folder>/checkpoints)\n"
        "  --resume FOLDER         continue from the newest complete checkpoint in FOLDER\n"
        f"  --optuna-heartbeat S    seconds between a database study's heartbeats (default {HEARTBEAT_INTERVAL})\n"
        f"  defaults: --algo {ALGO}, -conf the package's file of the algorithm ({CONFIGS[ALGO].parent}/<algo>.yml "
        f"for {', '.join(ZOO_ALGORITHMS)}), --num-threads 1\n"
    ),
    "enjoy": f"  defaults: --algo {ALGO}, --num-threads 1\n",
    "plot_train": FIGURE_FOLDER_HELP.format("the -f folder's <algo> folder, next to the runs"),
    "plot_from_file": FIGURE_FOLDER_HELP.format("the folder of the -i file"),
    "all_plots": FIGURE_FOLDER_HELP.format("the working directory"),
}


def lenient_parser() -> argparse.ArgumentParser:
    """A parser of some of a Zoo command's arguments (the Zoo parses the whole command line itself)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--algo", default=None)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--gym-packages", nargs="+", default=[])
    parser.add_argument("--num-threads", type=int, default=None)
    return parser


def with_defaults(args: list[str], known: argparse.Namespace) -> list[str]:
    """``args`` with ``--algo dueling_dqn`` and ``--num-threads 1`` unless given."""
    return [
        *args,
        *(["--algo", ALGO] if known.algo is None else []),
        *(["--num-threads", "1"] if known.num_threads is None else []),
    ]


def own_options(command: str, args: list[str]) -> tuple[dict[str, Any], list[str]]:
    """
    Take this package's options out of a Zoo command's arguments.

    :return: The keyword arguments of :func:`zoo_patches`, and the arguments for the Zoo
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    if command == "train":
        parser.add_argument("--checkpoint-freq", type=int, default=None)
        parser.add_argument("--resume", type=Path, default=None)
        parser.add_argument("--optuna-heartbeat", type=int, default=HEARTBEAT_INTERVAL)
        parser.add_argument("--storage", default=None)
        known, rest = parser.parse_known_args(args)
        check_checkpointing(known.checkpoint_freq, known.resume)
        if known.optuna_heartbeat < 1:
            raise UsageError(f"--optuna-heartbeat must be a positive number of seconds, got {known.optuna_heartbeat}")
        storage = None if known.storage is None else read_storage(known.storage)
        if storage is not None and "-h" not in rest and "--help" not in rest:
            check_storage(storage)
            rest += ["--storage", storage.shown]  # the Zoo writes it into its files: without the password
        options = dict(checkpoint_freq=known.checkpoint_freq, resume=known.resume, heartbeat=known.optuna_heartbeat)
        return {**options, "storage": storage}, rest
    if command in PLOTS:
        parser.add_argument("--figure-folder", type=Path, default=None)
        known, rest = parser.parse_known_args(args)
        return {"figures": figure_files(command, known.figure_folder, rest)}, rest
    return {}, args


def check_checkpointing(checkpoint_freq: int | None, resume: Path | None) -> None:
    if checkpoint_freq is not None and checkpoint_freq < 1:
        raise UsageError(f"--checkpoint-freq must be a positive number of env steps, got {checkpoint_freq}")
    if resume is not None:
        from sb3_dueling.checkpoints import find_latest_checkpoint

        try:
            if find_latest_checkpoint(resume) is None:
                raise UsageError(f"--resume {resume}: no checkpoint there")
        except CheckpointError as error:
            raise UsageError(f"--resume: {error}") from error


def figure_files(command: str, folder: Path | None, args: list[str]) -> FigureFiles:
    """Where the figures of a plot command go: ``folder``, else next to what it plots (see ``OWN_HELP``)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    if command == "plot_train":
        parser.add_argument("-a", "--algo", default="")
        parser.add_argument("-e", "--env", nargs="+", default=[])
        parser.add_argument("-f", "--exp-folder", default=".")
        known, _ = parser.parse_known_args(args)
        return FigureFiles(folder or Path(known.exp_folder) / known.algo, f"{'_'.join(known.env)}_")
    if command == "plot_from_file":
        parser.add_argument("-i", "--input", type=Path, default=Path("results"))
        known, _ = parser.parse_known_args(args)
        return FigureFiles(folder or known.input.parent, f"{known.input.stem}_")
    return FigureFiles(folder or Path("."), f"{command}_")


def register_optional_envs(env_id: str) -> None:
    """
    Register the envs of an optional extra that ``env_id`` needs and that its package leaves unregistered until
    asked: MinAtar's (``MinAtar/<Game>-v0``, ``-v1``), for a MinAtar id only (``minatar`` imports Matplotlib and
    seaborn, seconds that the other envs need not wait).
    """
    if is_minatar_id(env_id) and not register_minatar_envs():
        raise UsageError(
            f"--env {env_id}: MinAtar's games need the minatar package, which is not installed: "
            "pip install 'sb3_dueling[minatar]'"
        )


def prepare_train(args: list[str]) -> list[str]:
    """Check the ``train`` arguments and add this package's defaults; returns the arguments for the Zoo."""
    from rl_zoo3.utils import ALGOS

    parser = lenient_parser()
    parser.add_argument("-conf", "--conf-file", default=None)
    parser.add_argument("-f", "--log-folder", default="logs")
    parser.add_argument("-i", "--trained-agent", default="")
    parser.add_argument("-optimize", "--optimize-hyperparameters", action="store_true")
    parser.add_argument("--storage", default=None)
    parser.add_argument("--study-name", default=None)
    parser.add_argument("-params", "--hyperparams", nargs="+", default=[])
    parser.add_argument("--env-kwargs", nargs="+", default=[])
    known, _ = parser.parse_known_args(args)
    if "-h" in args or "--help" in args:
        return args
    args = with_defaults(args, known)
    algo = known.algo or ALGO
    own_config = CONFIGS[algo] if algo in ZOO_ALGORITHMS else None
    if known.conf_file is None and own_config is not None:
        args += ["-conf", str(own_config)]
    config = Path(known.conf_file) if known.conf_file else own_config

    register_optional_envs(known.env)
    check_env_id(known.env, ["rl_zoo3.import_envs", *known.gym_packages])  # the envs the Zoo registers (Atari...)
    if known.trained_agent and not (known.trained_agent.endswith(".zip") and Path(known.trained_agent).is_file()):
        raise UsageError(f"-i {known.trained_agent}: no such model file (a .zip that train saved)")
    if algo not in ALGOS:
        return args  # the Zoo lists its algorithms
    algorithm = ALGOS[algo]
    entry: dict[str, Any] = {}
    if config is not None and config.suffix in (".yml", ".yaml"):
        if not config.is_file():
            raise UsageError(f"-conf {str(config)!r}: no such file")
        name, entry = read_hyperparams_entry(config, known.env)
        for check in (check_hyperparams, check_hyperparam_values, check_policy):
            check(algo, algorithm, entry, f"{config}, entry {name!r}")
    texts = dict(item.partition(":")[::2] for item in known.hyperparams)
    check_hyperparams(algo, algorithm, texts, "-params")
    params = {key: zoo_value("-params", key, text) for key, text in texts.items()}
    check_hyperparam_values(algo, algorithm, params, "-params")
    policy_params = {key: params[key] for key in ("policy", "policy_kwargs") if key in params}
    if policy_params:
        check_policy(algo, algorithm, {**entry, **policy_params}, "-params")
    if algo in DISCRETE_ALGOS:
        env_kwargs: dict[str, Any] = dict(entry["env_kwargs"]) if isinstance(entry.get("env_kwargs"), dict) else {}
        for item in known.env_kwargs:
            key, _, value = item.partition(":")
            env_kwargs[key] = zoo_value("--env-kwargs", key, value)
        check_discrete_actions(known.env, algo, env_kwargs)

    if known.optimize_hyperparameters:
        study_name = known.study_name or f"{algo}_{known.env}"
        if known.study_name is None:
            args += ["--study-name", study_name]
        storage = known.storage  # as shown (see own_options): without its password
        if storage is None:
            database = Path(known.log_folder) / algo / "optuna.db"
            database.parent.mkdir(parents=True, exist_ok=True)
            storage = f"sqlite:///{database}"
            args += ["--storage", storage]
        print(f"Optuna study {study_name!r} in {storage} (run the same command again to resume it)")
    return args


def zoo_value(option: str, key: str, value: str) -> Any:
    """A ``key:value`` of ``-params`` or ``--env-kwargs``, evaluated as the Zoo does."""
    try:
        return evaluate_as_zoo(value)
    except Exception as error:  # eval of a user's string: any error
        raise UsageError(
            f"{option} {key}:{value}: {error} (the Zoo reads the value as Python: quote strings, as in {key}:\"'text'\")"
        ) from error


def prepare_enjoy(args: list[str]) -> list[str]:
    """Check the ``enjoy`` arguments (the Zoo fails with a traceback on an unknown env or a missing model)."""
    parser = lenient_parser()
    parser.add_argument("-f", "--folder", default="rl-trained-agents")
    parser.add_argument("--exp-id", type=int, default=0)
    parser.add_argument("--load-best", action="store_true")
    parser.add_argument("--load-checkpoint", type=int, default=None)
    parser.add_argument("--load-last-checkpoint", action="store_true")
    known, _ = parser.parse_known_args(args)
    if "-h" in args or "--help" in args:
        return args
    register_optional_envs(known.env)
    check_env_id(known.env, ["rl_zoo3.import_envs", *known.gym_packages])
    if "rl-trained-agents" not in known.folder:  # the Zoo downloads those from the Hugging Face Hub
        from huggingface_sb3 import EnvironmentName
        from rl_zoo3.utils import get_model_path

        algo = known.algo or ALGO
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # which run it picks: the Zoo prints it again
                get_model_path(
                    known.exp_id,
                    known.folder,
                    algo,
                    EnvironmentName(known.env),
                    known.load_best,
                    known.load_checkpoint,
                    known.load_last_checkpoint,
                )
        except (AssertionError, ValueError) as error:
            raise UsageError(
                f"no model to enjoy: {error} (train one with: python -m sb3_dueling.zoo train "
                f"--algo {algo} --env {known.env} -f {known.folder})"
            ) from error
    return with_defaults(args, known)


PREPARE = {"train": prepare_train, "enjoy": prepare_enjoy}


def run_zoo(command: str, args: list[str]) -> None:
    from rl_zoo3.cli import main as zoo_main

    # The Zoo's commands read their arguments from sys.argv, and write the process's command line
    # (sys.orig_argv) into command.txt and the study's attributes: the command it runs instead, whose
    # --storage is shown without its password
    interpreter = sys.orig_argv[: len(sys.orig_argv) - len(sys.argv) + 1]  # python -m sb3_dueling.zoo
    with mock.patch.multiple(
        sys,
        argv=[f"{Path(sys.executable).name} -m sb3_dueling.zoo", command, *args],
        orig_argv=[*interpreter, command, *args],
    ):
        zoo_main()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = args[0], args[1:]
    if command == "config":
        algo = rest[0] if rest else ALGO
        if algo not in CONFIGS:
            print(f"error: no hyperparameter file for {algo!r}; use one of {', '.join(CONFIGS)}", file=sys.stderr)
            return 2
        print(CONFIGS[algo])
        return 0
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; use one of {', '.join((*COMMANDS, 'config'))}", file=sys.stderr)
        return 2
    if "-h" in rest or "--help" in rest:
        print(f"sb3_dueling.zoo {command}: the Zoo's options (below) and\n{OWN_HELP[command]}")
    options: dict[str, Any] = {}
    try:
        options, rest = own_options(command, rest)
        with zoo_patches(**options):
            if command in PREPARE:
                rest = PREPARE[command](rest)
            run_zoo(command, rest)
    except (UsageError, CheckpointError) as error:  # bad input, or a model file that cannot be used: both named
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        storage = options.get("storage")
        shown = "".join(traceback.format_exception(error))
        if storage is None or storage.hide(shown) == shown:
            raise
        print(storage.hide(shown), file=sys.stderr, end="")  # an error of the database driver that shows the password
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
