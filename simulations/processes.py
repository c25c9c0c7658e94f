"""Processes a local deployment starts, each logging to its own file, all stopped by PID.

Kept apart from the deployment logic so that what is started and how it is
stopped (SIGTERM, grace period, SIGKILL, helpers found through /proc with their
start times so a reused PID is never signalled) can be read on its own.
"""

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from common.errors import HarmonizationError

logger = logging.getLogger(__name__)

STOP_GRACE_S = 10.0


@dataclass
class StartedProcess:
    name: str
    popen: subprocess.Popen
    log: Path
    daemon: bool  # must stay up until the run ends


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (None if gone or a zombie): guards against reuse."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        with suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(*roots: int) -> set[int]:
    """Every live process below ``roots`` right now, read from /proc."""
    children = _children_by_parent()
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found and start_time(child) is not None:
                found.add(child)
                stack.append(child)
    return found


class ProcessSet:
    """Every process one deployment started, each logging to its own file.

    Flower's servers start helpers in their own sessions (SuperExec, then a
    ServerApp or ClientApp process per run or message), so a process group does
    not reach them. Their PIDs are recorded while the run goes on, with their start
    times so that a reused PID is never signalled, and they are stopped with the rest.
    """

    def __init__(self, logs_dir: Path, cwd: Path):
        self.logs_dir, self.cwd = logs_dir, cwd
        self.processes: list[StartedProcess] = []
        self.helpers: dict[int, int] = {}  # pid -> start time

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str], *, daemon: bool = True
    ) -> StartedProcess:
        log = self.logs_dir / f"{name}.log"
        logger.debug("starting %s: %s (log %s)", name, " ".join(argv), log)
        with open(log, "wb") as handle:
            popen = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop them in order
            )
        process = StartedProcess(name, popen, log, daemon)
        self.processes.append(process)
        return process

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(sorted({p.popen.pid for p in self.processes} | set(self.helpers)))

    def check(self) -> None:
        """Raise, naming the process and its log, if a server process has exited."""
        for process in self.processes:
            code = process.popen.poll()
            if process.daemon and code is not None:
                raise HarmonizationError(
                    f"{process.name} exited with code {code} before the run finished; "
                    f"see {process.log}"
                )

    def record_helpers(self) -> None:
        roots = [p.popen.pid for p in self.processes if p.popen.poll() is None]
        for child in descendants(*roots):
            started = start_time(child)
            if started is not None:
                self.helpers.setdefault(child, started)

    def stop(self) -> None:
        """SIGTERM everything (newest first), wait, SIGKILL what is left; helpers last."""
        self.record_helpers()
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in reversed(self.processes):
            try:
                process.popen.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM; killing it", process.name)
                process.popen.kill()
                process.popen.wait()
        # Helpers notice that their parent is gone and exit; signal those that do not.
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            deadline = time.monotonic() + (STOP_GRACE_S if sig else 2.0)
            for pid in self._alive_helpers() if sig else ():
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            while self._alive_helpers() and time.monotonic() < deadline:
                time.sleep(0.2)
        if self._alive_helpers():
            logger.warning("processes %s did not stop", self._alive_helpers())

    def _alive_helpers(self) -> list[int]:
        return [pid for pid, started in self.helpers.items() if start_time(pid) == started]
