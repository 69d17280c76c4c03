"""The benchmark suite's own logic: grid, resume, one real (tiny) run, statistics and report."""

import json
import subprocess
import sys
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN

from benchmarks import atari, minatar
from benchmarks.grid import (
    BUDGETS,
    RESULTS,
    Run,
    Settings,
    execute,
    expand_grid,
    has_current_hyperparameters,
    made_with_other_settings,
    main,
    pending,
    recorded_hyperparameters,
    write_json_atomically,
)
from benchmarks.report import (
    atari_section,
    load_atari_results,
    load_minatar_results,
    load_results,
    minatar_section,
    plot,
    plot_minatar,
    summarise,
    summarise_minatar,
    write_report,
)
from benchmarks.report import main as report_main
from benchmarks.speed import (
    FAMILIES,
    LEARNERS,
    PER,
    Learner,
    Measurement,
    build,
    measure,
    qrdqn_with_our_loss,
    steps_per_second,
    with_fused_adam,
)
from benchmarks.step_profile import PHASES, compute_limit, kernels, profile_learner
from benchmarks.variants import VARIANTS, Variant, load_hyperparameters, read_schedules, zoo_folder
from sb3_dueling import DuelingDQN, Rainbow
from sb3_dueling.noisy import NoisyLinear
from sb3_dueling.torch_layers import MinAtarConvExtractor
from sb3_dueling.user_input import DUELING_DQN_CONFIG


def test_expand_grid():
    runs = expand_grid(["DuelingDQN", "DQN"], ["CartPole-v1", "Acrobot-v1"], range(3))
    assert len(runs) == 12 and len(set(runs)) == 12
    assert runs[0] == Run("DuelingDQN", "CartPole-v1", 0) and runs[-1] == Run("DQN", "Acrobot-v1", 2)
    with pytest.raises(ValueError, match="unknown algorithm 'DDQN'"):
        expand_grid(["DDQN"], ["CartPole-v1"], range(1))
    with pytest.raises(ValueError, match="unknown env 'Pong'"):
        expand_grid(["DQN"], ["Pong"], range(1))


def test_every_algorithm_has_hyperparameters_for_every_env():
    for variant in VARIANTS.values():
        for env in BUDGETS:
            policy, n_timesteps, hyperparams = variant.hyperparameters(env)
            assert policy == "MlpPolicy" and n_timesteps == BUDGETS[env]
            assert "policy" not in hyperparams and isinstance(hyperparams.get("policy_kwargs", {}), dict)
            changed = {key: value for key, value in variant.kwargs.items() if key != "policy_kwargs"}
            assert hyperparams.items() >= changed.items()
            # a variant's policy_kwargs are added to the entry's, which it keeps
            entry_policy_kwargs = load_hyperparameters(variant.config, env).kwargs.get("policy_kwargs", {})
            assert hyperparams.get("policy_kwargs", {}) == {**entry_policy_kwargs, **variant.kwargs.get("policy_kwargs", {})}
    assert load_hyperparameters(zoo_folder() / "qrdqn.yml", "CartPole-v1").kwargs["policy_kwargs"]["n_quantiles"] == 10
    assert load_hyperparameters(DUELING_DQN_CONFIG, "CartPole-v1").kwargs["learning_rate"] == 1e-3


def test_the_grid_does_not_import_the_zoo():
    # rl_zoo3.exp_manager would add about 40 MB to the peak memory each run records
    code = "import sys, benchmarks.grid; print(sorted(m for m in sys.modules if m.startswith(('rl_zoo3', 'optuna'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_speed_measures_each_learner_with_the_zoo_dqn_hyperparameters():
    for name in (*LEARNERS, PER):
        assert steps_per_second(name, "CartPole-v1", 100, seed=0) > 0
    assert FAMILIES["dqn"].learners == LEARNERS and FAMILIES["qrdqn"].learners[0] == "QRDQN"
    assert with_fused_adam({"policy_kwargs": {"net_arch": [8]}})["policy_kwargs"] == {
        "net_arch": [8],
        "optimizer_kwargs": {"fused": True},
    }


