"""Test infrastructure shared by every test folder: private RabbitMQ and
PostgreSQL servers started once per run (from Debian's packages, as the
project installs them), and stores of every kind for application tests."""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings, settings
from tools.devstack.infra import Postgres, RabbitMQ, free_port, free_port_block
from tools.devstack.stack import Stack, StackConfig

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def infra_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="sfera-test-"))
    yield d
    # After the servers have stopped (their fixtures end first): their data is gigabytes of small files (a database
    # for each PostgreSQL store test, thousands of quorum queues), 5-10 s to remove that nothing needs to wait for.
    subprocess.Popen(["rm", "-rf", str(d)], start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def rabbitmq(infra_dir: Path) -> Iterator[RabbitMQ]:
    broker = RabbitMQ(infra_dir / "rabbitmq", free_port())
    broker.start()
    yield broker
    # its data goes with infra_dir next: no orderly stop of the run's every vhost and quorum queue (thousands)
    broker.kill()


@pytest.fixture(scope="session")
def postgres(infra_dir: Path) -> Iterator[Postgres]:
    server = Postgres(infra_dir / "postgres", free_port(), durable=False)
    server.start()
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs on two workers (pytest-xdist, ``--dist loadgroup``), each with its own RabbitMQ and
    PostgreSQL. A work unit is a test module, so a module's fixtures start once; the end-to-end and browser tests
    are one unit each, their package's platform started once (not once on each worker)."""
    for item in items:
        parts = item.nodeid.split("::", 1)[0].split("/")
        shared_platform = parts[0] == "tests" and len(parts) > 2 and parts[1] in ("e2e", "web")
        item.add_marker(pytest.mark.xdist_group("/".join(parts[:2]) if shared_platform else "/".join(parts)))


def _store_settings(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    env = {"SFERA_VAR_DIR": str(tmp_path / "var"), "PERSISTENCE": kind}
    if kind == "postgres":
        server: Postgres = request.getfixturevalue("postgres")
        database = f"t{next(_counter)}"
        server.ensure_database(database)
        env.update(SFERA_PG_PORT=str(server.port), SFERA_PG_DB=database)
    return settings(env)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The same application test against every kind of store."""
    return _store_settings(request.param, tmp_path, request)


@pytest.fixture(params=["sqlite", "postgres"])
def durable_store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Stores shared between threads or processes (concurrency tests)."""
    return _store_settings(request.param, tmp_path, request)


def new_stack(var_dir: Path, rabbitmq: RabbitMQ, postgres: Postgres, persistence: str = "postgres",
              own_broker: bool = False, **extra_env: str) -> Stack:
    """A stack on the shared broker and server, in its own vhost and database. With ``own_broker`` it
    starts a broker of its own instead: a test that restarts the broker then restarts only its stack's
    (not every other stack's of the session), and the restart's length does not depend on what the
    session declared before it."""
    n = next(_counter)
    gateway_port = free_port()
    config = StackConfig(
        var_dir=var_dir,
        persistence=persistence,
        gateway_port=gateway_port,
        metrics_base_port=free_port_block(40),
        sfu_port=free_port(),
        vhost=f"stack{n}",
        pg_database=f"stack{n}",
        gateway_threads=32,
        extra_env={"SFERA_LOG_LEVEL": "INFO", **extra_env},
    )
    if own_broker:
        stack = Stack(config, rabbitmq=RabbitMQ(var_dir / "rabbitmq", free_port()), postgres=postgres, owns_broker=True)
    else:
        stack = Stack(config, rabbitmq=rabbitmq, postgres=postgres)
    stack.start_infra()
    return stack


@pytest.fixture
def make_stack(tmp_path: Path, rabbitmq: RabbitMQ, postgres: Postgres) -> Iterator:
    """Build stacks for one test; they are stopped after it."""
    stacks: list[Stack] = []

    def make(persistence: str = "postgres", own_broker: bool = False, **extra_env: str) -> Stack:
        stacks.append(new_stack(tmp_path / f"stack{len(stacks)}", rabbitmq, postgres, persistence, own_broker,
                                **extra_env))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.stop()

