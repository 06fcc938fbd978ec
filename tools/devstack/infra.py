"""Private RabbitMQ and PostgreSQL instances from Debian's packages, with their
data in a folder of ours and their own ports; started, awaited and stopped.

As root, Debian's PostgreSQL refuses to run, so it runs as the ``postgres``
user (``runuser``); RabbitMQ's own script would switch users, so we call the
real one in /usr/lib/rabbitmq/bin with HOME (the Erlang cookie) in our folder.
"""

from __future__ import annotations

import ctypes
import glob
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL):
    """A ``preexec_fn``: the child gets ``sig`` when the process that started it dies,
    even by SIGKILL (Linux ``PR_SET_PDEATHSIG``). Children keep their own sessions
    (Ctrl-C in a terminal reaches only the supervisor, which stops them in order);
    this is what still ends them when the supervisor cannot. The signal follows the
    *thread* that forked, so spawn from a thread that lives as long as the supervisor.
    Kept across exec of ordinary binaries, cleared by a change of user: set it after one."""
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)

    return preexec


class InfraError(RuntimeError):
    pass


def stop_on_signals() -> threading.Event:
    """Set by Ctrl-C or SIGTERM: a foreground tool (``make run``, ``make observe``) runs until it is, then stops
    what it started."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    return stopping


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


BLOCKS_FROM, SINGLES_FROM = 10_000, 20_000  # blocks are drawn below SINGLES_FROM, single ports from it up
RESERVATION_SECONDS = 15 * 60  # a port handed out stays reserved this long: its server binds it well before


def _reservations() -> Path:
    path = Path(os.environ.get("SFERA_PORT_RESERVATIONS") or f"/tmp/sfera-ports-{os.getuid()}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _reserve(folder: Path, port: int) -> bool:
    """Takes ``port`` for this caller unless another took it within RESERVATION_SECONDS (a file per port: other
    processes of the machine — a test's own ``make run`` — see it too)."""
    entry = folder / str(port)
    try:
        os.close(os.open(entry, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except FileExistsError:
        try:
            if time.time() - entry.stat().st_mtime < RESERVATION_SECONDS:
                return False
            os.utime(entry)  # aged out: this caller's now
            return True
        except FileNotFoundError:
            return _reserve(folder, port)


def free_port_block(size: int = 1) -> int:
    """A base port with ``size`` free ports above it, for servers of ours that bind them soon.

    Below the kernel's ephemeral range: outgoing connections take their source ports from that range, so a port
    picked there can be taken again before our server binds it. And reserved: a port bindable now may already be
    handed out to a server not started yet (a stack draws its balancer's port first and binds it last; CI: the
    balancer of a replicas stack found its port taken by another process of the same stack). Blocks and single
    ports are drawn from two ranges, so single ports do not fragment the blocks'."""
    low, _ = _ephemeral_range()
    first, last = (BLOCKS_FROM, SINGLES_FROM - size) if size > 1 else (SINGLES_FROM, low - 1)
    folder = _reservations()
    for _ in range(2000):
        base = random.randrange(first, max(first + 1, last + 1))
        ports = range(base, base + size)
        if not all(_bindable(p) for p in ports):
            continue
        taken = []
        for port in ports:
            if not _reserve(folder, port):
                break
            taken.append(port)
        if len(taken) == size:
            return base
        for port in taken:  # part of the block was another's: give back the rest
            (folder / str(port)).unlink(missing_ok=True)
    raise InfraError(f"no block of {size} free, unreserved ports in {first}..{last}")


def free_port() -> int:
    """A free port for a server of ours (see free_port_block)."""
    return free_port_block(1)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise InfraError(f"timed out after {timeout:.0f}s waiting for {what}")


class RabbitMQ:
    def __init__(self, data_dir: Path, port: int, node: str | None = None):
        self.data_dir = Path(data_dir)
        self.port = port
        self.node = node or f"sfera{port}@localhost"
        self.dist_port = free_port()  # Erlang distribution; kept across restarts of this broker
        self.process: subprocess.Popen | None = None

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        d = self.data_dir
        return {
            **os.environ,
            "HOME": str(d),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            # rabbitmq-server then execs the Erlang VM instead of keeping a shell between it and us
            # (the shell would die alone with our death signal and leave the VM running).
            "RUNNING_UNDER_SYSTEMD": "1",
            # The Erlang VM writes its crash dump into the working directory unless told where.
            "ERL_CRASH_DUMP": str(d / "erl_crash.dump"),
        }

    def start(self, timeout: float = 90) -> None:
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise InfraError("RabbitMQ is not installed: run `make setup` (tools/bootstrap/system-deps.sh)")
        if port_open(self.port):
            raise InfraError(f"port {self.port} is taken: is another RabbitMQ running? (set SFERA_AMQP_PORT)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "enabled_plugins").write_text("[].\n")
        (self.data_dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\n"
        )
        log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")], env=self._env(), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=self.data_dir, start_new_session=True, preexec_fn=die_with_parent(),
        )
        log.close()

        def ready() -> bool:
            if self.process.poll() is not None:
                raise InfraError(f"RabbitMQ exited at start; see {self.data_dir / 'server.log'}")
            return port_open(self.port)

        wait_for(ready, timeout, f"RabbitMQ on port {self.port}", interval=0.2)
        # The port opens before the broker accepts work; wait for the app to be up.
        subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, "await_startup", "--timeout", "60"],
                       env=self._env(), check=True, capture_output=True, timeout=timeout)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self._env(),
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise InfraError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def add_user(self, user: str, password: str, *, vhost: str) -> None:
        """A broker user with every permission on ``vhost``. The name and password follow ``--``: a generated
        password may begin with "-" (``secrets.token_urlsafe``: one in 64), which rabbitmqctl would read as options."""
        self.ctl("add_user", "--", user, password)
        self.ctl("set_permissions", "-p", vhost, "--", user, ".*", ".*", ".*")

    def add_vhost(self, vhost: str) -> None:
        """``vhost`` with every permission for guest, made once. One rabbitmqctl call: each starts an Erlang VM
        (1-2 s on a loaded machine) and every stack of the tests makes a vhost; the broker's own functions do both
        steps in it (``rabbit_vhost:add`` leaves an existing vhost as it is). A broker whose functions differ gets
        the commands one by one."""
        if re.fullmatch(r"[A-Za-z0-9_.-]+", vhost):
            made = (f'ok = rabbit_vhost:add(<<"{vhost}">>, <<"sfera">>), '
                    f'ok = rabbit_auth_backend_internal:set_permissions(<<"guest">>, <<"{vhost}">>, '
                    '<<".*">>, <<".*">>, <<".*">>, <<"sfera">>).')
            try:
                if self.ctl("eval", made).strip() == "ok":
                    return
            except InfraError:
                pass
        if vhost not in self.ctl("list_vhosts", "--quiet", "--no-table-headers").split():
            self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The VM is our child (no shell between): SIGTERM is its orderly shutdown. (`rabbitmqctl shutdown`
        # would wait for the pid to vanish, which it does not until we reap it.)
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """Abrupt death of the broker (every process of it)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise InfraError("PostgreSQL is not installed: run `make setup` (tools/bootstrap/system-deps.sh)")
    return Path(found[-1]).parent


class Postgres:
    def __init__(self, data_dir: Path, port: int, *, user: str = "sfera", password: str = "sfera",
                 database: str = "sfera", durable: bool = True):
        self.data_dir = Path(data_dir)
        self.port = port
        self.user, self.password, self.database = user, password, database
        self.durable = durable
        self.process: subprocess.Popen | None = None
        self.as_root = os.geteuid() == 0
        self._admin = None  # ensure_database's connection
        self._admin_lock = threading.Lock()

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)

    def _prepare_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            # postgres must be able to reach its folder through every parent.
            for parent in [self.data_dir, *self.data_dir.parents]:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o011)
            shutil.chown(self.data_dir, "postgres", "postgres")

    def start(self, timeout: float = 60) -> None:
        bindir = postgres_bin()
        if port_open(self.port):
            raise InfraError(f"port {self.port} is taken: is another PostgreSQL running? (set SFERA_PG_PORT)")
        self._prepare_dir()
        pgdata = self.data_dir / "pgdata"
        fresh = not (pgdata / "PG_VERSION").exists()
        if fresh:
            subprocess.run(self._cmd(str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "-A", "trust",
                                     "-E", "UTF8", "--no-instructions"), check=True, capture_output=True)
        options = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data_dir}",
                   # the tests' one server carries every stack of a run (a replicas test alone: 2 of every service,
                   # relay and gateway, each with its pool, read models and lock connections): room for them
                   "-c", "max_connections=400",
                   # each transaction's commit time (pg_xact_commit_timestamp): bench.pipeline's commit -> applied
                   "-c", "track_commit_timestamp=on"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.data_dir / "server.log", "ab")
        # The server itself is our child (no runuser in between, which would outlive us alone):
        # Popen switches to the postgres user, then die_with_parent arms the death signal.
        user = {"user": "postgres", "group": "postgres", "extra_groups": []} if self.as_root else {}
        self.process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(self.port), *options],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.data_dir,
            start_new_session=True, preexec_fn=die_with_parent(), **user,
        )
        log.close()

        def ready() -> bool:
            if self.process.poll() is not None:
                raise InfraError(f"PostgreSQL exited at start; see {self.data_dir / 'server.log'}")
            result = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                    capture_output=True)
            return result.returncode == 0

        wait_for(ready, timeout, f"PostgreSQL on port {self.port}", interval=0.2)
        if fresh:
            self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
            self.psql(f"CREATE DATABASE {self.database} OWNER {self.user}")

    def ensure_database(self, name: str) -> None:
        """The database, made if missing, owned by the platform's user. Over one superuser connection kept for
        the server's life (initdb's trust on loopback, as ``psql`` connects): a test run makes one for each
        PostgreSQL store test and stack (~360), and two ``psql`` processes each cost 60 ms where this costs 15."""
        from psycopg import sql  # here, not at the top: a service sets psycopg's wait function before importing it

        with self._admin_lock:
            if self._admin is None or self._admin.closed:
                import psycopg

                self._admin = psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                                              autocommit=True)
            if self._admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                self._admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                                  sql.Identifier(self.user)))

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(postgres_bin() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise InfraError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self, timeout: float = 30) -> None:
        with self._admin_lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)  # fast shutdown
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
