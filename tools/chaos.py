"""Chaos under load (issue #18, `make chaos`): the platform under tools/devstack's supervisor (what `make run`
runs) takes a mixed load through the gateway — sign-ins, messages to a chat of 40 members, joins of a call,
signed e-journal webhooks —
while RabbitMQ is restarted, PostgreSQL is restarted and each kind of process is killed with SIGKILL, one
disruption after another. Per disruption, from it until the platform was healthy again (and a few seconds more):

Operations count for a disruption they were under way in (started before its window closed, not accepted
before it opened):

- lost: a sign-in whose account the event path never delivered (the ledger consumer never counted its
  UserRegistered), a message the API accepted that is not in the chat's history, or a webhook (one school
  record) the gateway accepted (202) that the bridge never applied (the school is not among the journal's);
- doubled: an account counted twice, or one message text twice in the history (the load's client sends a
  message whose POST got no answer again with the same client_message_id, the API's idempotency key); a
  webhook's record is keyed (a school by its sourcedId), so a repeat cannot show as a double: its delivery's
  event_id is what the bridge applies once;
- late: an operation accepted, or a sign-in's event applied, more than ``--late`` seconds after it started;
- recovered: seconds from the disruption until every process answers /healthz ok again.

    .venv/bin/python -m tools.chaos                         # every disruption, a table on stdout
    .venv/bin/python -m tools.chaos --only rabbitmq gateway # a few

tests/reliability/test_chaos.py runs a bounded form (a few disruptions) asserting nothing lost or doubled.
The supervisor's loop and the health probe are the devstack's (Stack.supervise_until, Stack.healthy), the API
client the e2e tests' (tests/e2e/api.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shared.platform import SERVICES
from shared.store import make_application
from tests.e2e.api import Api
from tests.e2e.conftest import OPERATOR_PHONE
from tests.fixtures.ledger import LedgerApplication
from tests.reliability.conftest import LEDGER_APP, LEDGER_SERVICE
from tools.ejournal_sim.webhooks import WebhookSender

INFRA = ("rabbitmq", "postgres")
KINDS = ("sign-in", "message", "join", "webhook")
# The stack's environment: one client address signs everyone in; the school's operator approves the school.
ENV = {"SFERA_CODES_PER_HOUR_PER_CLIENT": "1000000", "SFERA_CODE_RESEND_SECONDS": "2", "SFERA_STOP_GRACE": "2",
       "SFERA_OPERATOR_PHONES": OPERATOR_PHONE}


def process_kinds() -> list[str]:
    """One process of each kind the supervisor runs."""
    return [*SERVICES, *(f"{s}-relay" for s in SERVICES), "sfu", "gateway"]


@dataclass
class Op:
    kind: str  # sign-in, message, join, webhook
    started: float
    accepted: float | None = None
    key: str = ""  # the account id, the message text, or the school record's sourcedId


@dataclass
class Row:
    disruption: str
    started: float
    recovered: float = 0.0
    ops: Counter = field(default_factory=Counter)
    lost: int = 0
    doubled: int = 0
    late: int = 0
    detail: Counter = field(default_factory=Counter)  # (operation kind, "lost" | "doubled" | "late")


class Load:
    """Threads that keep signing in, posting, joining and sending webhooks through the gateway; a failed step is
    retried (as a client or an e-journal would) until it is accepted or ``give_up`` seconds pass."""

    def __init__(self, api: Api, chat: dict, give_up: float = 60.0, workers: int = 1, pause: float = 0.05):
        """``workers`` threads of each kind, each pausing ``pause`` seconds between its operations."""
        self.api, self.chat, self.give_up, self.pause = api, chat, give_up, pause
        self.ops: list[Op] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(what, w), daemon=True, name=f"load-{what}-{w}")
                        for what in KINDS for w in range(workers)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=self.give_up + 5)

    def _retry(self, step):
        deadline = time.monotonic() + self.give_up
        while True:
            try:
                return step()
            except Exception:  # noqa: BLE001 - a refused or broken request during a disruption
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.3)

    def _loop(self, what: str, worker: int = 0) -> None:
        n = worker
        while not self.stop.is_set():
            op = Op(what, time.monotonic())
            self.ops.append(op)
            if self._one(op, self.chat["people"][n % len(self.chat["people"])]):
                op.accepted = time.monotonic()
            n += 1
            time.sleep(self.pause)

    def _one(self, op: Op, person: dict) -> bool:
        """One sign-in (a new phone), message (by ``person``) or join (of ``person``); accepted or not."""
        api, chat = self.api, self.chat
        if op.kind == "sign-in":
            phone = api.new_phone()

            def sign_in() -> dict:
                # From the code again after any failure: a confirmation whose answer was lost (a gateway killed
                # mid-request) has used its code, and sending that code again is refused (410) for good.
                challenge = api.request_code(phone)
                code = api.inbox_code("sms", challenge["sent_to"])
                return api.ok("POST", f"/auth/sign-in-codes/{challenge['challenge_id']}/confirmation",
                              json={"code": code})

            session = self._retry(sign_in)
            op.key = session["user_id"] if session else ""
            return bool(session)
        if op.kind == "message":
            op.key = f"chaos {uuid.uuid4().hex[:12]}"
            client_message_id = str(uuid.uuid4())

            def post() -> bool:
                # A POST whose answer was lost is sent again with the same client_message_id (the message's
                # idempotency key, as the web client's outbox does): the API answers the first, never posts twice.
                return bool(api.ok("POST", f"/chats/{chat['chat_id']}/messages", person["access_token"],
                                   status=201, json={"text": op.key, "client_message_id": client_message_id}))

            return bool(self._retry(post))
        if op.kind == "webhook":
            op.key = f"chaos-org-{uuid.uuid4().hex[:12]}"
            sender: WebhookSender = chat["journal"]
            body = sender.body("orgs.upserted", [{"sourcedId": op.key, "name": f"Школа {op.key}", "type": "school"}])

            def deliver() -> bool:
                # The same delivery (same event_id) again until it is accepted, as an e-journal retries.
                response = sender.post(body)
                response.raise_for_status()
                return response.status_code == 202

            return bool(self._retry(deliver))
        return bool(self._retry(lambda: api.ok("POST", f"/calls/{chat['call_id']}/join", person["access_token"])))


def chat_of(api: Api, members: int) -> dict:
    """A school whose admin made a chat of ``members`` people (a class's pupils, invited by link) and started
    a call in it."""
    org, admin = api.organization("Школа хаоса", "Казань")
    klass = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                   json={"name": "9Х", "start_year": 2025, "end_year": 2028})["class_id"]
    people = [admin] + [api.member(org, admin, "student", klass) for _ in range(members - 1)]
    ids = [api.ok("GET", "/me", p["access_token"])["user_id"] for p in people]
    chat_id = api.chat_once_members_known(org, admin, "Хаос", ids[1:])
    call = api.ok("POST", "/calls", admin["access_token"], status=201, json={"chat_id": chat_id})
    # A region's e-journal the operator registered; the load sends its signed webhooks to the URL it was given.
    provider = api.ok("POST", "/operator/ejournal-providers", api.operator()["access_token"], status=201, json={
        "region": "16", "name": "Журнал хаоса", "base_url": "http://127.0.0.1:9/r/16", "client_id": "chaos",
        "client_secret": "chaos-secret"})
    return {"people": people, "chat_id": chat_id, "call_id": call["call_id"], "provider_id": provider["provider_id"],
            "journal": WebhookSender(provider["webhook_url"], provider["webhook_secret"])}


def disrupt(stack, what: str) -> float:
    """Restart an engine or SIGKILL a process; seconds until every process is healthy again."""
    started = time.monotonic()
    if what == "rabbitmq":
        stack.rabbitmq.stop()
        time.sleep(1.0)
        stack.rabbitmq.start()
    elif what == "postgres":
        stack.postgres.stop()
        time.sleep(1.0)
        stack.postgres.start()
    else:
        os.killpg(stack.processes[what].process.pid, signal.SIGKILL)
        time.sleep(0.2)
    stack.supervise_until(lambda: all(stack.healthy(name) for name in stack.processes), timeout=120,
                    what=f"every process healthy after {what}")
    return time.monotonic() - started


def history(api: Api, chat: dict) -> list[str]:
    """Every message text of the chat, newest first, page by page back to its first message. (Not by ``after=``:
    seqs start at 0 and ``after=0`` begins at 1, so a load message that took seq 0 before the call's message did
    was counted lost.)"""
    admin = chat["people"][0]
    texts, before = [], ""
    while True:
        page = api.ok("GET", f"/chats/{chat['chat_id']}/messages?limit=200{before}", admin["access_token"])
        items = page["items"] if isinstance(page, dict) else page
        texts += [m.get("text") or "" for m in items]
        first = min((m["seq"] for m in items), default=0)
        if first == 0:
            return texts
        before = f"&before={first}"


def journal_schools(api: Api, chat: dict, expected: list[str], wait: float = 60.0) -> set[str]:
    """The schools the bridge applied from the load's webhooks (it applies a delivery after answering 202): waits
    until every accepted one is there or ``wait`` seconds pass, then answers what is there."""
    deadline = time.monotonic() + wait
    while True:
        detail = api.ok("GET", f"/operator/ejournal-providers/{chat['provider_id']}", api.operator()["access_token"])
        applied = set(detail.get("orgs") or {})
        if set(expected) <= applied or time.monotonic() > deadline:
            return applied
        time.sleep(0.5)


def note_applied(ledger, ops: list[Op], applied_at: dict[str, float]) -> bool:
    """Notes the accepted sign-ins whose event the ledger has applied; True when all have been."""
    waiting = [op.key for op in list(ops) if op.kind == "sign-in" and op.key and op.key not in applied_at]
    for key in waiting:
        try:
            if ledger.tally(uuid.UUID(key)) >= 1:
                applied_at[key] = time.monotonic()
        except Exception:  # noqa: BLE001 - PostgreSQL restarting: ask again on the next round
            return False
    return all(op.key in applied_at for op in list(ops) if op.kind == "sign-in" and op.key)


def run(stack, disruptions: list[str], members: int = 40, late_after: float = 10.0, settle: float = 3.0,
        out=sys.stdout) -> list[Row]:
    """The load against ``stack`` (started, ledger included) through ``disruptions``; the rows of the table."""
    api = Api(stack)
    chat = chat_of(api, members)
    ledger = make_application(LedgerApplication, "ledger", config=stack.settings())
    applied_at: dict[str, float] = {}
    load = Load(api, chat)
    load.start()
    watching = threading.Event()

    def watch() -> None:
        """When the ledger applied each accepted sign-in's event (polled, so to within half a second)."""
        while not watching.is_set():
            note_applied(ledger, load.ops, applied_at)
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True, name="chaos-watch")
    watcher.start()
    rows = []
    try:
        time.sleep(2.0)  # the load under way
        for what in disruptions:
            row = Row(what, time.monotonic())
            row.recovered = disrupt(stack, what)
            time.sleep(settle)
            rows.append(row)
            print(f"chaos: {what} recovered in {row.recovered:.1f}s", file=out, flush=True)
    finally:
        load.finish()

    watching.set()
    watcher.join(timeout=10)
    verdict = judge(stack, api, chat, ledger, load.ops, applied_at, late_after)

    # An operation belongs to the first disruption whose window (from it until healthy, and ``settle`` more)
    # it was under way in: started before the window closed, not accepted before it opened.
    bounds = [(row, row.started, row.started + row.recovered + settle) for row in rows]
    for op in load.ops:
        row = next((r for r, start, end in bounds
                    if op.started < end and (op.accepted is None or op.accepted >= start)), None)
        if row is None:
            continue
        row.ops[op.kind] += 1
        for what in verdict(op):
            setattr(row, what, getattr(row, what) + 1)
            row.detail[(op.kind, what)] += 1
    print(table(rows, late_after), file=out, flush=True)
    return rows