@pytest.mark.parametrize("learner", [Learner("QRDQN"), Learner("DuelingQRDQN"), Learner("QRDQN", our_loss=True)])
def test_speed_measures_the_quantile_learners_with_the_zoo_qrdqn_entry(learner):
    result = measure(learner, "CartPole-v1", 300, seed=0, threads=1, config_of="QRDQN", learning_starts=0)
    assert result.steps_per_second > 0 and result.peak_rss_mb > 50 and result.training_rss_mb >= 0
    hyperparams = VARIANTS[learner.variant].hyperparameters("LunarLander-v3", config=VARIANTS["QRDQN"].config).kwargs
    assert hyperparams["policy_kwargs"]["n_quantiles"] == 170  # the Zoo's entry, not dueling_qrdqn.yml's 50


def test_speed_measures_duelingqrdqn_with_its_own_entry_when_asked(monkeypatch):
    import benchmarks.speed as speed

    seen = []
    monkeypatch.setattr(speed, "steps_per_second", lambda *args: seen.append(args[5]) or 1.0)
    measure(Learner("DuelingQRDQN", own_entry=True), "LunarLander-v3", 1, 0, 1, config_of="QRDQN", learning_starts=None)
    measure(Learner("DuelingQRDQN"), "LunarLander-v3", 1, 0, 1, config_of="QRDQN", learning_starts=None)
    assert seen == ["DuelingQRDQN", "QRDQN"]
    n_quantiles = [
        VARIANTS["DuelingQRDQN"]
        .hyperparameters("LunarLander-v3", config=VARIANTS[name].config)
        .kwargs["policy_kwargs"]["n_quantiles"]
        for name in seen
    ]
    assert n_quantiles == [50, 170]


def test_the_rainbow_family_measures_each_learner_with_its_own_entry():
    family = FAMILIES["rainbow"]
    assert family.own_entries and family.learners[0] == "DuelingQRDQN" and family.candidate == "Rainbow"
    rainbow = Learner("Rainbow", own_entry=True)
    result = measure(rainbow, "CartPole-v1", 200, 0, 1, config_of="DuelingQRDQN", learning_starts=50)
    assert result.steps_per_second > 0


def test_speed_builds_the_minatar_protocols_learners_on_a_game():
    dqn, rainbow = build("DQN", "Breakout", 0), build("Rainbow", "Breakout", 0)
    assert type(dqn) is DQN and type(rainbow) is Rainbow
    for model in (dqn, rainbow):
        assert model.observation_space.shape == (4, 10, 10) and model.observation_space.dtype == np.uint8
        assert isinstance(model.q_net.features_extractor, MinAtarConvExtractor)
        assert (model.learning_starts, model.train_freq.frequency, model.batch_size) == (1000, 4, 32)
    assert dqn.learning_rate == 2.5e-4 and rainbow.learning_rate == 1e-4 and rainbow.n_steps == 3
    assert rainbow.policy.n_atoms == 51 and any(isinstance(layer, NoisyLinear) for layer in rainbow.policy.modules())
    assert not any(isinstance(layer, NoisyLinear) for layer in dqn.policy.modules())
    # --learning-starts replaces the protocol's while the model is built, and only then
    assert build("DQN", "Breakout", 0, learning_starts=10).learning_starts == 10 and minatar.COMMON["learning_starts"] == 1000
    with pytest.raises(ValueError, match="the protocol's settings"):
        build("DQN", "Breakout", 0, config_of="DuelingQRDQN")


@pytest.mark.parametrize("learner", ["DQN", "Rainbow"])
def test_speed_measures_the_minatar_protocols_learners(learner):
    # past learning_starts: the timed steps include gradient steps, as in a real run
    result = measure(Learner(learner, own_entry=True), "Breakout", 120, 0, 1, config_of="DQN", learning_starts=40)
    assert result.steps_per_second > 0 and result.peak_rss_mb > 50 and result.training_rss_mb >= 0


