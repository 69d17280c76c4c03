"""The RL Zoo commands end to end, as a user runs them, in a temporary folder."""

import hashlib
import json
import operator
import os
import pickle
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import optuna
import pytest
import sqlalchemy
import torch as th
import yaml
from sb3_contrib import QRDQN
from stable_baselines3 import DQN
from stable_baselines3.common.save_util import load_from_pkl

from sb3_dueling import DuelingDQN, DuelingQRDQN
from sb3_dueling.checkpoints import read_manifest
from sb3_dueling.zoo import CONFIGS, DQN_CONFIG, DUELING_DQN_CONFIG, QRDQN_CONFIG, ZOO_ALGORITHMS, studies
from sb3_dueling.zoo.__main__ import main
from sb3_dueling.zoo.studies import open_database_storage

ZOO = [sys.executable, "-m", "sb3_dueling.zoo"]
QUICK = ["--env", "CartPole-v1", "--seed", "0", "-n", "600"]


def run(command: list[str], cwd: Path, expect_ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    if expect_ok:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One short training run with evaluation, checkpoints, TensorBoard and a -params override."""
    folder = tmp_path_factory.mktemp("zoo")
    command = [*ZOO, "train", *QUICK, "-f", "logs", "--eval-freq", "300", "--eval-episodes", "2", "--save-freq", "300"]
    result = run([*command, "-tb", "tb", "-params", "learning_rate:0.0005", "learning_starts:100"], folder)
    (folder / "train_output.txt").write_text(result.stdout)
    return folder


def test_train_writes_the_zoo_layout(trained):
    run_folder = trained / "logs" / "dueling_dqn" / "CartPole-v1_1"
    assert (run_folder / "CartPole-v1.zip").exists()
    assert (run_folder / "best_model.zip").exists() and (run_folder / "evaluations.npz").exists()
    assert sorted(p.name for p in run_folder.glob("rl_model_*_steps.zip")) == [
        "rl_model_300_steps.zip",
        "rl_model_600_steps.zip",
    ]
    assert list((trained / "tb" / "CartPole-v1").glob("DuelingDQN_1/events.out.tfevents.*"))
    # the Zoo writes an OrderedDict
    config = dict(yaml.load((run_folder / "CartPole-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader))
    assert config["learning_rate"] == 0.0005  # -params wins over the package's file
    assert config["target_update_interval"] == 10  # the rest comes from dueling_dqn.yml
    model = DuelingDQN.load(run_folder / "CartPole-v1.zip")
    assert model.double_q and model.num_timesteps >= 600  # train_freq 256 finishes its rollout
    assert model._n_updates > 0


def test_train_prints_progress_into_a_file_and_runs_on_one_thread(trained):
    # its output went to a pipe, as to a log file: SB3's progress tables are there, one per 4 episodes
    assert (trained / "train_output.txt").read_text().count("total_timesteps") >= 5
    args = yaml.load(
        (trained / "logs" / "dueling_dqn" / "CartPole-v1_1" / "CartPole-v1" / "args.yml").read_text(), Loader=yaml.UnsafeLoader
    )
    assert args["num_threads"] == 1  # the default added for the Zoo


def test_enjoy_loads_what_train_saved(trained):
    result = run(
        [*ZOO, "enjoy", "--algo", "dueling_dqn", "--env", "CartPole-v1", "-f", "logs", "-n", "200", "--no-render"], trained
    )
    assert "Loading logs/dueling_dqn/CartPole-v1_1/CartPole-v1.zip" in result.stdout


def test_continue_training_keeps_the_earlier_run(trained):
    first = trained / "logs" / "dueling_dqn" / "CartPole-v1_1"
    before = digest(first)
    agent = first / "CartPole-v1.zip"
    # No gradient step in the second run (learning_starts): its online network must be the trained agent's
    command = [*ZOO, "train", *QUICK[:4], "-n", "300", "-f", "logs", "--eval-freq", "-1", "-i", str(agent)]
    result = run([*command, "-params", "learning_starts:10000"], trained)
    assert "Loading pretrained agent" in result.stdout
    second = DuelingDQN.load(trained / "logs" / "dueling_dqn" / "CartPole-v1_2" / "CartPole-v1.zip")
    for name, tensor in DuelingDQN.load(agent).q_net.state_dict().items():
        assert th.equal(second.q_net.state_dict()[name], tensor), name
    assert digest(first) == before  # nothing of the first run was touched


def assert_png(folder: Path, path: str, output: str) -> None:
    """The command's output says it saved the figure to ``path`` (relative to ``folder``), and it is a PNG image."""
    assert f"Saved the figure to {path}" in output
    assert (folder / path).read_bytes()[:4] == b"\x89PNG" and (folder / path).stat().st_size > 10_000


def test_plot_train_saves_the_figure_on_a_machine_without_display(trained, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    command = [*ZOO, "plot_train", "--algo", "dueling_dqn", "--env", "CartPole-v1", "-f", "logs", "-w", "5"]
    assert_png(trained, "logs/dueling_dqn/CartPole-v1_Training_Episodic_Reward.png", run(command, trained).stdout)
    assert_png(
        trained,
        "figs/CartPole-v1_Training_Episode_Length.png",
        run([*command, "-y", "length", "--figure-folder", "figs"], trained).stdout,
    )
    help_text = run([*ZOO, "plot_train", "-h"], trained).stdout
    assert "--figure-folder DIR" in help_text and "--exp-folder" in help_text  # ours, then the Zoo's


def test_all_plots_and_plot_from_file_save_their_figures(trained, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    command = [*ZOO, "all_plots", "-a", "dueling_dqn", "-e", "CartPole-v1", "-f", "logs/", "-o", "all"]
    result = run(command, trained)
    assert "|CartPole-v1 |" in result.stdout and (trained / "all.pkl").exists()
    assert_png(trained, "all_plots_Results_CartPole-v1.png", result.stdout)
    # plot_from_file on a file as all_plots writes it, with enough evaluations for the Zoo's statistics
    curves = {"timesteps": np.array([300, 600]), "mean": np.array([10.0, 12.0]), "std_error": np.array([0.5, 0.5])}
    curves.update(last_evals=np.array([12.0, 11.0]), mean_per_eval=np.array([[10.0, 12.0], [11.0, 12.0]]))
    table = {"headers": ["Environments", "dueling_dqn"], "value_matrix": [["", "logs"], ["CartPole-v1", "11 +/- 1"]]}
    (trained / "results").mkdir()
    with open(trained / "results" / "curves.pkl", "wb") as file:
        pickle.dump({"results_table": table, "CartPole-v1": {"dueling_dqn-logs": curves}}, file)
    result = run([*ZOO, "plot_from_file", "-i", "results/curves.pkl"], trained)
    assert_png(trained, "results/curves_Results_CartPole-v1.png", result.stdout)
    assert_png(trained, "results/curves_Sensitivity_plot.png", result.stdout)


def test_optimize_on_sqlite_and_resume(tmp_path):
    command = [*ZOO, "train", *QUICK, "-f", "logs", "-optimize", "--n-evaluations", "1", "--eval-episodes", "2"]
    first = run([*command, "--n-trials", "2", "--no-optim-plots"], tmp_path)
    assert "Best trial:" in first.stdout and "double_q:" in first.stdout
    storage = f"sqlite:///{tmp_path / 'logs' / 'dueling_dqn' / 'optuna.db'}"
    run([*command, "--n-trials", "1", "--no-optim-plots"], tmp_path)  # the same command resumes the study
    study = optuna.load_study(study_name="dueling_dqn_CartPole-v1", storage=storage)
    assert len(study.trials) == 3
    assert {"double_q", "aggregation", "stream_units", "n_steps", "learning_rate"} <= set(study.best_params)


@pytest.mark.parametrize("algo, other", [("dueling_dqn", "rainbow"), ("rainbow", "dueling_dqn")])
def test_checkpoint_and_resume(tmp_path, algo, other):
    command = [*ZOO, "train", "--algo", algo, "--env", "CartPole-v1", "--seed", "0", "-f", "logs", "--eval-freq", "-1"]
    params = ["-params", "train_freq:4", "gradient_steps:1", "learning_starts:100"]
    run([*command, "-n", "600", "--checkpoint-freq", "200", *params], tmp_path)
    checkpoints = tmp_path / "logs" / algo / "CartPole-v1_1" / "checkpoints"
    assert [entry["timesteps"] for entry in read_manifest(checkpoints)] == [200, 400, 600]
    # resume from the checkpoint at 400, as after a crash there, up to a total of 1000 steps
    shutil.rmtree(checkpoints / "step_000000000600")
    manifest = json.loads((checkpoints / "manifest.json").read_text())
    manifest["checkpoints"] = manifest["checkpoints"][:-1]
    (checkpoints / "manifest.json").write_text(json.dumps(manifest))
    resumed = run([*command, "-n", "1000", "--checkpoint-freq", "200", "--resume", str(checkpoints), *params], tmp_path)
    assert "Resuming from" in resumed.stdout and "at step 400 of 1000" in resumed.stdout
    model = ZOO_ALGORITHMS[algo].cls.load(tmp_path / "logs" / algo / "CartPole-v1_2" / "CartPole-v1.zip")
    assert model.num_timesteps == 1000 and model._n_calls == 1000  # counters went on, not restarted
    bad = run([*command, "--resume", str(tmp_path / "nowhere")], tmp_path, expect_ok=False)
    assert bad.returncode == 2 and "--resume" in bad.stderr and "Traceback" not in bad.stderr
    # the other algorithm would put this model in its own run folder, where enjoy could not load it
    command[command.index(algo)] = other
    bad = run([*command, "--resume", str(checkpoints)], tmp_path, expect_ok=False)
    assert bad.returncode == 2 and f"resume it with --algo {algo}" in bad.stderr and "Traceback" not in bad.stderr


def test_prioritized_replay_from_yaml(tmp_path):
    config = yaml.safe_load(DUELING_DQN_CONFIG.read_text())["CartPole-v1"]
    config.update(replay_buffer_class="PrioritizedReplayBuffer", replay_buffer_kwargs="dict(alpha=0.7, beta=0.5)")
    (tmp_path / "per.yml").write_text(yaml.safe_dump({"CartPole-v1": {**config, "learning_starts": 100}}))
    run([*ZOO, "train", *QUICK, "-conf", "per.yml", "-f", "logs", "--eval-freq", "-1", "--save-replay-buffer"], tmp_path)
    buffer = load_from_pkl(tmp_path / "logs" / "dueling_dqn" / "CartPole-v1_1" / "replay_buffer.pkl")
    assert type(buffer).__name__ == "PrioritizedReplayBuffer" and (buffer.alpha, buffer.initial_beta) == (0.7, 0.5)
    assert len(np.unique(buffer.tree[np.arange(buffer.pos)])) > 10  # train() wrote priorities back


def test_a_killed_workers_trial_is_failed_not_left_running(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [*ZOO, "train", "--env", "CartPole-v1", "--seed", "0", "-optimize", "--storage", storage]
    command += [
        "--study-name",
        "s",
        "--n-evaluations",
        "1",
        "--eval-episodes",
        "2",
        "--no-optim-plots",
        "--optuna-heartbeat",
        "1",
    ]
    worker = subprocess.Popen([*command, "-n", "50000", "--n-trials", "1"], cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until its trial runs and beats
        time.sleep(1)
        try:
            if optuna.load_study(study_name="s", storage=storage).trials:
                break
        except KeyError:
            continue  # the study is not created yet
    time.sleep(2)
    worker.kill()
    worker.wait()
    time.sleep(4)  # more than three missed beats
    run([*command, "-n", "300", "--n-trials", "1"], tmp_path)
    states = [trial.state for trial in optuna.load_study(study_name="s", storage=storage).trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]


def test_stock_zoo_with_gym_packages(tmp_path):
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", *QUICK, "--gym-packages", "sb3_dueling"]
    run([*command, "-conf", str(DQN_CONFIG), "-f", "logs", "--eval-freq", "-1"], tmp_path)
    model = DQN.load(tmp_path / "logs" / "dqn" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert type(model.policy).__name__ == "DuelingDQNPolicy"


def test_config_command_prints_the_files(tmp_path, capsys):
    assert run([*ZOO, "config"], tmp_path).stdout.strip() == str(DUELING_DQN_CONFIG)
    for algo, path in CONFIGS.items():
        assert main(["config", algo]) == 0 and capsys.readouterr().out.strip() == str(path)
    assert main(["config", "qrdqm"]) == 2
    assert "no hyperparameter file for 'qrdqm'; use one of dueling_dqn, dueling_qrdqn, rainbow, dqn, qrdqn" in (
        capsys.readouterr().err
    )


#: What the CartPole-v1 entry of each algorithm's own file sets (as the Zoo saves it in config.yml), and the trained
#: model's attributes that show it
OWN_FILE_ENTRIES = {
    "dueling_qrdqn": (
        {"policy_kwargs": "dict(net_arch=[256, 256], n_quantiles=10)", "double_q": False},  # double_q: see its comment
        {"double_q": False, "policy.n_quantiles": 10},
    ),
    "rainbow": (
        {"policy_kwargs": "dict(net_arch=[256, 256], v_min=0.0, v_max=100.0)"},
        # every part on, the noise exploring alone
        {"policy.v_min": 0.0, "policy.v_max": 100.0, "noisy": True, "exploration_rate": 0.0, "replay_buffer.alpha": 0.5},
    ),
}


@pytest.fixture(scope="module", params=list(OWN_FILE_ENTRIES))
def trained_with_own_file(request, tmp_path_factory) -> tuple[str, Path]:
    """One short training run of an algorithm of this package with its default -conf (its own file)."""
    algo = request.param
    folder = tmp_path_factory.mktemp(f"zoo_{algo}")
    command = [*ZOO, "train", "--algo", algo, *QUICK, "-f", "logs", "--eval-freq", "300", "--eval-episodes", "2"]
    run([*command, "-params", "learning_starts:100"], folder)
    return algo, folder


def test_trains_with_its_own_file(trained_with_own_file):
    algo, folder = trained_with_own_file
    run_folder = folder / "logs" / algo / "CartPole-v1_1"
    config = dict(yaml.load((run_folder / "CartPole-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader))
    entry, attributes = OWN_FILE_ENTRIES[algo]
    assert {key: config[key] for key in entry} == entry
    assert config["learning_starts"] == 100  # -params wins over the file
    model = ZOO_ALGORITHMS[algo].cls.load(run_folder / "CartPole-v1.zip")
    assert {name: operator.attrgetter(name)(model) for name in attributes} == attributes
    assert model.num_timesteps >= 600 and model._n_updates > 0 and (run_folder / "best_model.zip").exists()


def test_enjoy_and_plot_what_it_trained(trained_with_own_file, monkeypatch):
    algo, folder = trained_with_own_file
    monkeypatch.setenv("MPLBACKEND", "Agg")
    command = [*ZOO, "enjoy", "--algo", algo, "--env", "CartPole-v1", "-f", "logs", "-n", "200", "--no-render"]
    assert f"Loading logs/{algo}/CartPole-v1_1/CartPole-v1.zip" in run(command, folder).stdout
    command = [*ZOO, "plot_train", "--algo", algo, "--env", "CartPole-v1", "-f", "logs", "-w", "1"]
    assert_png(folder, f"logs/{algo}/CartPole-v1_Training_Episodic_Reward.png", run(command, folder).stdout)


@pytest.mark.parametrize(
    "algo, own_params",
    [("dueling_qrdqn", {"n_quantiles"}), ("rainbow", {"n_atoms", "v_max", "per_alpha", "noisy"})],
)
def test_optimize_on_sqlite(tmp_path, algo, own_params):
    command = [*ZOO, "train", "--algo", algo, "--env", "CartPole-v1", "--seed", "0", "-n", "300", "-f", "logs"]
    command += ["-optimize", "--n-trials", "2", "--n-evaluations", "1", "--eval-episodes", "2", "--no-optim-plots"]
    assert "Best trial:" in run(command, tmp_path).stdout
    storage = f"sqlite:///{tmp_path / 'logs' / algo / 'optuna.db'}"
    study = optuna.load_study(study_name=f"{algo}_CartPole-v1", storage=storage)
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert own_params | {"double_q", "aggregation", "stream_units", "n_steps", "learning_rate"} <= set(study.best_params)


def test_stock_zoo_qrdqn_with_the_dueling_policies(tmp_path):
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "qrdqn", *QUICK, "--gym-packages", "sb3_dueling"]
    run([*command, "-conf", str(QRDQN_CONFIG), "-f", "logs", "--eval-freq", "-1", "-params", "learning_starts:100"], tmp_path)
    model = QRDQN.load(tmp_path / "logs" / "qrdqn" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert type(model.policy).__name__ == "DuelingQRDQNPolicy" and model.policy.n_quantiles == 10


def bad_yaml(folder: Path, key: str, value: object) -> Path:
    entries = yaml.safe_load(DUELING_DQN_CONFIG.read_text())
    entries["CartPole-v1"][key] = value
    path = folder / "bad.yml"
    path.write_text(yaml.safe_dump(entries))
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--env", "CartPol-v1"],
            "unknown env id 'CartPol-v1': it is not in the Gymnasium registry (did you mean 'CartPole-v1'?)",
        ),
        (
            ["--env", "Pendulum-v1"],
            "Pendulum-v1 has the action space Box(-2.0, 2.0, (1,), float32); dueling_dqn needs a discrete",
        ),
        (
            ["-params", "aggregation:median"],
            'policy: give it in policy_kwargs, as in -params policy_kwargs:"dict(aggregation=...)"',
        ),
        (["-params", "policy_kwargs:dict(aggregation='median')"], "aggregation must be one of ['mean', 'max'], got 'median'"),
        (
            ["-conf", "BAD_POLICY"],
            "'MlpPolcy' is not a policy of dueling_dqn (did you mean 'MlpPolicy'?); choose from MlpPolicy,",
        ),
        (["-i", "model.zip"], "-i model.zip: no such model file"),
        (["-params", "learning_rat:0.1"], "-params: 'learning_rat' is not a hyperparameter of dueling_dqn (did you mean"),
        (
            ["--algo", "dueling_qrdqn", "-params", "policy_kwargs:dict(n_quantiles=0)"],
            "-params: policy_kwargs n_quantiles must be a positive int, got 0",
        ),
        (
            ["--algo", "rainbow", "-params", "policy_kwargs:dict(v_min=200.0)"],
            # the policy's v_max: the policy_kwargs of -params replace the file's, as in the Zoo
            "-params: policy_kwargs v_min must be smaller than v_max, got v_min=200.0, v_max=10.0",
        ),
        (["-conf", "BAD_KEY"], "entry 'CartPole-v1': 'learning_rat' is not a hyperparameter of dueling_dqn"),
        (["-conf", "BAD_POLICY_KWARGS"], "'net_arc' is not an argument of DuelingDQNPolicy in policy_kwargs (did you mean"),
        (["-conf", "missing.yml"], "-conf 'missing.yml': no such file"),
        (["-optimize", "--storage", "redis://localhost/0"], "unsupported --storage 'redis://localhost/0'"),
        (["-optimize", "--storage", "postgresql://user:secret@127.0.0.1:1/db"], "cannot reach the --storage database"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, args, message):
    (tmp_path / "logs" / "keep.txt").parent.mkdir()
    (tmp_path / "logs" / "keep.txt").write_text("mine")
    bad_files = {
        "BAD_KEY": lambda: bad_yaml(tmp_path, "learning_rat", 0.001),
        "BAD_POLICY_KWARGS": lambda: bad_yaml(tmp_path, "policy_kwargs", "dict(net_arc=[64])"),
        "BAD_POLICY": lambda: bad_yaml(tmp_path, "policy", "MlpPolcy"),
    }
    args = [str(bad_files[arg]()) if arg in bad_files else arg for arg in args]
    result = run([*ZOO, "train", "-f", "logs", "-n", "100", *args], tmp_path, expect_ok=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr  # passwords are not echoed
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    "args, looked_for",
    [
        ([], "The logs/dueling_dqn folder was not found"),
        (["--load-best", "--exp-id", "1"], "path: logs/dueling_dqn/CartPole-v1_1/best_model.zip"),
    ],
)
def test_enjoy_without_a_model_names_what_it_looked_for(tmp_path, args, looked_for):
    if args:
        (tmp_path / "logs" / "dueling_dqn" / "CartPole-v1_1").mkdir(parents=True)
    before = sorted(tmp_path.rglob("*"))
    result = run([*ZOO, "enjoy", "--env", "CartPole-v1", "-f", "logs", "--no-render", *args], tmp_path, expect_ok=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: no model to enjoy: ") and looked_for in result.stderr
    assert "train one with: python -m sb3_dueling.zoo train --algo dueling_dqn --env CartPole-v1 -f logs" in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_enjoy_unknown_env_and_console_script(tmp_path):
    console_script = str(Path(sys.executable).parent / "sb3-dueling-zoo")
    result = run([console_script, "enjoy", "--algo", "dueling_dqn", "--env", "Pong"], tmp_path, expect_ok=False)
    assert result.returncode == 2 and "unknown env id 'Pong'" in result.stderr


def test_unknown_command(tmp_path):
    result = run([*ZOO, "tran"], tmp_path, expect_ok=False)
    assert result.returncode == 2 and "unknown command 'tran'" in result.stderr


POSTGRES_URL = os.environ.get("SB3_DUELING_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    POSTGRES_URL is None and os.environ.get("CI") != "true",
    reason="needs a PostgreSQL server: set SB3_DUELING_TEST_POSTGRES_URL (.ci/run starts one)",
)


@pytest.fixture
def empty_postgres_database() -> Iterator[str]:
    """The URL of an empty database on the test server: a fresh schema, dropped afterwards."""
    assert POSTGRES_URL, "CI must provide SB3_DUELING_TEST_POSTGRES_URL (see .ci/run)"
    schema = f"test_{os.getpid()}_{time.monotonic_ns()}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@needs_postgres
def test_workers_open_an_empty_database_together(empty_postgres_database):
    # Without the retry, 3 in 4 of such workers failed here with a duplicate-key error from CREATE TYPE
    start = threading.Barrier(4)
    errors: list[Exception] = []

    def worker() -> None:
        start.wait()
        try:
            open_database_storage(empty_postgres_database)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert optuna.get_all_study_names(empty_postgres_database) == []  # the tables are there, and empty


def test_opening_a_database_gives_up_with_the_database_error(monkeypatch):
    calls = []

    def racing_storage(*args, **kwargs):
        calls.append(args)
        raise sqlalchemy.exc.IntegrityError("CREATE TYPE studydirection", {}, Exception("duplicate key"))

    monkeypatch.setattr(studies, "MaskedRDBStorage", racing_storage)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="duplicate key"):
        open_database_storage("sqlite:///unused.db", attempts=3)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        open_database_storage("sqlite:///unused.db", attempts=0)


def test_opening_a_database_leaves_the_global_random_state_alone(monkeypatch):
    calls = []

    def storage_that_races_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise sqlalchemy.exc.IntegrityError("CREATE TYPE studydirection", {}, Exception("duplicate key"))
        return "storage"

    monkeypatch.setattr(studies, "MaskedRDBStorage", storage_that_races_once)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    random.seed(1234)
    state = random.getstate()
    assert open_database_storage("sqlite:///unused.db") == "storage" and len(calls) == 2  # it paused once
    assert random.getstate() == state  # the pause drew from its own generator


@needs_postgres
def test_two_workers_share_a_postgresql_study(tmp_path, empty_postgres_database):
    # Both workers start on an empty database, as on the first day of a shared study
    study_name = "two_workers"
    command = [*ZOO, "train", *QUICK, "-optimize", "--n-trials", "2", "--n-evaluations", "1", "--eval-episodes", "2"]
    command += ["--storage", empty_postgres_database, "--study-name", study_name, "--no-optim-plots"]
    workers = [
        subprocess.Popen(
            [*command, "-f", f"worker{i}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, out[-2000:] + err[-2000:]
        assert "Best trial:" in out and "Params:" in out
    study = optuna.load_study(study_name=study_name, storage=empty_postgres_database)
    assert len(study.trials) == 4  # both workers' trials are in the one study
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)


@needs_postgres
def test_the_database_password_stays_out_of_the_output_the_files_and_the_study(tmp_path, empty_postgres_database, monkeypatch):
    url = sqlalchemy.engine.make_url(empty_postgres_database)
    password = url.password
    assert password
    # the common form, postgres://, with the password on the command line (the worst case: it shows in ps)
    given = empty_postgres_database.replace("postgresql://", "postgres://", 1)
    command = [*ZOO, "train", "--env", "CartPole-v1", "--seed", "0", "-n", "200", "-f", "logs", "-optimize"]
    command += ["--n-trials", "2", "--n-evaluations", "1", "--eval-episodes", "1", "--no-optim-plots"]
    result = run([*command, "--storage", given, "--study-name", "secret"], tmp_path)
    assert "Best trial:" in result.stdout
    # a training run with the trial's hyperparameters: the Zoo writes its args.yml and command.txt
    command = [*ZOO, "train", "--env", "CartPole-v1", "-n", "200", "-f", "logs", "--eval-freq", "-1", "--trial-id", "1"]
    trained = run([*command, "--storage", given, "--study-name", "secret"], tmp_path)
    assert "Loading from Optuna study" in trained.stdout
    # The URL forms of the password, and the password itself unless it is a word of the package's (as in CI's)
    needles = {f":{password}@", f":{quote(password, safe='')}@"} | ({password} if password not in "sb3_dueling" else set())
    texts = {"stdout": result.stdout + trained.stdout, "stderr": result.stderr + trained.stderr}
    texts |= {str(path): path.read_bytes().decode("latin-1") for path in tmp_path.rglob("*") if path.is_file()}
    assert any(name.endswith("command.txt") for name in texts) and any("report_" in name for name in texts)
    for name, text in texts.items():
        assert not any(needle in text for needle in needles), name
    study = optuna.load_study(study_name="secret", storage=empty_postgres_database)
    assert "command" in study.user_attrs  # the Zoo's: the command line
    engine = sqlalchemy.create_engine(empty_postgres_database)
    with engine.connect() as connection:  # every row of every table of the study's database
        rows = [
            list(connection.execute(sqlalchemy.text(f"SELECT * FROM {table}")))
            for table in sqlalchemy.inspect(connection).get_table_names()
        ]
    engine.dispose()
    assert len(rows) > 5 and not any(needle in str(rows) for needle in needles)
    args = yaml.load(next(tmp_path.glob("logs/dueling_dqn/CartPole-v1_*/CartPole-v1/args.yml")).read_text(), yaml.UnsafeLoader)
    assert args["storage"] == url.render_as_string(hide_password=True)  # postgres:// read as postgresql://
    # Nothing lost: the report's study reopens the database, with the password from PostgreSQL's own variable
    monkeypatch.setenv("PGPASSWORD", password)
    report = load_from_pkl(next(tmp_path.glob("logs/dueling_dqn/report_*.pkl")))
    assert [trial.state for trial in report.trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_enjoy_of_another_algorithms_model_names_the_file_and_the_load(tmp_path):
    run_folder = tmp_path / "logs" / "dueling_dqn" / "CartPole-v1_1"
    run_folder.mkdir(parents=True)
    DuelingQRDQN("MlpPolicy", "CartPole-v1", buffer_size=100).save(run_folder / "CartPole-v1.zip")
    result = run([*ZOO, "enjoy", "--env", "CartPole-v1", "-f", "logs", "--no-render", "-n", "5"], tmp_path, expect_ok=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "CartPole-v1.zip: a DuelingQRDQN model" in result.stderr and "DuelingQRDQN.load" in result.stderr
