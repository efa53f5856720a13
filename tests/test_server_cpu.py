"""The benchmark's CPU sampler counts a process tree's CPU time, children included."""

import subprocess
import sys
import time

from benchmarks.server_cpu import ServerCpu, roots_with

# A parent that runs a child busy for 0.6 s of CPU, says so in a file, then idles until it is killed.
PARENT = """
import pathlib, subprocess, sys, time
subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.6\\nwhile time.process_time() < end: pass"])
pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(60)
"""


def test_a_busy_child_of_the_tree_is_counted_and_an_idle_span_is_not(tmp_path):
    done = tmp_path / "done"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(done), "server-cpu-test-marker"])
    try:
        with ServerCpu({"tree": lambda: roots_with("server-cpu-test-marker")}, every_s=0.02) as cpu:
            started = time.perf_counter()
            while not done.exists():
                time.sleep(0.02)
            time.sleep(0.1)
            busy_until = time.perf_counter()
            time.sleep(0.2)
            idle_until = time.perf_counter()
    finally:
        parent.kill()
        parent.wait()
    assert cpu.ms_per_request(started, busy_until, 1)["tree"] >= 500
    assert cpu.ms_per_request(busy_until, idle_until, 1)["tree"] < 50


def test_a_sample_that_fails_to_read_proc_is_skipped_and_sampling_goes_on():
    failures = iter([ProcessLookupError(3, "No such process")])

    def roots() -> list[int]:
        failure = next(failures, None)
        if failure is not None:
            raise failure  # as a /proc folder of a process that is going may answer
        return [0]  # no such process: 0 CPU seconds, read without error

    with ServerCpu({"tree": roots}, every_s=0.01) as cpu:
        time.sleep(0.2)
    assert len(cpu.samples) >= 5