def test_speed_on_a_minatar_game_runs_the_family_learners_the_protocol_has(monkeypatch, capsys):
    import benchmarks.speed as speed

    measured = []
    monkeypatch.setattr(speed, "in_fresh_process", lambda *args: measured.append(args) or Measurement(100.0, 300.0, 5.0))
    speed.main(["--family", "rainbow", "--env", "Breakout", "--steps", "1001", "--repeats", "1"])
    output = capsys.readouterr().out
    assert "DuelingQRDQN is left out: benchmarks.minatar has a MinAtar protocol only for DQN, DuelingDQN and Rainbow" in output
    assert [(args[0], args[1], args[5]) for args in measured] == [
        (Learner("DQN", own_entry=True), "Breakout", "DQN"),
        (Learner("Rainbow", own_entry=True), "Breakout", "DQN"),
    ]
    assert "Breakout, 1001 steps, 1 repeats, torch threads 1, the MinAtar protocol of benchmarks.minatar" in output
    # The dqn family: DQN and DuelingDQN, each with the protocol's own settings (not DQN's YAML entry)
    measured.clear()
    speed.main(["--family", "dqn", "--env", "Breakout", "--steps", "1001", "--repeats", "1"])
    assert "DuelingDQN(double_q=False) is left out" in capsys.readouterr().out
    assert [args[0] for args in measured] == [Learner("DQN", own_entry=True), Learner("DuelingDQN", own_entry=True)]
    with pytest.raises(SystemExit) as exit_status:
        speed.main(["--family", "qrdqn", "--env", "Breakout"])  # none of its learners has MinAtar settings
    assert exit_status.value.code == 2
    assert "--family qrdqn: benchmarks.minatar has a MinAtar protocol only for" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_status:
        speed.main(["--family", "rainbow", "--env", "Breakout", "--steps", "1000"])  # no gradient step
    assert exit_status.value.code == 2 and "the MinAtar protocol learns from step 1000" in capsys.readouterr().err


def test_our_loss_replaces_sb3_contribs_in_qrdqn_only_within_the_block():
    from sb3_contrib.common.utils import quantile_huber_loss
    from sb3_contrib.qrdqn import qrdqn

    current, target = th.randn(4, 7), th.randn(4, 7)
    with qrdqn_with_our_loss():
        assert qrdqn.quantile_huber_loss is not quantile_huber_loss
        assert th.allclose(qrdqn.quantile_huber_loss(current, target), quantile_huber_loss(current, target))
    assert qrdqn.quantile_huber_loss is quantile_huber_loss


@pytest.mark.parametrize("learner", ["DQN", "Rainbow"])
def test_step_profile_splits_the_timed_steps_into_phases(learner):
    backward, clip = th.Tensor.backward, th.nn.utils.clip_grad_norm_
    # no warm-up beyond learning_starts: one train() call then, and one in the 256 timed steps (train_freq 256)
    result = profile_learner(learner, "CartPole-v1", 256, seed=0, warmup=0, updates=3)
    assert th.Tensor.backward is backward and th.nn.utils.clip_grad_norm_ is clip  # the patches are undone
    assert list(result.seconds) == list(PHASES) and all(seconds >= 0 for seconds in result.seconds.values())
    # The same clock: the phases fill the timed call, but for the instants around it (a pre-emption there: abs)
    assert sum(result.seconds.values()) == pytest.approx(result.wall_seconds, rel=0.01, abs=0.05)
    assert result.env_steps >= 256 and result.gradient_steps == 128
    for phase in ("env step", "acting", "storing", "sampling", "forward", "backward", "clip", "optimizer", "update, rest"):
        assert result.seconds[phase] > 0, phase
    assert (result.seconds["priorities"] > 0) == (learner == "Rainbow")  # prioritized replay
    assert result.compute_limit > 0


def test_the_compute_limit_is_part_of_the_updates_wall_time():
    # Not two timings compared (the machine's load could flip them): the kernels of the profiled updates run
    # one after the other inside them, so their time is part of the updates' own wall time
    model = build("DQN", "CartPole-v1", 0, learning_starts=64)
    model.learn(200)
    start = time.perf_counter()
    limit = compute_limit(model, updates=3)  # one update outside the profile, then three
    assert 0 < 3 * limit < time.perf_counter() - start


def test_the_compute_limit_counts_the_kernels_not_the_composites():
    inputs, weight, bias = th.randn(64, 32), th.randn(16, 32, requires_grad=True), th.randn(16, requires_grad=True)
    with th.profiler.profile(activities=[th.profiler.ProfilerActivity.CPU]) as profile:
        th.nn.functional.linear(inputs, weight, bias).relu().mean().backward()
    names = {event.name for event in kernels(profile.events())}
    assert {"aten::addmm", "aten::clamp_min", "aten::sum", "aten::mm"} <= names  # mean is sum then div_
    assert not names & {"aten::linear", "aten::relu", "aten::mean", "aten::t", "aten::empty", "aten::view"}


#: Settings of a quick run
QUICK = Settings(steps=300, eval_freq=150, eval_episodes=2)


