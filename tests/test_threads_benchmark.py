"""benchmarks/threads.py runs and prints its table (a few steps, one spinning process)."""

import re
import subprocess
import sys


def test_threads_benchmark_prints_both_machines():
    command = [sys.executable, "-m", "benchmarks.threads", "--steps", "300", "--repeats", "1", "--busy", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    rows = re.findall(r"^(as is|busy) +([\d.]+) +([\d.]+) +([\d.]+)x$", result.stdout, re.MULTILINE)
    assert [row[0] for row in rows] == ["as is", "busy"]
    for _, one, two, ratio in rows:  # one repeat: the ratio is that of the two runs
        assert abs(float(ratio) - float(one) / float(two)) < 0.01
    assert "loadavg" in result.stdout