def judge(stack, api: Api, chat: dict, ledger, ops: list[Op], applied_at: dict[str, float], late_after: float):
    """Once the load has stopped: waits until every accepted sign-in's event was applied (or 60 s passed, then it
    is lost), reads the chat's history and the journal's schools; answers a function giving each operation's
    outcomes: "lost", "doubled", "late" (none: it went well)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack.supervise()
        if note_applied(ledger, ops, applied_at):
            break
        time.sleep(0.5)
    texts = Counter(history(api, chat))
    schools = journal_schools(api, chat, [op.key for op in ops if op.kind == "webhook" and op.accepted])

    def verdict(op: Op) -> list[str]:
        if op.accepted is None:
            return ["late"]  # never accepted within give_up (the client saw it fail)
        outcome, done = [], op.accepted
        if op.kind == "sign-in":
            tally = ledger.tally(uuid.UUID(op.key))
            outcome += ["lost"] * (tally == 0) + ["doubled"] * (tally > 1)
            done = applied_at.get(op.key, time.monotonic())
        elif op.kind == "message":
            outcome += ["lost"] * (texts[op.key] == 0) + ["doubled"] * (texts[op.key] > 1)
        elif op.kind == "webhook":
            outcome += ["lost"] * (op.key not in schools)
        return outcome + ["late"] * (done - op.started > late_after)

    return verdict


def table(rows: list[Row], late_after: float) -> str:
    head = (f"| disruption | sign-ins / messages / joins / webhooks | lost | doubled | late (> {late_after:g} s) "
            "| recovered (s) |")
    lines = [head, "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.disruption} | {' / '.join(str(r.ops[kind]) for kind in KINDS)} | {r.lost} "
                     f"| {r.doubled} | {r.late} | {r.recovered:.1f} |")
    details = [f"{r.disruption}: " + ", ".join(f"{n} {what} {kind}" for (kind, what), n in sorted(r.detail.items()))
               for r in rows if r.detail]
    return "\n".join(lines + ([""] + details if details else []))


def platform(var_dir: Path):
    """A whole platform on PostgreSQL with the ledger consumer, under the supervisor (quick restarts)."""
    from tools.devstack.infra import free_port, free_port_block
    from tools.devstack.stack import Stack, StackConfig

    config = StackConfig(var_dir=var_dir, persistence="postgres", amqp_port=free_port(), pg_port=free_port(),
                         gateway_port=free_port(), metrics_base_port=free_port_block(40), sfu_port=free_port(),
                         gateway_threads=32, restart_backoff=0.2, extra_env=dict(ENV))
    stack = Stack(config)
    stack.start_infra()
    return start(stack)


def start(stack):
    """Everything of ``stack`` (infrastructure up) started, with the ledger consumer; quick restarts."""
    stack.config.restart_backoff = 0.2
    stack.prepare()
    stack.prepare(migrate=[LEDGER_APP], topology=[LEDGER_SERVICE])
    stack.start_all()
    stack.start_service("ledger", LEDGER_SERVICE, port=stack.config.metrics_base_port + 30)
    stack.wait_healthy(["ledger"])
    return stack


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help=f"disruptions: {', '.join([*INFRA, *process_kinds()])}")
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--late", type=float, default=10.0, help="seconds after which an operation is late")
    args = parser.parse_args(argv)
    disruptions = args.only or [*INFRA, *process_kinds()]
    with tempfile.TemporaryDirectory(prefix="sfera-chaos-") as var:
        stack = platform(Path(var))
        try:
            rows = run(stack, disruptions, members=args.members, late_after=args.late)
        finally:
            stack.stop()
    return 1 if any(r.lost or r.doubled for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