def result_made_with(run: Run, settings: Settings, **changes: str) -> dict:
    """The fields of a result file that tell whether it is current, without training."""
    return {**settings.of(run), "hyperparams": {**recorded_hyperparameters(run), **changes}}


def test_resume_skips_finished_runs_and_redoes_killed_ones(tmp_path):
    runs = expand_grid(["DuelingDQN", "DQN"], ["CartPole-v1"], range(2))
    write_json_atomically(result_made_with(runs[0], QUICK), runs[0].path(tmp_path))
    killed = runs[1].path(tmp_path)
    killed.parent.mkdir(parents=True, exist_ok=True)
    killed.with_name(f".{killed.name}.123.tmp").write_text('{"half')  # a run killed while writing
    assert pending(runs, tmp_path, QUICK) == runs[1:]


def test_a_result_from_other_hyperparameters_is_redone(tmp_path):
    run = Run("DuelingDQN", "CartPole-v1", 0)
    write_json_atomically(result_made_with(run, QUICK, learning_rate="0.5"), run.path(tmp_path))
    assert pending([run], tmp_path, QUICK) == [run]
    write_json_atomically(result_made_with(run, QUICK), run.path(tmp_path))
    assert pending([run], tmp_path, QUICK) == []


@pytest.mark.parametrize(
    "made_with, asked_for",
    [
        (Settings(), QUICK),  # the committed results are no quick check's
        (QUICK, Settings()),  # nor is a quick check the grid's result
        (QUICK, Settings(steps=300, eval_freq=100, eval_episodes=2)),
        (QUICK, Settings(steps=300, eval_freq=150, eval_episodes=5)),
    ],
)
def test_a_result_made_with_other_settings_is_not_current(made_with, asked_for, tmp_path):
    run = Run("DQN", "CartPole-v1", 0)
    write_json_atomically(result_made_with(run, made_with), run.path(tmp_path))
    assert pending([run], tmp_path, made_with) == [] and pending([run], tmp_path, asked_for) == [run]
    assert pending([run], tmp_path, Settings(steps=BUDGETS["CartPole-v1"])) == pending([run], tmp_path, Settings())


def test_the_committed_results_are_current_for_the_default_settings():
    # every committed file records the settings it was made with (budget, eval_freq, eval_episodes)
    records = [json.loads(path.read_text()) for path in RESULTS.glob("*/*/seed_*.json")]
    runs = [Run(record["algo"], record["env"], record["seed"]) for record in records]
    assert len(runs) >= len(VARIANTS) * len(BUDGETS) and made_with_other_settings(runs, RESULTS, Settings()) == []
    # as current as before the settings counted: only the runs of an older YAML entry are not
    older_entry = [run for run, record in zip(runs, records) if not has_current_hyperparameters(record, run)]
    assert pending(runs, RESULTS, Settings()) == older_entry and len(older_entry) < len(runs) // 10
    assert made_with_other_settings(runs, RESULTS, Settings(steps=2000, eval_freq=1000)) == runs


def test_the_grid_keeps_a_result_made_with_other_settings(tmp_path, monkeypatch, capsys):
    run = Run("DQN", "CartPole-v1", 0)
    write_json_atomically(result_made_with(run, Settings()), run.path(tmp_path))
    written = run.path(tmp_path).read_bytes()
    monkeypatch.setattr("benchmarks.grid.ray_session", lambda *args: pytest.fail("the grid started"))
    with pytest.raises(SystemExit) as exit_status:
        quick = ["--steps", "300", "--eval-freq", "150"]
        main(["--algos", "DQN", "--envs", "CartPole-v1", "--seeds", "1", *quick, "--results", str(tmp_path)])
    assert exit_status.value.code == 2 and run.path(tmp_path).read_bytes() == written
    assert (
        f"--results: {tmp_path} has results of 1 of these runs made with other settings (CartPole-v1/DQN/seed_0.json: "
        "budget 50000, eval_freq 5000, eval_episodes 10; asked for: budget 300, eval_freq 150, eval_episodes 10)."
        " They are kept: give these settings a folder of their own with --results"
    ) in capsys.readouterr().err


