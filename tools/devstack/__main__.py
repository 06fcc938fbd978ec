"""``make run``: the whole platform on this machine until Ctrl-C;
``make demo``: the same plus the simulated regional e-journals (regions 16 and
77), region 16 registered with the bridge and its whole school pushed by webhooks.

    python -m tools.devstack run|demo
"""

from __future__ import annotations

import fcntl
import os
import sys
import time

from shared.config import env_int, env_str, settings
from shared.platform import SERVICES
from tools.devstack.infra import InfraError, stop_on_signals
from tools.devstack.stack import Stack, StackConfig


def demo_journals(stack: Stack) -> str:
    """Start the simulator, register region 16's journal with the bridge (on the machine, as an operator would
    with ``python -m ejournal_bridge.operator``), and push its school; returns what to print."""
    import requests

    from ejournal_bridge import operator
    from shared.contracts.api.ejournal_bridge import RegisterProvider

    port = env_int("SFERA_EJOURNAL_SIM_PORT", 8090)
    stack.start_ejournal_sim(port, "16,77")
    stack.wait_healthy(["ejournal-sim"])
    sim = f"http://127.0.0.1:{port}"
    public = env_str("SFERA_PUBLIC_URL", stack.gateway_url)
    if operator.providers("16", config=stack.settings()):
        return f"  E-journals     {sim}/r/16, {sim}/r/77 (region 16 registered before; its school is in)\n"
    provider = operator.register_provider(
        RegisterProvider("16", "Электронная школа", f"{sim}/r/16", "sfera-16", "sim-client-secret"),
        f"{public}/api/v1/ejournal/webhooks", config=stack.settings())
    requests.put(f"{sim}/r/16/admin/platform", timeout=10, json={
        "provider_id": provider["provider_id"], "webhook_url": provider["webhook_url"],
        "webhook_secret": provider["webhook_secret"], "link_url": f"{public}/ejournal/link"}).raise_for_status()
    requests.post(f"{sim}/r/16/admin/push", timeout=10).raise_for_status()
    return (f"  E-journals     {sim}/r/16 (registered, school pushed), {sim}/r/77\n"
            f"                 sign in there as r16-teacher-1 / pw-r16-teacher-1 after POST /api/v1/ejournal/links\n")


def run(demo: bool = False) -> int:
    var_dir = settings().var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    lock_path = var_dir / "run.lock"
    lock = open(lock_path, "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid = lock.read().strip() or "?"
        print(f"Sfera is already running here (pid {pid}, data in {var_dir}).\n"
              f"Stop it with Ctrl-C in its terminal (or `kill {pid}`), or run a second copy with another "
              f"SFERA_VAR_DIR and other ports.", file=sys.stderr)
        return 1
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()

    config = StackConfig.from_env(var_dir)
    stack = Stack(config)
    stopping = stop_on_signals()
    try:
        print(f"Starting RabbitMQ{' and PostgreSQL' if config.persistence == 'postgres' else ''} ...", flush=True)
        stack.start_infra()
        stack.prepare()
        print("Starting services, relays, the SFU and the gateway ...", flush=True)
        stack.start_all()
        journals = demo_journals(stack) if demo else ""
        g = stack.gateway_url
        print(f"""
Sfera is running (persistence: {config.persistence}, data: {var_dir}).

  App            {g}/   (the web client: sign in by phone, the code is in the dev inbox below)
  API            {g}/api/v1
  API docs       {g}/docs   (OpenAPI: {g}/openapi.json)
  Gateway health {g}/healthz, metrics {g}/metrics
  Dev inbox      {settings().outbox_dir}/sms/   (sign-in codes land here)
  RabbitMQ       {stack.rabbitmq.amqp_uri}
  Logs           {stack.log_dir}/
  Services       """ + ", ".join(f"{n} :{stack.metrics_port(n)}" for n in SERVICES) + """
  Dead letters   make dlq
  SFU            """ + ", ".join(f"ws://127.0.0.1:{p}/ws (metrics :{p}/metrics)" for p in [
            stack.config.sfu_port, *(stack.ports[f"sfu-{i}"] for i in range(2, stack.config.sfu_nodes + 1))]) + """
  A call's link  {g}/call/<call id>
""".replace("{g}", g) + journals + """
Press Ctrl-C to stop everything. A process that exits is started again (restarts: """
              f"{stack.log_dir}/supervisor.json).", flush=True)
        stack.write_status()
        while not stopping.is_set():
            for line in stack.supervise():
                print(line, file=sys.stderr, flush=True)
            if stack.owns_broker and stack.rabbitmq.process.poll() is not None:
                print(f"RabbitMQ exited; see {stack.rabbitmq.data_dir / 'server.log'}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0
    except InfraError as exc:
        print(f"Cannot start Sfera: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nStopping Sfera ...", flush=True)
        stack.stop()
        lock_path.unlink(missing_ok=True)
        print("Stopped.", flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] in (["run"], ["demo"]):
        return run(demo=argv[0] == "demo")
    print("usage: python -m tools.devstack run|demo", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
