"""The gateway's CPU per chat post (issue #17, live chat delivery: 200 msg/s into a chat of 40 on 2 cores): POST
/api/v1/chats/{id}/messages through the asyncio front (gateway.realtime_server) and the gunicorn gateway behind
it, every member of the chat on WebSocket. Each process's CPU is read from the kernel (every thread's run time,
/proc/<pid>/task/*/schedstat) before and after a paced run of posts, and divided by the posts.

Two gateways (front + gunicorn each, on ports of their own) run on one platform: this tree's and ``--base``'s
(its services/gateway from ``git archive``; shared, the services and gunicorn's arguments are this tree's on both
sides), each with the chat's 40 sockets. They take turns posting (each first in turn), so both see the same load
of the machine; during one's turn the other only receives the events, which measures apart:

- the gunicorn worker's CPU per post it answered (HTTP, Flask, auth, schemas, the RPC) and per post it did not
  answer (events it consumed for nobody: its process holds no socket);
- the front's CPU per post it proxied and fanned out, and per post it only fanned out (its 40 sockets): the
  difference is the proxy hop's.

    python -m bench.gateway_post [--base REV] [--rate 40] [--seconds 8] [--rounds 3] [--members 40]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import subprocess
import tempfile
import time
from pathlib import Path

from bench import report
from bench.messaging import Sockets, open_loop_posts, school_with_classes
from bench.pipeline import percentile
from bench.platform import SmsCapture, running_platform
from bench.school import OPERATOR
from tools.devstack.infra import free_port

# The tree before this bench's cuts (the gthread consumer started with the process, a schema made per request).
BASE = "3978163"
REPO = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    """The CPU time of every thread of a process so far (the kernel's schedstat: nanoseconds on the CPU)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(Path(path).read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            pass
    return total / 1e9


def gunicorn_worker(master: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn {master} started no worker")


def gateway_pair(stack, name: str, code: Path | None = None) -> dict:
    """An asyncio front and its gunicorn gateway as ``make run`` starts them, on a port of their own; ``code``: a
    folder whose services/gateway is imported instead of this tree's."""
    env = {"PYTHONPATH": str(code / "services" / "gateway")} if code else {}
    if code and not (code / "services" / "gateway" / "gateway" / "gunicorn_worker.py").exists():
        stack.gunicorn_worker = "gthread"  # a gateway from before its own worker
    try:
        stack.start_gateway(name, port=free_port(), realtime_server="asyncio", **env)
    finally:
        stack.gunicorn_worker = type(stack).gunicorn_worker
    stack.wait_healthy([name, f"{name}-wsgi"], timeout=120)
    return {"name": name, "url": f"http://127.0.0.1:{stack.ports[name]}",
            "front": stack.processes[name].process.pid,
            "worker": gunicorn_worker(stack.processes[f"{name}-wsgi"].process.pid)}


def turns(pairs: list[dict], senders: list[tuple[str, str]], rate: float, seconds: float, rounds: int) -> dict:
    found = {p["name"]: {"posts": 0, "front": 0.0, "worker": 0.0, "others_posts": 0, "front_fan_out": 0.0,
                         "worker_idle": 0.0, "answered": [], "failures": 0} for p in pairs}
    for round_ in range(rounds):
        for poster in pairs if round_ % 2 == 0 else pairs[::-1]:  # each goes first in turn
            before = {p["name"]: (cpu_seconds(p["front"]), cpu_seconds(p["worker"])) for p in pairs}
            paced = asyncio.run(
                open_loop_posts(poster["url"] + "/api/v1", senders, rate, seconds, f"{poster['name']}{round_}"))
            sent, answered, failures = paced.sent, paced.answered, paced.failures
            time.sleep(1.5)  # the last deliveries land
            after = {p["name"]: (cpu_seconds(p["front"]), cpu_seconds(p["worker"])) for p in pairs}
            posts = len(sent) - failures
            for p in pairs:
                front, worker = (after[p["name"]][i] - before[p["name"]][i] for i in (0, 1))
                mine = found[p["name"]]
                if p is poster:
                    mine["posts"] += posts
                    mine["front"] += front
                    mine["worker"] += worker
                    mine["answered"] += answered
                    mine["failures"] += failures
                else:
                    mine["others_posts"] += posts
                    mine["front_fan_out"] += front
                    mine["worker_idle"] += worker
            print(f"  round {round_ + 1}, {poster['name']} posting: {posts} posts, " + "; ".join(
                f"{p['name']} front {(after[p['name']][0] - before[p['name']][0]) / posts * 1000:.3f} ms, worker "
                f"{(after[p['name']][1] - before[p['name']][1]) / posts * 1000:.3f} ms a post" for p in pairs),
                flush=True)
    return {name: {"front": r["front"] / r["posts"] * 1000, "worker": r["worker"] / r["posts"] * 1000,
                   "fan_out": r["front_fan_out"] / max(1, r["others_posts"]) * 1000,
                   "idle": r["worker_idle"] / max(1, r["others_posts"]) * 1000,
                   "p50": percentile(r["answered"], 0.5), "p99": percentile(r["answered"], 0.99),
                   "failures": r["failures"]} for name, r in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=BASE, help="the revision whose gateway is the baseline")
    parser.add_argument("--rate", type=float, default=40.0, help="posts a second in a turn (below saturation)")
    parser.add_argument("--seconds", type=float, default=8.0, help="each turn's length")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", type=int, default=40)
    args = parser.parse_args()
    sms = SmsCapture()
    with tempfile.TemporaryDirectory(prefix="sfera-bench-base-") as base_dir:
        archive = subprocess.run(["git", "archive", args.base, "services/gateway"], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", base_dir], input=archive, check=True)
        with running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
            print(f"a class chat of {args.members}, every member on WebSocket to each gateway ...", flush=True)
            chat_id, tokens = school_with_classes(api, sms, args.members, 1)[0]
            pairs = [gateway_pair(stack, "gateway-base", Path(base_dir)), gateway_pair(stack, "gateway-tree")]
            sockets = [Sockets(p["url"].replace("http://", "ws://") + "/api/v1/realtime?access_token=", tokens)
                       for p in pairs]
            senders = [(chat_id, token) for token in tokens]
            try:
                for p in pairs:  # warm: connections, caches, the chat's audience
                    asyncio.run(open_loop_posts(p["url"] + "/api/v1", senders, args.rate, 2, f"warm{p['name']}"))
                time.sleep(1)
                print(f"{args.rounds} rounds of {args.seconds:.0f} s at {args.rate:.0f} posts/s, the gateways in "
                      "turns (other processes' CPU counts in neither) ...", flush=True)
                load = report.Load()
                found = turns(pairs, senders, args.rate, args.seconds, args.rounds)
            finally:
                for s in sockets:
                    s.close()
    tree, base = found["gateway-tree"], found["gateway-base"]
    for name, r in found.items():
        print(f"{name}: gunicorn worker {r['worker']:.3f} ms CPU a post it answered, {r['idle']:.3f} ms a post it "
              f"did not; front {r['front']:.3f} ms a post it proxied and fanned out, {r['fan_out']:.3f} ms a post "
              f"it only fanned out (proxy hop {r['front'] - r['fan_out']:.3f} ms); POST answered p50 "
              f"{r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, {r['failures']} failed")
    shared = f"services/gateway's code only differs, gateways in turns; {load.words()}"
    goal = "less CPU a post: 200 msg/s on 2 cores"
    report.row("gateway_post", f"gunicorn gateway worker: CPU a chat post it answered ({args.rate:.0f}/s, a chat of "
               f"{args.members} on WebSocket; {shared})", f"{tree['worker']:.3f} ms (this tree)",
               f"{base['worker']:.3f} ms ({args.base})", tree["worker"] / base["worker"], goal)
    report.row("gateway_post", f"gunicorn gateway worker: CPU a chat post another gateway answered (events it "
               f"receives; it holds no socket; {shared})", f"{tree['idle']:.3f} ms (this tree)",
               f"{base['idle']:.3f} ms ({args.base})", tree["idle"] / base["idle"] if base["idle"] else None, goal)
    report.row("gateway_post", f"asyncio front: CPU a chat post it proxied and fanned out to {args.members} "
               f"sockets ({shared})", f"{tree['front']:.3f} ms (this tree; fan-out alone {tree['fan_out']:.3f})",
               f"{base['front']:.3f} ms ({args.base}; fan-out alone {base['fan_out']:.3f})",
               tree["front"] / base["front"], goal)
    hop, base_hop = tree["front"] - tree["fan_out"], base["front"] - base["fan_out"]
    report.row("gateway_post", f"asyncio front: the proxy hop's CPU a post (proxied and fanned out less fanned out "
               f"alone; {shared})", f"{hop:.3f} ms (this tree)", f"{base_hop:.3f} ms ({args.base})",
               hop / base_hop if base_hop > 0 else None, goal)


if __name__ == "__main__":
    main()
    print(report.table(report.rows("gateway_post")), flush=True)