@pytest.mark.parametrize("algo", ["DuelingDQN", "QRDQN", "DuelingQRDQN"])  # QRDQN adds to policy_kwargs in place
def test_execute_writes_a_result(tmp_path, algo):
    run = Run(algo, "CartPole-v1", 0)
    write_json_atomically(execute(run, QUICK), run.path(tmp_path))
    result = json.loads(run.path(tmp_path).read_text())
    assert result["timesteps"] == [150, 300] and len(result["eval_returns"]) == 2
    assert result["final_return"] == result["eval_returns"][-1] > 0
    assert result["steps_per_second"] > 0 and result["peak_rss_mb"] > 50
    assert pending([run], tmp_path, QUICK) == []
    assert [p.name for p in run.path(tmp_path).parent.iterdir()] == ["seed_0.json"]  # no temporary file left


def test_execute_reads_a_linear_schedule_as_the_zoo_does(tmp_path, monkeypatch):
    variant = Variant(DuelingDQN, DUELING_DQN_CONFIG, {"learning_rate": "lin_1e-3"})
    monkeypatch.setitem(VARIANTS, "DuelingDQN", variant)
    run = Run("DuelingDQN", "CartPole-v1", 0)
    write_json_atomically(execute(run, QUICK), run.path(tmp_path))
    assert json.loads(run.path(tmp_path).read_text())["hyperparams"]["learning_rate"] == "'lin_1e-3'"
    assert pending([run], tmp_path, QUICK) == []  # recorded as written in the YAML file, so the run is current


def test_read_schedules_decays_lin_to_zero_and_rejects_other_strings():
    schedule = read_schedules({"learning_rate": "lin_1.5e-3", "batch_size": 128})
    assert schedule["batch_size"] == 128
    assert [schedule["learning_rate"](progress) for progress in (1.0, 0.5, 0.0)] == pytest.approx([1.5e-3, 7.5e-4, 0.0])
    assert read_schedules({"learning_rate": 6.3e-4}) == {"learning_rate": 6.3e-4}
    with pytest.raises(ValueError, match="learning_rate must be a number or 'lin_"):
        read_schedules({"learning_rate": "exp_1e-3"})


def synthetic_results(folder, shift: float, offsets: dict[str, float] | None = None) -> None:
    """CartPole and Acrobot results where DuelingDQN is `shift` better than DQN in every seed (or these `offsets`)."""
    rng = np.random.default_rng(0)
    for env, base in (("CartPole-v1", 300.0), ("Acrobot-v1", -120.0)):
        for algo, offset in (offsets or {"DuelingDQN": shift, "DQN": 0.0}).items():
            for seed in range(10):
                curve = [base / 2 + rng.normal(), base + offset + rng.normal()]
                record = {"algo": algo, "env": env, "seed": seed, "timesteps": [5000, 10000], "eval_returns": curve}
                record.update(final_return=curve[-1], steps_per_second=1000.0 + offset, peak_rss_mb=300.0)
                record["hyperparams"] = recorded_hyperparameters(Run(algo, env, seed))
                write_json_atomically(record, Run(algo, env, seed).path(folder))


def test_statistics_on_synthetic_results(tmp_path):
    synthetic_results(tmp_path, shift=50.0)
    records, stale = load_results(tmp_path)
    assert stale == []
    summary = summarise(records, reps=200)
    assert summary["envs"] == ["CartPole-v1", "Acrobot-v1"]
    point, low, high = summary["per_env"]["CartPole-v1"]["DuelingDQN"]
    assert point == pytest.approx(350.0, abs=1.0) and low <= point <= high
    assert summary["per_env"]["CartPole-v1"]["DQN"][0] == pytest.approx(300.0, abs=1.0)
    # every DuelingDQN run beats every DQN run: probability of improvement 1
    improvement = summary["improvement"][("DuelingDQN", "DQN")]
    assert improvement["CartPole-v1"][0] == pytest.approx(1.0)
    assert improvement["all (normalised)"][0] == pytest.approx(1.0)
    # normalised over envs: (350 - 22) / (500 - 22) and (-70 + 500) / (-75 + 500) for DuelingDQN
    assert summary["overall"]["DuelingDQN"][0] == pytest.approx(np.mean([328 / 478, 430 / 425]), abs=0.02)
    assert len(summary["curves"]["Acrobot-v1"]["iqm"]["DQN"]) == 2


