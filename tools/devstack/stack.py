"""The platform as child processes: infrastructure, migration, topology, then
services, relays and the gateway, each with /healthz and /metrics; stopped in
reverse order. ``make run`` and the end-to-end tests both use it.

``Stack.supervise()`` is the supervisor's poll: a process that exited on its own
is started again after a back-off that doubles with each crash in a row
(``restart_backoff`` .. ``restart_backoff_max``) and is forgotten once it has run
``stable_after`` seconds. Children die with the process that started them
(``die_with_parent``), even when it is killed with SIGKILL."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import REPO_ROOT, Settings, env_float, env_int, env_str, settings
from shared.platform import SERVICES
from tools.devstack.infra import InfraError, Postgres, RabbitMQ, die_with_parent, free_port, wait_for

PYTHON = sys.executable
log = logging.getLogger("tools.devstack")


@dataclass
class Managed:
    name: str
    argv: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    started_at: float = 0.0  # time.monotonic() of the last start
    crashes: int = 0  # exits in a row without a stable run between them
    restarts: int = 0  # restarts by the supervisor since the stack started
    restart_at: float | None = None  # when the supervisor starts it again (it is down until then)


def replica_name(name: str, replica: int) -> str:
    """The process name of a replica: the first keeps the name (``identity``), the others are ``identity-2``, ..."""
    if replica < 1:
        raise ValueError(f"replica {replica}: replicas count from 1")
    return name if replica == 1 else f"{name}-{replica}"


@dataclass
class StackConfig:
    var_dir: Path
    persistence: str = "sqlite"
    amqp_port: int = 5682
    pg_port: int = 5442
    gateway_port: int = 8080
    metrics_base_port: int = 9100
    sfu_port: int = 8300
    # SFU processes start_all starts (one per core, issue #17): "sfu" on sfu_port, "sfu-2", ... on ports of their own
    sfu_nodes: int = 1
    durable_pg: bool = True
    # gunicorn's gthread worker gives every open WebSocket a thread of its own:
    # this is also the most clients one gateway process can keep connected.
    gateway_threads: int = 128
    # who serves /api/v1/realtime: "asyncio" (gateway.realtime_server on the gateway's port, passing every other
    # path to gunicorn behind it; issue #17) or "gthread" (the gunicorn gateway alone, a thread per socket)
    realtime_server: str = field(default_factory=lambda: env_str("SFERA_REALTIME_SERVER", "asyncio"))
    vhost: str = "/"
    pg_database: str = "sfera"
    extra_env: dict[str, str] = field(default_factory=dict)
    # the supervisor: first restart delay, doubled per crash in a row up to the max; a process
    # up for stable_after seconds starts again from the first delay
    restart_backoff: float = 0.5
    restart_backoff_max: float = 30.0
    stable_after: float = 30.0
    # processes of each service, relay and gateway that start_all starts (> 1: the gateways on ports of their own
    # behind a round-robin balancer on gateway_port, as an ingress in production)
    replicas: int = 1

    @classmethod
    def from_env(cls, var_dir: Path) -> StackConfig:
        """The platform on this machine as the environment configures it (README's configuration
        table): what `make run` starts and what `make observe` scrapes."""
        return cls(
            var_dir=var_dir,
            persistence=env_str("PERSISTENCE", cls.persistence),
            amqp_port=env_int("SFERA_AMQP_PORT", cls.amqp_port),
            pg_port=env_int("SFERA_PG_PORT", cls.pg_port),
            gateway_port=env_int("SFERA_GATEWAY_PORT", cls.gateway_port),
            metrics_base_port=env_int("SFERA_METRICS_BASE_PORT", cls.metrics_base_port),
            sfu_port=env_int("SFERA_SFU_PORT", cls.sfu_port),
            sfu_nodes=env_int("SFERA_SFU_NODES", cls.sfu_nodes),
            gateway_threads=env_int("SFERA_GATEWAY_THREADS", cls.gateway_threads),
            restart_backoff=env_float("SFERA_RESTART_BACKOFF", cls.restart_backoff),
            restart_backoff_max=env_float("SFERA_RESTART_BACKOFF_MAX", cls.restart_backoff_max),
            replicas=env_int("SFERA_REPLICAS", cls.replicas),
        )


class Stack:
    """Owns its RabbitMQ and its PostgreSQL unless given running ones (tests share one
    broker and one server; each stack then gets its own vhost and database). A stack
    given a broker that is not running (``owns_broker=True``) starts and stops it."""

    def __init__(self, config: StackConfig, rabbitmq: RabbitMQ | None = None, postgres: Postgres | None = None,
                 owns_broker: bool | None = None):
        self.config = config
        self.var_dir = Path(config.var_dir)
        self.log_dir = self.var_dir / "log"
        self.owns_broker = rabbitmq is None if owns_broker is None else owns_broker
        self.owns_postgres = postgres is None
        self.rabbitmq = rabbitmq or RabbitMQ(self.var_dir / "rabbitmq", config.amqp_port)
        if config.persistence == "postgres":
            self.postgres = postgres or Postgres(self.var_dir / "postgres", config.pg_port, durable=config.durable_pg)
        else:
            self.postgres = None
        self.processes: dict[str, Managed] = {}
        self.ports: dict[str, int] = {}  # processes beyond the fixed scheme of metrics_port: replicas > 1, gateways

    # -- environment ---------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "SFERA_VAR_DIR": str(self.var_dir),
            "SFERA_AMQP_URI": self.amqp_uri,
            "PERSISTENCE": self.config.persistence,
            "SFERA_PG_HOST": "127.0.0.1",
            "SFERA_PG_PORT": str(self.postgres.port if self.postgres else self.config.pg_port),
            "SFERA_PG_DB": self.config.pg_database,
            "PYTHONUNBUFFERED": "1",
            # Links, QR codes and OAuth returns point at this stack's gateway unless told otherwise.
            "SFERA_PUBLIC_URL": os.environ.get("SFERA_PUBLIC_URL", self.gateway_url),
            # Join tokens send clients to this stack's SFU (one node).
            "SFERA_SFU_URL": f"ws://127.0.0.1:{self.config.sfu_port}/ws",
            "SFERA_SFU_PORT": str(self.config.sfu_port),
            **self.config.extra_env,
            **extra,
        }
        return env

    def settings(self) -> Settings:
        return settings(self.env())

    @property
    def amqp_uri(self) -> str:
        vhost = "" if self.config.vhost == "/" else urllib.parse.quote(self.config.vhost, safe="")
        return f"{self.rabbitmq.amqp_uri.rstrip('/')}/{vhost}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.gateway_port}"

    def metrics_port(self, name: str) -> int:
        if name in self.ports:
            return self.ports[name]
        names = list(SERVICES)
        if name == "gateway":
            return self.config.gateway_port
        if name.endswith("-relay"):
            return self.config.metrics_base_port + 10 + names.index(name.removesuffix("-relay"))
        return self.config.metrics_base_port + names.index(name)

    # -- infrastructure ------------------------------------------------------
    def start_infra(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.owns_broker:
            self.rabbitmq.start()
        if self.owns_postgres and self.postgres is not None:
            self.postgres.start()
        if self.config.vhost != "/":
            self.rabbitmq.add_vhost(self.config.vhost)
        if self.postgres is not None:
            self.postgres.ensure_database(self.config.pg_database)

    def prepare(self, migrate: list[str] | None = None, topology: list[str] | None = None) -> None:
        """Create store tables and broker topology before anything runs (by default
        for every service; else for the given ``service=module:App`` / ``module:Service``)."""
        # side by side: neither needs the other (tables in PostgreSQL, queues in RabbitMQ), and each is mostly
        # its imports of every service (seconds each on a loaded machine; every platform of the tests prepares)
        self.run_tools({"migrate": [PYTHON, "-m", "shared.store.migrate", *(migrate or [])],
                        "topology": [PYTHON, "-m", "shared.bus.topology", *(topology or [])]})

    def run_tool(self, name: str, argv: list[str]) -> str:
        return self.run_tools({name: argv})[name]

    def run_tools(self, tools: dict[str, list[str]], timeout: float = 120) -> dict[str, str]:
        """One-off programs run at once, each to its end; their output in ``<log>/<name>.log``; their stdout by
        name. InfraError names the first that failed (or ran over ``timeout`` seconds), after all have ended."""
        running = {}
        for name, argv in tools.items():
            output = open(self.log_dir / f"{name}.log", "wb")
            running[name] = (subprocess.Popen(argv, env=self.env(), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                              stderr=output, stdin=subprocess.DEVNULL), output)
        deadline = time.monotonic() + timeout
        out, failed = {}, []
        for name, (process, output) in running.items():
            try:
                stdout, _ = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, _ = process.communicate()
                failed.append(f"{name} ran over {timeout:.0f} s")
            output.write(stdout)
            output.close()
            out[name] = stdout.decode(errors="replace")
            if process.returncode and not failed:
                failed.append(f"{name} failed:\n{self.log_tail(name)}")
        if failed:
            raise InfraError(failed[0])
        return out

    # -- processes -------------------------------------------------------------
    def _spawn(self, managed: Managed) -> Managed:
        output = open(self.log_dir / f"{managed.name}.log", "ab")
        managed.process = subprocess.Popen(
            managed.argv, env=self.env(**managed.env), cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent(),
        )
        output.close()
        managed.started_at = time.monotonic()
        managed.restart_at = None
        self.processes[managed.name] = managed
        return managed

    def spawn(self, name: str, argv: list[str], health_url: str, **env: str) -> Managed:
        """Any process run, logged, supervised and stopped like the platform's own (a benchmark's experiment)."""
        return self._spawn(Managed(name, argv, health_url, env))

    def own_port(self, name: str) -> int:
        """The port of a process outside metrics_port's fixed scheme (a replica beyond the first), kept for
        its restarts."""
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]

    def start_service(self, name: str, path: str | None = None, port: int | None = None, replica: int = 1,
                      **env: str) -> Managed:
        """A nameko service of the platform by name, or any by ``module:Class`` path; ``replica`` 2, 3, ...
        is another process of it (``<name>-<replica>``, its own metrics port) consuming from the same queues."""
        process = replica_name(name, replica)
        port = port or (self.metrics_port(name) if replica == 1 else self.own_port(process))
        return self._spawn(Managed(process, [PYTHON, "-m", "shared.runner", path or name],
                                   f"http://127.0.0.1:{port}/healthz", {"SFERA_METRICS_PORT": str(port), **env}))

    def start_relay(self, service: str, replica: int = 1, **env: str) -> Managed:
        """A service's outbox relay; another ``replica`` stands by until the one holding the lease is gone."""
        name = replica_name(f"{service}-relay", replica)
        port = self.metrics_port(name) if replica == 1 else self.own_port(name)
        return self._spawn(Managed(name, [PYTHON, "-m", "shared.bus.relay", service],
                                   f"http://127.0.0.1:{port}/healthz", {"SFERA_METRICS_PORT": str(port), **env}))

    def start_gateway(self, name: str = "gateway", port: int | None = None, replica: int = 1,
                      realtime_server: str | None = None, **env: str) -> Managed:
        """The gateway; more than one may run (each on its own port, each with its own realtime queue). With
        ``realtime_server="asyncio"`` (the config's unless given) the process named ``name`` on ``port`` is
        gateway.realtime_server, serving the socket and passing every other request to the gunicorn gateway
        (``<name>-wsgi``) on a private port.
        Replicas (``<name>-<replica>``, and every one when the stack runs several) get ports of their own: the
        balancer (start_balancer) is then what listens on ``gateway_port``."""
        name = replica_name(name, replica)
        if port is None:
            port = self.own_port(name) if replica > 1 or self.config.replicas > 1 else self.config.gateway_port
        self.ports[name] = port
        realtime_server = realtime_server or self.config.realtime_server
        if realtime_server == "asyncio":
            wsgi_port = free_port()
            # its callers' addresses (rate limits) arrive in X-Forwarded-For, set by the front alone
            self.start_gunicorn(f"{name}-wsgi", wsgi_port, **{"SFERA_TRUST_FORWARDED_FOR": "yes", **env})
            return self._spawn(Managed(name, [PYTHON, "-m", "gateway.realtime_server", "--port", str(port),
                                              "--upstream", f"http://127.0.0.1:{wsgi_port}"],
                                       f"http://127.0.0.1:{port}/healthz", env))
        if realtime_server != "gthread":
            raise InfraError(f"SFERA_REALTIME_SERVER must be gthread or asyncio, not {realtime_server!r}")
        return self.start_gunicorn(name, port, **env)

    # gthread whose thread answers a kept-alive connection's next request itself (SFERA_GATEWAY_LINGER); a
    # benchmark's gateway from before it sets "gthread"
    gunicorn_worker = "gateway.gunicorn_worker.GatewayThreadWorker"

    def start_gunicorn(self, name: str, port: int, **env: str) -> Managed:
        """The gunicorn gateway (REST, and the realtime socket unless the asyncio server fronts it)."""
        # No control socket: gunicorn's default is one per user (~/.gunicorn/gunicorn.ctl), shared by
        # every gateway on the machine, and the first to exit deleted it under the others.
        # gunicorn_conf: gunicorn's own refusals (414, 431, ...) in the API's error shape, no Server name.
        # No access log: the gateway logs each request itself (a JSON line: request id, route, status, ms);
        # gunicorn's line repeated it with the raw query (a socket's access_token) at 0.24 ms a request.
        argv = [str(Path(PYTHON).parent / "gunicorn"), "-c", "python:gateway.gunicorn_conf",
                "--worker-class", self.gunicorn_worker, "--workers", "1",
                "--threads", str(self.config.gateway_threads), "--bind", f"127.0.0.1:{port}",
                "--graceful-timeout", "5", "--no-control-socket", "gateway.app:create_app()"]
        return self._spawn(Managed(name, argv, f"http://127.0.0.1:{port}/healthz", env))

    def start_ejournal_sim(self, port: int, regions: str = "16,77", **sizes: int) -> Managed:
        """The simulated regional e-journals (issue #6), for tests and `make demo`."""
        argv = [PYTHON, "-m", "tools.ejournal_sim", "--port", str(port), "--regions", regions]
        for key, value in sizes.items():
            argv += [f"--{key}", str(value)]
        return self._spawn(Managed("ejournal-sim", argv, f"http://127.0.0.1:{port}/healthz"))

    def start_sfu(self, name: str = "sfu", replica: int = 1, **env: str) -> Managed:
        """An SFU node (issue #7): signaling, health and metrics on ``sfu_port``; another node (``sfu-2``, ...,
        issue #17) on a port of its own. Each tells calls its URL in its heartbeats; calls assigns calls to them."""
        name = replica_name(name, replica)
        port = self.config.sfu_port if replica == 1 else self.own_port(name)
        own = {"SFERA_SFU_NODE": name, "SFERA_SFU_PORT": str(port)}
        if replica > 1:  # the first node's URL is the stack's SFERA_SFU_URL
            own["SFERA_SFU_PUBLIC_URL"] = f"ws://127.0.0.1:{port}/ws"
        return self._spawn(Managed(name, [PYTHON, "-m", "sfu"], f"http://127.0.0.1:{port}/healthz", {**own, **env}))

    def start_balancer(self, gateways: list[str], name: str = "balancer") -> Managed:
        """The round-robin balancer on ``gateway_port`` in front of the named gateways (tools/devstack/balancer.py)."""
        port = self.config.gateway_port
        argv = [PYTHON, "-m", "tools.devstack.balancer", "--port", str(port)]
        for gateway in gateways:
            argv += ["--upstream", f"127.0.0.1:{self.metrics_port(gateway)}"]
        return self._spawn(Managed(name, argv, f"http://127.0.0.1:{port}/healthz"))

    def start_all(self) -> None:
        """Every service, relay and gateway (``config.replicas`` of each), and the SFU (one per node)."""
        replicas = range(1, self.config.replicas + 1)
        for replica in replicas:
            for name in SERVICES:
                self.start_service(name, replica=replica)
        for replica in replicas:
            for name in SERVICES:
                self.start_relay(name, replica=replica)
        for node in range(1, self.config.sfu_nodes + 1):
            self.start_sfu(replica=node)
        gateways = [self.start_gateway(replica=replica).name for replica in replicas]
        if self.config.replicas > 1:
            self.wait_healthy(gateways)
            self.start_balancer(gateways)
        self.wait_healthy()

    def replicas_of(self, name: str) -> list[str]:
        """The processes of ``name`` (a service, ``<service>-relay``, ``gateway``) this stack runs, first first."""
        return [p for p in self.processes if p == name or (p.startswith(f"{name}-") and p[len(name) + 1:].isdigit())]

    def healthy(self, name: str) -> bool:
        """Whether ``name`` runs and its /healthz says ok now."""
        managed = self.processes[name]
        if managed.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(managed.health_url, timeout=1) as response:
                return json.load(response).get("status") == "ok"
        except OSError:
            return False

    def log_tail(self, name: str, chars: int = 2000) -> str:
        """The last ``chars`` of a process's log: said in the error itself (CI keeps a run's output, not its
        temporary folders)."""
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no log: {exc})"

    def wait_healthy(self, names: list[str] | None = None, timeout: float = 60) -> None:
        for name in names or list(self.processes):
            managed = self.processes[name]

            def healthy(m: Managed = managed) -> bool:
                if m.process.poll() is not None:
                    raise InfraError(f"{m.name} exited with {m.process.returncode}; the end of "
                                     f"{self.log_dir / m.name}.log:\n{self.log_tail(m.name)}")
                return self.healthy(m.name)

            wait_for(healthy, timeout, f"{name} to be healthy ({managed.health_url})", interval=0.2)

    def supervise_until(self, predicate, timeout: float, what: str) -> None:
        """Supervises (restarting what died) until ``predicate()`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; {self.status()}")

    def stop_process(self, name: str, *, kill: bool = False, timeout: float = 15) -> None:
        managed = self.processes.pop(name, None)
        if managed is None or managed.process is None or managed.process.poll() is not None:
            return
        os.killpg(managed.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            managed.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(managed.process.pid, signal.SIGKILL)
            managed.process.wait()

    def dead_processes(self) -> list[Managed]:
        return [m for m in self.processes.values() if m.process and m.process.poll() is not None]

    def restart_delay(self, crashes: int) -> float:
        """The wait before the restart that follows ``crashes`` exits in a row (1, 2, ...)."""
        return min(self.config.restart_backoff * 2 ** (crashes - 1), self.config.restart_backoff_max)

    def supervise(self) -> list[str]:
        """One poll of the supervisor: notes the processes that exited, starts again the
        ones whose back-off has passed; returns what it did, one line each (also logged)."""
        now = time.monotonic()
        said = []
        for managed in list(self.processes.values()):
            if managed.process is None:
                continue
            returncode = managed.process.poll()
            up_for = now - managed.started_at
            if returncode is None:
                if managed.crashes and up_for >= self.config.stable_after:
                    managed.crashes = 0
                continue
            if managed.restart_at is None:
                if up_for >= self.config.stable_after:
                    managed.crashes = 0
                managed.crashes += 1
                delay = self.restart_delay(managed.crashes)
                managed.restart_at = now + delay
                said.append(f"{managed.name} exited with {returncode} after {up_for:.1f}s; restarting in "
                            f"{delay:.1f}s (crash {managed.crashes} in a row; see {self.log_dir / managed.name}.log)")
            elif now >= managed.restart_at:
                self._spawn(managed)
                managed.restarts += 1
                said.append(f"{managed.name} restarted (pid {managed.process.pid}, restart {managed.restarts})")
        for line in said:
            log.warning(line)
        if said:
            self.write_status()
        return said

    def status(self) -> dict[str, dict]:
        """Per process: up or waiting for its restart, its pid, restarts so far."""
        return {m.name: {"up": m.process is not None and m.process.poll() is None, "pid": m.process and m.process.pid,
                         "restarts": m.restarts, "crashes_in_a_row": m.crashes, "health_url": m.health_url}
                for m in self.processes.values()}

    def process_addresses(self) -> dict[str, str]:
        """Process name -> host:port it answers /healthz (and /metrics) on: this stack's processes, or, from
        another program (``make observe`` beside ``make run``), what the running stack's supervisor.json says
        (replicas and SFU nodes beyond the first have ports chosen at start)."""
        if self.processes:
            urls = {m.name: m.health_url for m in self.processes.values()}
        else:
            try:
                written = json.loads((self.log_dir / "supervisor.json").read_text())
            except (OSError, ValueError):
                return {}
            urls = {name: s["health_url"] for name, s in written.items() if s.get("health_url")}
        return {name: urllib.parse.urlsplit(url).netloc for name, url in urls.items()}

    def write_status(self) -> None:
        """``<var>/log/supervisor.json``: the supervisor's view, for a look or a check from outside."""
        path = self.log_dir / "supervisor.json"
        path.with_suffix(".tmp").write_text(json.dumps(self.status(), indent=1))
        path.with_suffix(".tmp").replace(path)

    def stop(self) -> None:
        # Ask every process at once, then wait: shutdowns overlap instead of adding up.
        for managed in self.processes.values():
            if managed.process and managed.process.poll() is None:
                os.killpg(managed.process.pid, signal.SIGTERM)
        for name in reversed(list(self.processes)):
            self.stop_process(name)
        if self.owns_broker:
            self.rabbitmq.stop()
        if self.owns_postgres and self.postgres is not None:
            self.postgres.stop()

    def wait_exit(self, name: str, timeout: float = 30) -> int:
        managed = self.processes[name]
        deadline = time.monotonic() + timeout
        while managed.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return managed.process.poll()
