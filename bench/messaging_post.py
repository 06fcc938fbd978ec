"""Messaging's cost of one post (issue #17, "live chat delivery"): PostgreSQL statements and CPU of the messaging
service process a post into a 40-member class chat through the gateway, on one running platform, messaging restarted
with each switch in turns (warmed, then measured):

- one at a time, the store's read ahead on (a turn's cached chat, last page and read marks in one select) and off
  (``SFERA_STORE_READ_AHEAD=off``, the baseline);
- 8 clients at once (turns of the chat back to back), the cluster lock handed on from turn to turn and not
  (``SFERA_CLUSTER_LOCK_HANDOVERS=0``, the baseline: unlock and lock again every turn).

Statements are counted from the server's own log (``log_statement=all`` while measuring), each attributed to the
process whose connection sent it (its client port -> the process owning that socket); CPU from /proc.

    python -m bench.messaging_post [--posts 150] [--turns 2]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench import report
from bench.messaging import school_with_classes
from bench.pipeline import cpu_seconds
from bench.platform import SmsCapture, running_platform
from bench.school import OPERATOR, auth

PROCESSES = ("messaging", "messaging-relay")
MODES = {  # the messaging process's switches, clients posting at once
    "read ahead": ({}, 1),
    "read ahead off": ({"SFERA_STORE_READ_AHEAD": "off"}, 1),
    "8 at once": ({}, 8),
    "8 at once, no handovers": ({"SFERA_CLUSTER_LOCK_HANDOVERS": "0"}, 8),
}


def client_ports(pid: int, server_port: int) -> set[int]:
    """The local ports of ``pid``'s TCP connections to ``server_port`` on this machine (/proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def measure(stack, post, posts: int, clients: int = 1) -> dict[str, dict[str, float]]:
    """``posts`` posts, one at a time or by ``clients`` at once: statements and CPU ms of each of PROCESSES, a
    post."""
    pids = {name: stack.processes[name].process.pid for name in PROCESSES}
    log = stack.postgres.data_dir / "server.log"
    stack.postgres.psql("ALTER SYSTEM SET log_statement = 'all'")
    stack.postgres.psql("ALTER SYSTEM SET log_line_prefix = '%p|'")
    stack.postgres.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    start = log.stat().st_size
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    if clients == 1:
        for i in range(posts):
            post(i)
    else:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(post, range(posts)))
    time.sleep(1.0)  # the relay's and the read model's work of the last posts
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    backends = stack.postgres.psql("SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL")
    stack.postgres.psql("ALTER SYSTEM SET log_statement = 'none'")
    stack.postgres.psql("SELECT pg_reload_conf()")
    ports = {name: client_ports(pid, stack.postgres.port) for name, pid in pids.items()}
    owner = {}
    for line in backends.split():
        backend, port = line.split("|")
        for name in PROCESSES:
            if int(port) in ports[name]:
                owner[backend] = name
    counted = collections.Counter()
    for line in log.read_bytes()[start:].decode(errors="replace").splitlines():
        found = re.match(r"(\d+)\|LOG:  (?:statement|execute [^:]*): ", line)
        if found and found.group(1) in owner:
            counted[owner[found.group(1)]] += 1
    return {name: {"statements": counted[name] / posts, "cpu_ms": 1000 * (after[name] - before[name]) / posts}
            for name in PROCESSES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--posts", type=int, default=150, help="posts measured a turn, one at a time")
    parser.add_argument("--turns", type=int, default=2, help="turns of on / off")
    args = parser.parse_args()
    sms = SmsCapture()
    with running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
        print(f"a class chat of {args.members} ...", flush=True)
        ((chat_id, tokens),) = school_with_classes(api, sms, args.members, 1)
        sessions = threading.local()

        def post(i: int) -> None:
            if not hasattr(sessions, "session"):
                sessions.session = requests.Session()
            response = sessions.session.post(f"{api}/chats/{chat_id}/messages", json={"text": f"post {i}"},
                                             headers=auth(tokens[i % len(tokens)]), timeout=30)
            response.raise_for_status()

        found: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for turn in range(args.turns):
            for mode, (env, clients) in MODES.items():
                stack.stop_process("messaging")
                stack.start_service("messaging", **env)
                stack.wait_healthy(["messaging"])
                for i in range(2 * args.members):  # its cache holds the chat, the page and every mark
                    post(i)
                found[mode].append(measure(stack, post, args.posts * (2 if clients > 1 else 1), clients))
                m = found[mode][-1]
                print(f"  turn {turn + 1}, {mode:30s}: messaging {m['messaging']['statements']:.2f} statements, "
                      f"{m['messaging']['cpu_ms']:.2f} ms CPU a post; its relay "
                      f"{m['messaging-relay']['statements']:.2f} statements, {m['messaging-relay']['cpu_ms']:.2f} ms",
                      flush=True)

    def mean(mode: str, name: str, key: str) -> float:
        return sum(m[name][key] for m in found[mode]) / len(found[mode])

    for (mode, baseline), how in ((("read ahead", "read ahead off"), "one at a time"),
                                  (("8 at once", "8 at once, no handovers"), "8 clients at once")):
        switch = MODES[baseline][0]
        off = ", ".join(f"{k}={v}" for k, v in switch.items())
        where = (f"a post into a class chat of {args.members} through the gateway, {how}, {args.turns} turns of each, "
                 f"load {os.getloadavg()[0]:.1f} at the end")
        st, base_st = mean(mode, "messaging", "statements"), mean(baseline, "messaging", "statements")
        cpu, base_cpu = mean(mode, "messaging", "cpu_ms"), mean(baseline, "messaging", "cpu_ms")
        print(f"messaging a post, {how}: {st:.2f} statements ({off}: {base_st:.2f}), {cpu:.2f} ms CPU "
              f"({off}: {base_cpu:.2f} ms)")
        report.row("messaging_post", f"PostgreSQL statements of the messaging service a post ({where})",
                   f"{st:.2f} statements", f"{base_st:.2f} ({off})", st / base_st, "fewer round trips a post")
        report.row("messaging_post", f"CPU of the messaging service process a post ({where})", f"{cpu:.2f} ms",
                   f"{base_cpu:.2f} ms ({off})", cpu / base_cpu,
                   "less CPU a post (25-27 ms across processes for 200 msg/s on 2 cores)")


if __name__ == "__main__":
    main()
    print(report.table(report.rows("messaging_post")), flush=True)
