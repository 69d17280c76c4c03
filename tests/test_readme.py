"""Every Python snippet of the README runs, in order in one session as a reader would run them, with short budgets."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"
SNIPPET = re.compile(r"```python\n(.*?)```", re.DOTALL)
STEP_COUNT = re.compile(r"\b\d{1,3}(?:_\d{3})+\b")  # 50_000, 1_000_000: the snippets' budgets and sizes
#: Each budget in the snippets and the one it runs with here (a run, a checkpoint interval, a buffer size)
SHORTER = {"50_000": "1_500", "100_000": "600", "1_000_000": "600", "10_000": "200"}


def shortened(snippet: str) -> str:
    counts = set(STEP_COUNT.findall(snippet))
    assert counts <= SHORTER.keys(), f"add a short budget for {counts - SHORTER.keys()} to SHORTER"
    return STEP_COUNT.sub(lambda match: SHORTER[match.group()], snippet)


def test_readme_snippets_run(tmp_path, monkeypatch):
    snippets = SNIPPET.findall(README.read_text())
    assert len(snippets) >= 5  # usage, drop-in, explain, prioritized replay, checkpoints
    monkeypatch.chdir(tmp_path)  # they save files in the working folder
    session: dict[str, object] = {}
    for number, snippet in enumerate(snippets):  # a traceback names the snippet that failed
        exec(compile(shortened(snippet), f"<README.md python snippet {number}>", "exec"), session)
    # what the snippets promise to leave behind
    left = {path.name for path in tmp_path.iterdir()}
    assert {"dueling_cartpole.zip", "buffer.pkl", "checkpoints", "rainbow_cartpole.zip"} <= left
    assert session["model"].num_timesteps == 600  # resumed from the last checkpoint, which ended the run


MAKES_A_MODEL = re.compile(r"\b(?:DuelingDQN|DuelingQRDQN|DQN|QRDQN|Rainbow)\(|\bresume_training\(")
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def test_what_a_reader_copies_runs_on_one_torch_thread():
    # On a busy machine torch's default threads make these small networks many times slower (docs/speed.md)
    text = README.read_text()
    for snippet in SNIPPET.findall(text):
        if MAKES_A_MODEL.search(snippet):
            assert "th.set_num_threads(1)" in snippet, snippet
    zoo_lines = [line for block in BASH_BLOCK.findall(text) for line in block.splitlines() if "-m rl_zoo3." in line]
    assert zoo_lines
    for line in zoo_lines:
        assert "--num-threads 1" in line, line
