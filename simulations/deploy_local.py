"""The federation as a hospital network runs it, on one machine: Flower's Deployment Engine.

Unlike :mod:`simulations.simulate`, nothing runs in-process. A real
``flower-superlink`` and one ``flower-supernode`` per site folder are started on
127.0.0.1, the app is submitted with ``flwr run``, and every process this module
started is stopped by PID at the end, also after an error, a timeout or Ctrl-C.

The SuperLink and SuperNodes run without TLS (``--insecure``). That is acceptable
only because every socket is bound to the loopback interface; a consortium uses TLS
and SuperNode authentication (see docs/deployment.md).

Three Flower 1.41 behaviours shape this module:

- ``flwr`` reads SuperLink connections from ``$FLWR_HOME/config.toml``, so each run
  gets a private FLWR_HOME naming the local SuperLink.
- ``flwr run`` accepts only run-config keys the app declares, and rewrites an app's
  ``pyproject.toml`` that still holds ``[tool.flwr.federations]``. The app is
  therefore submitted from a generated folder ``RUN/app`` whose ``pyproject.toml``
  declares every :class:`FederationConfig` key. It carries no code: every process
  runs the fedharmonize installed next to it, as a hospital's audited image would.
- Runtime dependency installation is on by default; it is switched off, since
  nothing may be downloaded while a run is in progress.
"""

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from common.artifact import METADATA_FILE
from common.configs.federation import FederationConfig
from common.configs.validation import parse_config
from common.errors import HarmonizationError
from common.sites import SiteFolder, discover_sites
from server.publishing import MODEL_DIR
from server.round_log import METRICS_FILE, losses_of
from simulations.processes import ProcessSet, StartedProcess

logger = logging.getLogger(__name__)

RunConfig = Mapping[str, bool | int | float | str]

LOOPBACK = "127.0.0.1"
CONNECTION = "fedharmonize-local"
APP_DIR, FLWR_HOME_DIR, LOGS_DIR = "app", "flwr-home", "logs"
RUN_CONFIG_FILE = "run-config.toml"
QUIET_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
READY_TIMEOUT_S = 60.0
SUBMIT_TIMEOUT_S = 120.0
STATUS_EVERY_S = 60.0  # each 'flwr ls' costs a second of CPU
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class DeployResult:
    """Where a finished deployment left its outputs, and every PID it started."""

    run_dir: Path
    model_dir: Path
    logs_dir: Path
    run_id: int
    pids: tuple[int, ...]


def choose_ports(count: int, port_base: int | None) -> list[int]:
    """``count`` loopback ports: ``port_base`` onwards (checked free), or any free ones."""
    if port_base is None:
        sockets = [socket.socket() for _ in range(count)]
        try:
            for sock in sockets:
                sock.bind((LOOPBACK, 0))
            return [sock.getsockname()[1] for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
    if not 1024 <= port_base <= 65535 - count:
        raise HarmonizationError(f"--port-base {port_base}: must be in 1024..{65535 - count}")
    ports = list(range(port_base, port_base + count))
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                raise HarmonizationError(
                    f"port {port} on {LOOPBACK} is in use; choose another --port-base "
                    f"(this deployment needs {count} ports from the base)"
                ) from None
    return ports


def _wait_for_port(process: StartedProcess, port: int, processes: ProcessSet) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        processes.check()
        with suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise HarmonizationError(
                f"{process.name} did not listen on {LOOPBACK}:{port} within "
                f"{READY_TIMEOUT_S:.0f} s; see {process.log}"
            )
        time.sleep(0.2)


def _toml_value(value: bool | int | float | str) -> str:
    return json.dumps(value)  # JSON scalars are valid TOML scalars


def _quoted(value: str, what: str) -> str:
    if '"' in value:
        raise HarmonizationError(f"{what} '{value}': a double quote cannot pass --node-config")
    return '"' + value.replace("\\", "\\\\") + '"'


def write_app(app_dir: Path) -> Path:
    """A code-free Flower app: components by import path, every run-config key declared."""
    keys = "\n".join(
        f"{name.replace('_', '-')} = {_toml_value(field.default)}"
        for name, field in FederationConfig.model_fields.items()
    )
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "pyproject.toml").write_text(
        "# Written by fedharmonize deploy: the app is the installed fedharmonize package.\n"
        '[project]\nname = "fedharmonize"\n'
        f'version = "{version("fedharmonize")}"\n'
        "dependencies = []  # nothing is installed at run time\n\n"
        '[tool.flwr.app]\npublisher = "fedharmonize"\n\n'
        '[tool.flwr.app.components]\nserverapp = "server.app:app"\n'
        'clientapp = "client.app:app"\n\n'
        f"[tool.flwr.app.config]\n{keys}\n",
        encoding="utf-8",
    )
    return app_dir