def test_statistics_are_reproducible(tmp_path):
    synthetic_results(tmp_path, shift=5.0)
    records, _ = load_results(tmp_path)
    first, second = summarise(records, reps=100), summarise(records, reps=100)
    assert first["per_env"] == second["per_env"] and first["improvement"] == second["improvement"]
    assert first["per_env"]["CartPole-v1"]["DQN"][1] < first["per_env"]["CartPole-v1"]["DQN"][0]  # a real interval
    np.testing.assert_array_equal(first["curves"]["Acrobot-v1"]["ci"]["DQN"], second["curves"]["Acrobot-v1"]["ci"]["DQN"])


def test_report_is_generated(tmp_path):
    synthetic_results(tmp_path / "results", shift=-20.0)
    stale_run = Run("DQN", "CartPole-v1", 10)
    write_json_atomically({**asdict(stale_run), "hyperparams": {"learning_rate": "1.0"}}, stale_run.path(tmp_path / "results"))
    records, stale = load_results(tmp_path / "results")
    assert stale == [stale_run.path(tmp_path / "results")] and len(records["CartPole-v1"]["DQN"]) == 10
    summary = summarise(records, reps=100)
    images = plot(summary, tmp_path / "docs" / "images")
    write_report(summary, images, tmp_path / "docs" / "benchmark.md", stale)
    report = (tmp_path / "docs" / "benchmark.md").read_text()
    assert "![learning curves](images/learning_curves.png)" in report
    assert "| CartPole-v1 | 0.00 [0.00, 0.00] |" in report  # DuelingDQN is worse in every seed here
    assert "Left out: 1 result file(s) run with other hyperparameters" in report
    assert "Seeds per cell: 10." in report
    # goals: DuelingDQN at 280 on CartPole (goal 500, DQN 300), -140 on Acrobot (goal -75, DQN -120)
    goal_rows = [line for line in report.splitlines() if line.startswith("| CartPole-v1 | 500 |")]
    assert goal_rows[0].startswith("| CartPole-v1 | 500 | 280.0 | no | 300.") and goal_rows[0].endswith("| no | 10 |")
    assert "| Acrobot-v1 | DuelingDQN | 980 | 300 | 0.980 | 1.000 |" in report
    for image in images.values():
        assert image.stat().st_size > 10_000 and image.read_bytes()[:4] == b"\x89PNG"


def test_report_of_a_partial_grid_with_the_quantile_learners(tmp_path):
    results = tmp_path / "results"
    synthetic_results(results, shift=0.0, offsets={"DuelingDQN": 10.0, "DQN": 0.0, "QRDQN": 5.0})
    run = Run("DuelingQRDQN", "CartPole-v1", 0)  # one real seed
    write_json_atomically(execute(run, QUICK), run.path(results))
    final = json.loads(run.path(results).read_text())["final_return"]
    records, stale = load_results(results)
    assert stale == [] and len(records["CartPole-v1"]["DuelingQRDQN"]) == 1 and "DuelingQRDQN" not in records["Acrobot-v1"]
    summary = summarise(records, reps=100)
    assert summary["per_env"]["CartPole-v1"]["DuelingQRDQN"][0] == pytest.approx(final)
    assert "DuelingQRDQN" not in summary["overall"]  # not in every env yet
    write_report(summary, plot(summary, tmp_path / "docs" / "images"), tmp_path / "docs" / "benchmark.md")
    report = (tmp_path / "docs" / "benchmark.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| DuelingQRDQN |"))
    assert row.startswith(f"| DuelingQRDQN | {final:.1f} [{final:.1f}, {final:.1f}] | - | -")
    assert "Seeds per cell: 10, except DuelingQRDQN on CartPole-v1: 1." in report
    assert "## Goals: DuelingQRDQN (IQM of the final return) against the goal and against QRDQN" in report
    assert "| Acrobot-v1 | -70 |" not in report  # no DuelingQRDQN result there yet
    qrdqn_iqm = summary["per_env"]["CartPole-v1"]["QRDQN"][0]
    versus = "yes" if final >= qrdqn_iqm else "no"
    assert f"| CartPole-v1 | 500 | {final:.1f} | no | {qrdqn_iqm:.1f} | {versus} | 1 |" in report
    for baseline in ("QRDQN", "DuelingDQN"):
        section = report.split(f"## Probability of improvement: DuelingQRDQN over {baseline}")[1].split("##")[0]
        assert "| CartPole-v1 |" in section and "| 1 vs 10 |" in section and "all (normalised)" not in section
    # the DuelingDQN family's goals and comparisons are complete: their normalised rows are there
    assert (
        "Normalised IQM over all environments: " in report
        and "| all (normalised) | 1.00 [1.00, 1.00] | 10 vs 10 per env |" in report
    )
    run = json.loads(Run("DuelingQRDQN", "CartPole-v1", 0).path(results).read_text())
    speed, memory = run["steps_per_second"], run["peak_rss_mb"]
    # its ratios are to QRDQN's (synthetic: 1005 steps/s, 300 MB), not to DQN's
    assert f"| CartPole-v1 | DuelingQRDQN | {speed:.0f} | {memory:.0f} | {speed / 1005:.3f} | {memory / 300:.3f} |" in report


