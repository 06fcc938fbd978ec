"""Messaging's cost of one post (issue #17, "live chat delivery"): PostgreSQL statements and CPU of the messaging
service process a post into a 40-member class chat, posts one at a time through the gateway, with the store's read
ahead (``SFERA_STORE_READ_AHEAD=on``: a turn's cached chat, last page and read marks in one select) and without it
(``off``, the baseline), in turns on one running platform (messaging restarted with the switch, warmed, measured).

Statements are counted from the server's own log (``log_statement=all`` while measuring), each attributed to the
process whose connection sent it (its client port -> the process owning that socket); CPU from /proc.

    python -m bench.messaging_post [--posts 150] [--turns 2]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import time
from pathlib import Path

import requests

from bench import report
from bench.messaging import school_with_classes
from bench.platform import SmsCapture, running_platform
from bench.school import OPERATOR, auth

PROCESSES = ("messaging", "messaging-relay")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def measure(stack, post, posts: int) -> dict[str, dict[str, float]]:
    """``posts`` posts one at a time: statements and CPU seconds of each of PROCESSES, a post."""
    pids = {name: stack.processes[name].process.pid for name in PROCESSES}
    log = stack.postgres.data_dir / "server.log"
    stack.postgres.psql("ALTER SYSTEM SET log_statement = 'all'")
    stack.postgres.psql("ALTER SYSTEM SET log_line_prefix = '%p|'")
    stack.postgres.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    start = log.stat().st_size
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    for i in range(posts):
        post(i)
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
        session = requests.Session()

        def post(i: int) -> None:
            response = session.post(f"{api}/chats/{chat_id}/messages", headers=auth(tokens[i % len(tokens)]),
                                    json={"text": f"post {i}"}, timeout=30)
            response.raise_for_status()

        found: dict[str, list[dict]] = {"on": [], "off": []}
        for turn in range(args.turns):
            for mode in ("on", "off"):
                stack.stop_process("messaging")
                stack.start_service("messaging", SFERA_STORE_READ_AHEAD=mode)
                stack.wait_healthy(["messaging"])
                for i in range(2 * args.members):  # its cache holds the chat, the page and every mark
                    post(i)
                found[mode].append(measure(stack, post, args.posts))
                m = found[mode][-1]
                print(f"  turn {turn + 1}, read ahead {mode:3s}: messaging {m['messaging']['statements']:.2f} "
                      f"statements, {m['messaging']['cpu_ms']:.2f} ms CPU a post; its relay "
                      f"{m['messaging-relay']['statements']:.2f} statements, {m['messaging-relay']['cpu_ms']:.2f} ms",
                      flush=True)

    def mean(mode: str, name: str, key: str) -> float:
        return sum(m[name][key] for m in found[mode]) / len(found[mode])

    on_st, off_st = mean("on", "messaging", "statements"), mean("off", "messaging", "statements")
    on_cpu, off_cpu = mean("on", "messaging", "cpu_ms"), mean("off", "messaging", "cpu_ms")
    where = (f"a post into a class chat of {args.members}, one at a time through the gateway, {args.turns} turns "
             "of each (machine shared with other work)")
    print(f"messaging a post: {on_st:.2f} statements (read ahead off: {off_st:.2f}), {on_cpu:.2f} ms CPU "
          f"(off: {off_cpu:.2f} ms)")
    report.row("messaging_post", f"PostgreSQL statements of the messaging service a post ({where})",
               f"{on_st:.2f} statements (read ahead on)", f"{off_st:.2f} (SFERA_STORE_READ_AHEAD=off)",
               on_st / off_st, "fewer round trips a post (4 in the chat's turn)")
    report.row("messaging_post", f"CPU of the messaging service process a post ({where})",
               f"{on_cpu:.2f} ms (read ahead on)", f"{off_cpu:.2f} ms (SFERA_STORE_READ_AHEAD=off)",
               on_cpu / off_cpu, "less CPU a post (25-27 ms across processes for 200 msg/s on 2 cores)")


if __name__ == "__main__":
    main()
    print(report.table(report.rows("messaging_post")), flush=True)