def write_flwr_home(home: Path, superlink_port: int) -> Path:
    """A private ``$FLWR_HOME/config.toml`` whose default connection is the local SuperLink."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n'
        f'[superlink.{CONNECTION}]\naddress = "{LOOPBACK}:{superlink_port}"\n'
        "insecure = true  # loopback only\n",
        encoding="utf-8",
    )
    return home


def flower_command(name: str) -> str:
    """A Flower executable from this interpreter's environment, else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise HarmonizationError(f"'{name}' not found; install the project with pip install -e .")
    return found


def node_config(site: SiteFolder, run_dir: Path) -> str:
    """The ``--node-config`` that tells a SuperNode which hospital it is."""
    values = {
        "site-name": site.name,
        "data-path": str(site.root.resolve()),
        "model-dir": str(run_dir / "received" / site.name),
        "ledger-dir": str(run_dir / "ledger"),
        "cache-dir": str(run_dir / "cache"),
    }
    return " ".join(f"{key}={_quoted(value, key)}" for key, value in values.items())


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM take the same cleanup path as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _last_error(log: Path) -> str:
    """The last line of a log that names an error, for a one-line message."""
    lines = ANSI.sub("", log.read_text(errors="replace")).splitlines() if log.exists() else []
    errors = [line.strip() for line in lines if "Error" in line or "Exception" in line]
    return errors[-1][:300] if errors else "no error line in the log"


def _environment(flwr_home: Path) -> dict[str, str]:
    """Every launched process: telemetry and update checks off, no runtime installs."""
    env = {**QUIET_ENV, **os.environ, "FLWR_HOME": str(flwr_home), "PYTHONUNBUFFERED": "1"}
    env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] = "1"
    # The servers start 'flower-superexec', 'flwr-serverapp' and 'flwr-clientapp' by name.
    env["PATH"] = str(Path(flower_command("flwr")).parent) + os.pathsep + env.get("PATH", "")
    return env


def _deployment_config(run_config: RunConfig, run_dir: Path, n_sites: int, timeout_s: float):
    """The run config ``flwr run`` sends, validated here so a typo starts no process."""
    config = {"reply-timeout-s": float(timeout_s), **run_config, "run-dir": str(run_dir)}
    config["min-sites"] = n_sites
    return config, parse_config(FederationConfig, config, "deployment settings")


def _json_in(output: str) -> dict:
    """The JSON object ``flwr ... --format json`` printed, or {} if there is none."""
    try:
        return json.loads(output[output.index("{") : output.rindex("}") + 1])
    except ValueError:
        return {}


def _flwr(env: Mapping[str, str], command: str, *args: str, timeout: float = 60.0) -> str:
    """Output of a short ``flwr`` command against the local SuperLink."""
    argv = [flower_command("flwr"), *command.split(), *args, "--format", "json"]
    try:  # subprocess.run kills the child if we are interrupted
        done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HarmonizationError(f"'flwr {command}' did not answer in {timeout:.0f} s") from None
    return done.stdout + done.stderr