def test_atari_run_writes_speed_and_memory(tmp_path):
    atari.execute("DuelingDQN(double_q=False)", "PongNoFrameskip-v4", 300, 200, 600.0, 0, tmp_path)
    record = json.loads((tmp_path / "PongNoFrameskip-v4_DuelingDQN_double_q-False.json").read_text())
    assert record["timesteps"] == 300 and record["complete"] and record["policy"] == "DuelingNatureCnnPolicy"
    assert record["hyperparams"]["learning_starts"] == "200" and record["hyperparams"]["double_q"] == "False"
    assert record["training_steps_per_second"] > 0 and record["hardware"]["cpu_count"] >= 1
    # a run still going at the deadline stops there and says so
    atari.execute("DQN", "PongNoFrameskip-v4", 300, 200, 0.0, 0, tmp_path)
    stopped = json.loads((tmp_path / "PongNoFrameskip-v4_DQN.json").read_text())
    assert stopped["timesteps"] < 300 and not stopped["complete"] and stopped["training_steps_per_second"] is None


def test_report_has_the_atari_sets_with_ratios_to_dqn(tmp_path):
    hardware = {"gpu": "GPU X", "cpu": "CPU Y", "cpu_count": 16, "torch": "2", "cuda": "13", "stable_baselines3": "2.9"}
    for algo, speed, memory in [("DQN", 200.0, 100.0), ("DuelingDQN", 180.0, 130.0)]:
        record = {"algo": algo, "env": "PongNoFrameskip-v4", "budget": 1000, "timesteps": 1000, "hardware": hardware}
        record.update(steps_per_second=speed, training_steps_per_second=speed - 10, gpu_peak_allocated_mb=memory)
        record.update(peak_rss_mb=4000.0, hyperparams={"learning_starts": "100"})
        write_json_atomically(record, tmp_path / "atari" / "side_by_side" / f"Pong_{algo}.json")
    sets = load_atari_results(tmp_path)
    assert list(sets) == ["atari/side_by_side"] and len(sets["atari/side_by_side"]) == 2
    assert load_results(tmp_path) == ({}, [])  # not taken for grid results
    lines = atari_section(sets)
    assert any("GPU X, 16 CPU cores (CPU Y)" in line and "budget 1000" in line for line in lines)
    assert "| PongNoFrameskip-v4 | DuelingDQN | 1000 | 180 | 170 | 130 | 4000 | 0.900 | 1.300 |" in lines
    assert atari_section({}) == []


def minatar_results(folder, finals: dict[tuple[str, str], list[float]]) -> None:
    """MinAtar result files as ``benchmarks.minatar`` writes them: these final returns of (algo, game), a seed each."""
    for (algo, game), returns in finals.items():
        for seed, final in enumerate(returns):
            run = minatar.MinAtarRun(algo, game, seed)
            record = {**asdict(run), "budget": 1_000_000, "eval_freq": 50_000, "eval_episodes": 10}
            record.update(timesteps=[500_000, 1_000_000], eval_returns=[final / 2, final], final_return=final)
            record.update(steps_per_second=300.0, peak_rss_mb=900.0, hyperparams=recorded_hyperparameters(run))
            write_json_atomically(record, run.path(folder))


def minatar_report(results) -> str:
    records, left_out = load_minatar_results(results)
    summary = summarise_minatar(records, reps=50)
    image = plot_minatar(summary, results.parent / "docs" / "images")
    return "\n".join(minatar_section(summary, image and image.relative_to(results.parent / "docs"), left_out, results))


