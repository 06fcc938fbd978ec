"""``make run``'s guard: a second copy on the same data gets a clear message."""

import fcntl
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_a_second_run_on_the_same_data_is_refused_with_a_message(tmp_path):
    lock_path = tmp_path / "run.lock"
    with open(lock_path, "w") as lock:
        lock.write("4242")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = subprocess.run([sys.executable, "-m", "tools.devstack", "run"], capture_output=True, text=True,
                                env={"SFERA_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 1
    assert "already running" in result.stderr and "4242" in result.stderr
    assert "Traceback" not in result.stderr
