"""Dagster as it runs in production, for tests: `dagster-webserver` and `dagster-daemon` as real processes.

In-process helpers (`materialize`, `instance_for_test`) never load `dagster_home/dagster.yaml`, start a
code server or let the daemon submit runs; these servers do. Each process gets its own session, so
stopping signals its whole process group: Dagster's code servers and run workers are children that
can outlive their parent. Every process started here carries a marker variable, so whatever escaped
the group is found and killed by id. Output goes to log files whose tails explain a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = ROOT / "dagster_home" / "dagster.yaml"
MODULE = "ticklake.pipelines.definitions"
MARKER = "TICKLAKE_TEST_SERVICE_ID"

# Loopback only: a proxy from the environment must never see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class GraphQLError(RuntimeError):
    """The webserver answered a GraphQL request with errors (or not at all)."""


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None, *, timeout: float = 30) -> dict[str, Any]:
    """POST a query or mutation to a Dagster webserver at `url`; return its `data`."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as e:  # invalid queries (400) and server errors (500) carry the reason in the body
        text = e.read().decode(errors="replace")
        try:
            reason = _messages(json.loads(text))
        except (ValueError, AttributeError):
            reason = text[:2000]
        raise GraphQLError(f"{url}/graphql: HTTP {e.code}: {reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise GraphQLError(f"{url}/graphql: {e}") from None
    if payload.get("errors"):
        raise GraphQLError(f"{url}/graphql: {_messages(payload)}")
    return dict(payload["data"])


def _messages(payload: dict[str, Any]) -> str:
    return "; ".join(str(err.get("message", err)) for err in payload.get("errors") or [payload])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _script(name: str) -> str:
    """A console script of this interpreter's environment (the venv's), else one on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found next to {sys.executable} or on PATH; install the project: pip install -e .")
    return found


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Call `check` until it returns something truthy; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f}s")
        time.sleep(interval)


class DagsterService:
    """A webserver and, on demand, a daemon over one code location, a temporary DAGSTER_HOME and a lake.

    DAGSTER_HOME holds a copy of the project's `dagster_home/dagster.yaml`, so the instance
    configuration under test is the one that ships.
    """

    def __init__(
        self, workdir: Path, lake_root: Path, *, module: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.home = workdir / "dagster_home"
        self.lake_root = lake_root
        self.module = module or MODULE
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.marker = uuid.uuid4().hex
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.startup_error: str | None = None
        self._logs: dict[str, IO[bytes]] = {}
        self.home.mkdir(parents=True, exist_ok=True)
        lake_root.mkdir(parents=True, exist_ok=True)
        if INSTANCE_YAML.exists():
            shutil.copy(INSTANCE_YAML, self.home / "dagster.yaml")
        # The user's Dagster and lake settings must not leak into the servers.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKLAKE_", "DAGSTER_"))}
        self.env.update(DAGSTER_HOME=str(self.home), TICKLAKE_ROOT=str(lake_root), PYTHONUNBUFFERED="1")
        self.env.update(env or {})
        self.env[MARKER] = self.marker

    # -- processes --------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = self._logs[name] = open(self.workdir / f"{name}.log", "ab")
        process = subprocess.Popen(
            args,
            cwd=self.workdir,  # nothing Dagster writes may land in the repository
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, signalled as a whole on stop
        )
        self.processes[name] = process
        return process

    def start_webserver(self, timeout: float = 120) -> None:
        """Start `dagster-webserver` and wait until it answers and its code location has loaded."""
        args = ["-h", "127.0.0.1", "-p", str(self.port), "-m", self.module, "-d", str(ROOT)]
        self._spawn("webserver", [_script("dagster-webserver"), *args])

        def answers() -> bool:
            self.check_alive()
            try:
                with _OPENER.open(f"{self.url}/server_info", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        self._wait("webserver /server_info", answers, timeout)
        self._wait("code location loaded", self._location_loaded, timeout)
        # The webserver builds the parts dagster.yaml configures on first use: ask for the run
        # launcher and queue now, so a bad configuration fails here with Dagster's reason.
        query = "{ instance { runLauncher { name } runQueuingSupported runQueueConfig { maxConcurrentRuns } } }"
        self._wait("instance configuration loaded", lambda: graphql(self.url, query)["instance"], timeout)

    def _location_loaded(self) -> bool:
        self.check_alive()
        query = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
            locationOrLoadError { __typename ... on PythonError { message stack } } } } } }"""
        entries = graphql(self.url, query)["workspaceOrError"]["locationEntries"]
        for entry in entries:
            loaded = entry["locationOrLoadError"]
            if loaded and loaded["__typename"] == "PythonError":
                raise RuntimeError(f"code location {entry['name']} failed to load: {loaded['message']}{''.join(loaded['stack'])}")
        return bool(entries) and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries)

    def start_daemon(self, timeout: float = 120) -> None:
        """Start `dagster-daemon run` (once) and wait until every daemon the instance requires is healthy."""
        if "daemon" not in self.processes:
            self._spawn("daemon", [_script("dagster-daemon"), "run", "-m", self.module, "-d", str(ROOT)])
        self._wait("daemons healthy", self._daemons_healthy, timeout, interval=1)

    def _daemons_healthy(self) -> bool:
        self.check_alive()
        query = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"
        statuses = graphql(self.url, query)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return all(s["healthy"] for s in statuses if s["required"])

    def _wait(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
        try:
            return wait_for(what, check, timeout, interval)
        except (TimeoutError, RuntimeError) as e:
            raise RuntimeError(f"{e}\n{self.logs()}") from None

    def check_alive(self) -> None:
        """RuntimeError with the log tails if a server process has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"dagster {name} exited with code {process.returncode}\n{self.logs()}")

    def logs(self, lines: int = 40) -> str:
        """The last `lines` of each server's log, for failure messages."""
        for log in self._logs.values():
            log.flush()
        return "\n".join(
            f"--- {name}.log (last {lines} lines) ---\n{_tail(self.workdir / f'{name}.log', lines)}" for name in self._logs
        )

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A GraphQL request to this webserver."""
        return graphql(self.url, query, variables)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM each process group (the daemon first), SIGKILL what remains after `timeout`, then any stray child."""
        for name in sorted(self.processes, key=lambda n: n != "daemon"):
            _stop_group(self.processes[name], timeout)
        for pid in _marked_pids(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.processes.clear()
        for log in self._logs.values():
            log.close()

    def __enter__(self) -> DagsterService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)  # the session leader's pid is its group id
        except ProcessLookupError:
            pass
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _marked_pids(marker: str) -> list[int]:
    """Processes still carrying `marker` in their environment (Linux /proc; none found elsewhere)."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone already, or not ours to read
            continue
    return found


_SHARED = pytest.StashKey[DagsterService]()


def shared_service(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> DagsterService:
    """The session's one webserver over an empty lake, started on first use and stopped when pytest exits.

    Starting Dagster and loading the code location takes seconds, so the end-to-end and UI tests
    share it; the daemon is started by the tests that need it (`start_daemon`).
    """
    service = config.stash.get(_SHARED, None)
    if service is None:
        workdir = tmp_path_factory.mktemp("dagster")
        # The lake is empty when the code location loads, so its partitions would start today; the
        # tests' hours are of 2022-01-07.
        service = DagsterService(workdir, workdir / "lake", env={"TICKLAKE_PARTITIONS_START": "2022-01-07-00:00"})
        config.stash[_SHARED] = service
        config.add_cleanup(service.stop)
        try:
            service.start_webserver()
        except Exception as e:
            service.startup_error = str(e)
            raise
    elif service.startup_error is not None:  # fail fast: do not wait for a second timeout
        raise RuntimeError(f"the Dagster webserver failed to start earlier in this session:\n{service.startup_error}")
    else:
        service.check_alive()
    return service
