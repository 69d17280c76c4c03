"""
The RL Zoo's commands, with ``dueling_dqn`` registered:

    python -m sb3_dueling.zoo train --algo dueling_dqn --env CartPole-v1 [any rl_zoo3 train flag]
    python -m sb3_dueling.zoo enjoy --algo dueling_dqn --env CartPole-v1 -f logs/
    python -m sb3_dueling.zoo plot_train | plot_from_file | all_plots ...
    python -m sb3_dueling.zoo config [dueling_dqn|dqn]   (prints the path of a hyperparameter file)

(``sb3-dueling-zoo`` is the same command.)

``train`` adds, before handing over to the Zoo: ``--algo dueling_dqn`` and ``-conf`` the package's
``dueling_dqn.yml`` when they are not given; with ``-optimize``, an SQLite study under the log
folder (``--storage``) named ``<algo>_<env>`` (``--study-name``) unless given, so that running the
same command again resumes the study. Bad input (an unknown env id, an unknown hyperparameter, an
unsupported or unreachable storage) stops it with a clear message and exit code 2.
Database studies get a heartbeat (``--optuna-heartbeat SECONDS``, default 60): a killed worker's
trial is marked FAIL once three beats are missed, instead of staying RUNNING.
``--checkpoint-freq N`` writes crash-safe checkpoints and ``--resume FOLDER`` continues from the
newest one (see ``sb3_dueling.zoo.checkpointing``).
"""

import argparse
import difflib
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import yaml

from sb3_dueling.zoo import ALGO, DQN_CONFIG, DUELING_DQN_CONFIG, register_zoo
from sb3_dueling.zoo.studies import HEARTBEAT_INTERVAL, enable_heartbeat

COMMANDS = ("train", "enjoy", "plot_train", "plot_from_file", "all_plots")
# Keys of a Zoo hyperparameter entry that the Zoo itself consumes (the rest go to the algorithm)
ZOO_KEYS = {
    "n_timesteps",
    "policy",
    "n_envs",
    "normalize",
    "frame_stack",
    "env_wrapper",
    "vec_env_wrapper",
    "callback",
    "env_kwargs",
    "monitor_kwargs",
    "noise_type",
    "noise_std",
}
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")


class UsageError(Exception):
    """Bad input on the command line or in a hyperparameter file."""


