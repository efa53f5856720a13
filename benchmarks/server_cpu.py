"""The servers' CPU time during a benchmark, sampled, so that a window known only afterwards can be read off.

Requests per second on a shared 2-core machine move with whatever else runs (the same build measured
20-30% apart from one run to the next); the CPU the server's processes spend per request moves far less,
and says where the time goes: gunicorn's processes (the Python) and PostgreSQL's (the statements).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """The process's user + system CPU seconds, with its exited children's; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    # After the command's closing parenthesis: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    return sum(int(value) for value in fields[11:15]) / TICKS


def _tree(root: int) -> list[int]:
    """The process and all its descendants."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        try:
            # A process may exit while it is read (a database connection closing): it then has no children.
            # Which error says so depends on the moment: FileNotFoundError, or ProcessLookupError (ESRCH) from
            # the stat of a /proc folder whose process is going.
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                queue += [int(child) for child in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


def roots_with(text: str) -> list[int]:
    """Processes whose command line has this text (a gunicorn's --bind address) and whose parent's does not:
    gunicorn's master, not its workers, which are in its tree."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.add(int(cmdline.parent.name))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return [pid for pid in found if _parent(pid) not in found]


class ServerCpu:
    """Samples, every `every_s`, the CPU seconds of each named group of process trees. Each group's roots are
    found by its callable, asked again only once one of them is gone (a restarted PostgreSQL): finding
    gunicorn's master reads every process's command line, too much to do on the benchmark's machine 20 times
    a second. Workers and backends are found at each sample, as the roots' descendants."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], every_s: float = 0.05) -> None:
        self.groups, self.every_s = groups, every_s
        self.times: list[float] = []  # perf_counter
        self.samples: list[dict[str, float]] = []
        self._roots: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _roots_of(self, name: str) -> list[int]:
        roots = self._roots.get(name)
        if not roots or not all(Path(f"/proc/{pid}").exists() for pid in roots):
            roots = self._roots[name] = self.groups[name]()
        return roots

    def _sample(self) -> dict[str, float]:
        return {name: sum(_cpu_s(pid) for root in self._roots_of(name) for pid in _tree(root)) for name in self.groups}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sample = self._sample()
            except OSError:
                # /proc changing under the reading in a way not foreseen: this sample is lost, not the rest of
                # the run's (a sampler that stopped would give 0 ms per request for every later span).
                pass
            else:
                self.times.append(time.perf_counter())
                self.samples.append(sample)
            self._stop.wait(self.every_s)

    def __enter__(self) -> ServerCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _at(self, when: float) -> dict[str, float]:
        index = min(bisect.bisect_left(self.times, when), len(self.times) - 1)
        return self.samples[index]

    def ms_per_request(self, since: float, until: float, requests: int) -> dict[str, float]:
        """Each group's CPU milliseconds per request served in that span (perf_counter times)."""
        start, end = self._at(since), self._at(until)
        return {name: round(1000 * (end[name] - start[name]) / max(requests, 1), 2) for name in self.groups}