class LocalFederation:
    """One SuperLink and its SuperNodes on loopback, and the run submitted to them."""

    def __init__(self, run_dir: Path, ports: list[int], processes: ProcessSet, timeout_s: float):
        self.run_dir, self.processes = run_dir, processes
        self.timeout_s, self.deadline = timeout_s, time.monotonic() + timeout_s
        self.link_port, self.node_ports = ports[0], ports[1:]
        self.env = _environment(write_flwr_home(run_dir / FLWR_HOME_DIR, self.link_port))

    def start_superlink(self) -> None:
        flags = f"--insecure --host {LOOPBACK} --port {self.link_port}"
        argv = [flower_command("flower-superlink"), *flags.split()]
        argv.append("--disable-runtime-dependency-installation")
        process = self.processes.start("superlink", argv, self.env)
        _wait_for_port(process, self.link_port, self.processes)
        logger.info("SuperLink on %s:%d (no TLS: loopback only)", LOOPBACK, self.link_port)

    def start_supernodes(self, sites: list[SiteFolder]) -> None:
        threads = max(1, (os.cpu_count() or 1) // len(sites))
        env = {"OMP_NUM_THREADS": str(threads), **self.env}  # sites share this machine's cores
        started = []
        for site, port in zip(sites, self.node_ports, strict=True):
            flags = f"--insecure --superlink {LOOPBACK}:{self.link_port} --host {LOOPBACK}"
            argv = [flower_command("flower-supernode"), *flags.split(), "--port", str(port)]
            argv += ["--node-config", node_config(site, self.run_dir)]
            started.append(self.processes.start(f"supernode-{site.name}", argv, env))
        for process, port in zip(started, self.node_ports, strict=True):
            _wait_for_port(process, port, self.processes)
        named = zip((s.name for s in sites), self.node_ports, strict=True)
        logger.info("SuperNodes up: %s", ", ".join(f"{name} (:{port})" for name, port in named))

    def submit(self, config: RunConfig) -> int:
        """``flwr run`` the app with ``config`` as run-config overrides; the run's ID."""
        app_dir = write_app(self.run_dir / APP_DIR)
        config_file = self.run_dir / RUN_CONFIG_FILE
        config_file.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in config.items()))
        log = self.processes.logs_dir / "flwr-run.log"
        args = [str(app_dir), CONNECTION, "--run-config", str(config_file)]
        output = _flwr(self.env, "run", *args, timeout=SUBMIT_TIMEOUT_S)
        log.write_text(output, encoding="utf-8")
        reply = _json_in(output)
        if not reply.get("success") or not reply.get("run-id"):
            reason = ANSI.sub("", str(reply.get("error-message", ""))).strip() or _last_error(log)
            raise HarmonizationError(f"flwr run was refused: {reason}; see {log}")
        logger.info("run %s submitted with flwr run", reply["run-id"])
        return int(reply["run-id"])

    def status(self, run_id: int) -> str:
        runs = _json_in(_flwr(self.env, "ls", CONNECTION, "--run-id", str(run_id))).get("runs")
        return str(runs[0].get("status", "unknown")) if runs else "unknown"

    def wait(self, run_id: int, rounds: int) -> None:
        """Until the run is finished; raises if it failed, a server died or time ran out."""
        argv = [flower_command("flwr"), "log", str(run_id), CONNECTION, "--stream"]
        stream = self.processes.start("serverapp", argv, self.env, daemon=False)
        seen, asked_at, status = 0, time.monotonic(), "unknown"
        while not status.startswith("finished"):
            self.processes.check()
            self.processes.record_helpers()
            seen = _report_rounds(self.run_dir, seen, rounds)
            if time.monotonic() > self.deadline:
                raise HarmonizationError(
                    f"run {run_id} did not finish within {self.timeout_s:.0f} s; "
                    f"logs in {stream.log.parent}"
                )
            # The log stream ends with the run: ask the SuperLink often only after that.
            every = STATUS_EVERY_S if stream.popen.poll() is None else 3.0
            if time.monotonic() - asked_at > every:
                status, asked_at = self.status(run_id), time.monotonic()
            time.sleep(1.0)
        with suppress(subprocess.TimeoutExpired):
            stream.popen.wait(timeout=10)  # the ServerApp's last lines
        _report_rounds(self.run_dir, seen, rounds)
        if status != "finished:completed":
            raise HarmonizationError(
                f"run {run_id} ended as '{status}': {_last_error(stream.log)}; see {stream.log} "
                "(a site's own error is in its supernode-<site>.log)"
            )
        if not (self.run_dir / MODEL_DIR / METADATA_FILE).exists():
            raise HarmonizationError(f"run {run_id} finished without a model; see {stream.log}")


def _report_rounds(run_dir: Path, seen: int, rounds: int) -> int:
    """Log the rounds the ServerApp has finished since the last look; the new count."""
    path = run_dir / METRICS_FILE
    lines = path.read_text(encoding="utf-8").split("\n")[:-1] if path.exists() else []
    for line in lines[seen:]:
        entry = json.loads(line)
        sites = ", ".join(sorted(entry["sites"]))
        shown = losses_of(entry)
        logger.info("round %d/%d %s: %s (%s)", entry["round"], rounds, entry["phase"], shown, sites)
    return len(lines)


def deploy_local(
    sites_root: Path,
    run_dir: Path,
    run_config: RunConfig,
    *,
    port_base: int | None = None,
    timeout_s: float = 3600.0,
) -> DeployResult:
    """Run the federation over the sites under ``sites_root`` with real Flower processes.

    ``run_config`` holds FederationConfig keys (kebab-case); ``run-dir`` and
    ``min-sites`` are set here. The SuperLink takes port ``port_base`` (all its APIs
    share it) and the SuperNodes the next ones; without a base, free ports are used.
    Every process is stopped before this returns or raises.
    """
    sites = discover_sites(sites_root)
    if len(sites) < 2:
        raise HarmonizationError(f"{sites_root}: a federation needs at least 2 sites")
    run_dir = Path(run_dir).resolve()
    config, parsed = _deployment_config(run_config, run_dir, len(sites), timeout_s)
    ports = choose_ports(len(sites) + 1, port_base)
    (run_dir / LOGS_DIR).mkdir(parents=True, exist_ok=True)
    processes = ProcessSet(run_dir / LOGS_DIR, run_dir)
    with _sigterm_as_interrupt():
        try:
            federation = LocalFederation(run_dir, ports, processes, timeout_s)
            federation.start_superlink()
            federation.start_supernodes(sites)
            run_id = federation.submit(config)
            federation.wait(run_id, parsed.num_server_rounds)
        finally:
            processes.stop()
    return DeployResult(run_dir, run_dir / MODEL_DIR, run_dir / LOGS_DIR, run_id, processes.pids)