def test_the_report_without_minatar_results_says_not_yet_measured(tmp_path):
    (tmp_path / "docs" / "images").mkdir(parents=True)
    (tmp_path / "docs" / "images" / "minatar_curves.png").write_bytes(b"an old figure")
    section = minatar_report(tmp_path / "minatar")
    assert "**Not yet measured**: no current result files in" in section and "**Goal: not yet measured**" in section
    assert "| DQN | - | 0 | 7.5 |" in section and "| Rainbow | - | 0 | 93 |" in section  # the published figures
    assert "![MinAtar" not in section and not (tmp_path / "docs" / "images" / "minatar_curves.png").exists()


def test_the_report_reads_the_minatar_suite(tmp_path, monkeypatch):
    results = tmp_path / "results"
    synthetic_results(results, shift=5.0)
    # every Rainbow seed beats every DQN seed; DQN's IQM: the mean of the middle two of 1, 2, 3, 10
    minatar_results(
        results / "minatar", {(algo, game): finals for game in minatar.GAMES for algo, finals in
                              (("DQN", [1.0, 2.0, 3.0, 10.0]), ("Rainbow", [11.0, 12.0, 13.0, 14.0]))}
    )  # fmt: skip
    stale, quick = minatar.MinAtarRun("Rainbow", "Breakout", 4), minatar.MinAtarRun("DQN", "Asterix", 4)
    write_json_atomically({**asdict(stale), "hyperparams": {"learning_rate": "1.0"}}, stale.path(results / "minatar"))
    record = json.loads(minatar.MinAtarRun("DQN", "Asterix", 0).path(results / "minatar").read_text())
    write_json_atomically({**record, "seed": 4, "final_return": 99.0, "budget": 100_000}, quick.path(results / "minatar"))
    docs = tmp_path / "docs"
    argv = ["report", "--results", str(results), "--docs", str(docs), "--reps", "50"]
    monkeypatch.setattr(sys, "argv", [*argv, "--minatar-results", str(results / "minatar")])
    report_main()
    section = (docs / "benchmark.md").read_text().split("## MinAtar")[1]
    assert "| DQN | 2.5 [" in section and "| Rainbow | 12.5 [" in section and "| 4 | 7.5 |" in section
    assert section.count("| yes | 1.00 [1.00, 1.00] | 4 vs 4 |") == 3
    assert "| suite: all games | - | 1.00 [1.00, 1.00] | 4 vs 4 per game |" in section and "**Goal: met**." in section
    assert "**Partial suite**: fewer seeds than the paper's 10 runs in 6 cell(s)." in section
    assert "Seeds per cell: 4." in section
    assert "Left out: 2 result file(s)" in section
    assert "- `Breakout/Rainbow/seed_4.json`: other hyperparameters than `benchmarks/minatar.py` has now" in section
    assert "- `Asterix/DQN/seed_4.json`: other settings (budget 100000, eval_freq 50000, eval_episodes 10;" in section
    assert "![MinAtar learning curves](images/minatar_curves.png)" in section
    assert (docs / "images" / "minatar_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_the_minatar_section_names_what_is_missing_and_a_goal_not_met(tmp_path):
    finals = {("DQN", "Breakout"): [5.0], ("Rainbow", "Breakout"): [4.0], ("DQN", "Asterix"): [3.0]}
    minatar_results(tmp_path / "minatar", {**finals, ("Rainbow", "Asterix"): [9.0], ("DQN", "SpaceInvaders"): [1.0]})
    section = minatar_report(tmp_path / "minatar")
    assert "no results yet for Rainbow on SpaceInvaders;" in section and "| SpaceInvaders | - | - | - |" in section
    assert "| suite so far: Breakout, Asterix | - | 0.50 [" in section
    assert "**Goal: not yet measured** (no results yet for Rainbow on SpaceInvaders)." in section
    minatar_results(tmp_path / "minatar", {("Rainbow", "SpaceInvaders"): [2.0]})
    section = minatar_report(tmp_path / "minatar")
    assert "| Breakout | no | 0.00 [0.00, 0.00] | 1 vs 1 |" in section
    assert "**Goal: not met** (Rainbow not ahead of DQN on Breakout; P(Rainbow > DQN) over the suite 0.67 < 0.75)." in section


def test_the_reports_comparisons_and_goals_name_algorithms_of_the_grid():
    from benchmarks.report import COMPARISONS, GOALS, RAINBOW_ABLATIONS

    assert all(name in VARIANTS for pair in COMPARISONS for name in pair)
    assert all(name in VARIANTS for name in GOALS) and len(RAINBOW_ABLATIONS) == 6