def check_env_id(env_id: str, gym_packages: list[str]) -> None:
    import gymnasium as gym
    import rl_zoo3.import_envs  # noqa: F401  the envs the Zoo registers (Atari, ...)

    for package in gym_packages:
        importlib.import_module(package)
    if env_id not in gym.envs.registry:
        close = difflib.get_close_matches(env_id, list(gym.envs.registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown env id {env_id!r}: it is not in the Gymnasium registry{hint}")


def hyperparams_entry(config: Path, env_id: str) -> tuple[str, dict[str, Any]]:
    """The entry of ``config`` that the Zoo would use for ``env_id`` (the env's own, ``atari`` or ``default``)."""
    from rl_zoo3.exp_manager import ExperimentManager

    with open(config) as file:
        entries = yaml.safe_load(file) or {}
    candidates = [env_id, "atari", "default"] if ExperimentManager.is_atari(env_id) else [env_id, "default"]
    for name in candidates:
        if name in entries:
            return name, entries[name]
    raise UsageError(f"{config} has no entry for {env_id!r} and no 'default' entry")


def check_hyperparams(algo: str, keys: set[str], where: str) -> None:
    from rl_zoo3.utils import ALGOS

    parameters = inspect.signature(ALGOS[algo].__init__).parameters
    allowed = ZOO_KEYS | {name for name in parameters if name not in ("self", "env") and not name.startswith("_")}
    for key in sorted(keys - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{where}: {key!r} is not a hyperparameter of {algo}{hint}")


def check_policy_kwargs(algo: str, entry: dict[str, Any], where: str) -> None:
    """Check the keys of an entry's ``policy_kwargs`` against its policy's constructor."""
    from rl_zoo3.utils import ALGOS
    from torch import nn

    policy_kwargs = entry.get("policy_kwargs")
    if isinstance(policy_kwargs, str):
        try:
            policy_kwargs = eval(policy_kwargs, {"dict": dict, "nn": nn})  # the Zoo evaluates it the same way
        except Exception as error:
            raise UsageError(f"{where}: policy_kwargs {entry['policy_kwargs']!r} cannot be read: {error}") from error
    policy = ALGOS[algo].policy_aliases.get(entry.get("policy", "MlpPolicy"))
    if not isinstance(policy_kwargs, dict) or policy is None:
        return
    allowed = set(inspect.signature(policy.__init__).parameters) - {"self", "observation_space", "action_space", "lr_schedule"}
    for key in sorted(set(policy_kwargs) - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{where}: {key!r} is not an argument of {policy.__name__} in policy_kwargs{hint}")


def check_storage(storage: str) -> None:
    if storage.endswith(".log"):
        return  # Optuna's journal file, which the Zoo supports as is
    scheme = storage.split("://", 1)[0].split("+", 1)[0] if "://" in storage else ""
    if scheme not in STORAGE_SCHEMES:
        raise UsageError(
            f"unsupported --storage {storage!r}: use sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, "
            "mysql://..., or a journal file PATH.log"
        )
    if scheme == "sqlite":
        return
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(storage, connect_args={"connect_timeout": 10}).connect():
            pass
    except Exception as error:  # the driver's own errors differ (missing driver, refused, auth)
        shown = sqlalchemy.engine.make_url(storage).render_as_string(hide_password=True)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, ModuleNotFoundError):
            reason += " (the database driver is missing: pip install 'sb3_dueling[zoo]' brings PostgreSQL's)"
        raise UsageError(f"cannot reach the --storage database {shown}: {reason}") from error


def env_parser() -> argparse.ArgumentParser:
    """The Zoo's env arguments, read leniently (the Zoo parses the whole command line itself)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--gym-packages", nargs="+", default=[])
    return parser


def prepare_checkpointing(args: list[str]) -> list[str]:
    """Take ``--checkpoint-freq`` and ``--resume`` (ours, not the Zoo's) out of the arguments and set them up."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--checkpoint-freq", type=int, default=None)
    parser.add_argument("--resume", type=Path, default=None)
    known, rest = parser.parse_known_args(args)
    if known.checkpoint_freq is not None and known.checkpoint_freq < 1:
        raise UsageError(f"--checkpoint-freq must be a positive number of env steps, got {known.checkpoint_freq}")
    if known.resume is not None:
        from sb3_dueling.checkpoints import CheckpointError, find_latest_checkpoint

        try:
            if find_latest_checkpoint(known.resume) is None:
                raise UsageError(f"--resume {known.resume}: no checkpoint there")
        except CheckpointError as error:
            raise UsageError(f"--resume: {error}") from error
    from sb3_dueling.zoo.checkpointing import enable_checkpoints, enable_resume

    if known.checkpoint_freq is not None:
        enable_checkpoints(known.checkpoint_freq)
    if known.resume is not None:
        enable_resume(known.resume)
    return rest


def prepare_train(args: list[str]) -> list[str]:
    """Check the ``train`` arguments and add this package's defaults; returns the arguments for the Zoo."""
    args = prepare_checkpointing(args)
    parser = env_parser()
    parser.add_argument("--algo", default=None)
    parser.add_argument("-conf", "--conf-file", default=None)
    parser.add_argument("-f", "--log-folder", default="logs")
    parser.add_argument("-optimize", "--optimize-hyperparameters", action="store_true")
    parser.add_argument("--storage", default=None)
    parser.add_argument("--study-name", default=None)
    parser.add_argument("-params", "--hyperparams", nargs="+", default=[])
    known, _ = parser.parse_known_args(args)
    heartbeat = argparse.ArgumentParser(add_help=False)
    heartbeat.add_argument("--optuna-heartbeat", type=int, default=HEARTBEAT_INTERVAL)
    interval, args = heartbeat.parse_known_args(args)
    if interval.optuna_heartbeat < 1:
        raise UsageError(f"--optuna-heartbeat must be a positive number of seconds, got {interval.optuna_heartbeat}")
    if "-h" in args or "--help" in args:
        return args

    args = list(args)
    algo = known.algo or ALGO
    if known.algo is None:
        args += ["--algo", ALGO]
    if known.conf_file is None and algo == ALGO:
        args += ["-conf", str(DUELING_DQN_CONFIG)]
    config = Path(known.conf_file) if known.conf_file else DUELING_DQN_CONFIG

    check_env_id(known.env, known.gym_packages)
    if config.suffix in (".yml", ".yaml") and not config.is_file():
        raise UsageError(f"-conf {str(config)!r}: no such file")
    if config.suffix in (".yml", ".yaml"):
        entry, hyperparams = hyperparams_entry(config, known.env)
        check_hyperparams(algo, set(hyperparams), f"{config}, entry {entry!r}")
        check_policy_kwargs(algo, hyperparams, f"{config}, entry {entry!r}")
    overrides = {item.split(":", 1)[0] for item in known.hyperparams}
    check_hyperparams(algo, overrides, "-params")

    if known.optimize_hyperparameters:
        study_name = known.study_name or f"{algo}_{known.env}"
        if known.study_name is None:
            args += ["--study-name", study_name]
        storage = known.storage
        if storage is None:
            database = Path(known.log_folder) / algo / "optuna.db"
            database.parent.mkdir(parents=True, exist_ok=True)
            storage = f"sqlite:///{database}"
            args += ["--storage", storage]
        check_storage(storage)
        enable_heartbeat(interval.optuna_heartbeat)
        print(f"Optuna study {study_name!r} in {storage.split('@')[-1]} (run the same command again to resume it)")
    elif known.storage is not None:
        check_storage(known.storage)
    return args


def check_enjoy(args: list[str]) -> None:
    """Check the env id of ``enjoy`` (the Zoo would fail deep inside on an unknown one)."""
    known, _ = env_parser().parse_known_args(args)
    check_env_id(known.env, known.gym_packages)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = args[0], args[1:]
    if command == "config":
        print(DQN_CONFIG if rest[:1] == ["dqn"] else DUELING_DQN_CONFIG)
        return 0
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; use one of {', '.join((*COMMANDS, 'config'))}", file=sys.stderr)
        return 2

    register_zoo()
    try:
        if command == "train":
            rest = prepare_train(rest)
        elif command == "enjoy":
            check_enjoy(rest)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from rl_zoo3.cli import main as zoo_main

    sys.argv = [f"{Path(sys.executable).name} -m sb3_dueling.zoo", command, *rest]
    zoo_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
