"""Where a post waits (issue #17, "200 msg/s into 40-member chats, p99 <= 100 ms"): bench.messaging's open loop,
200 msg/s into one chat and spread over 5 chats of 40 (every member on WebSocket), in turns, with the messaging
process run by ``bench.messaging_trace_service`` (timers around a post's stages). Each post is followed from its
scheduled send to its answer and to every member's socket:

- to worker: scheduled send -> the application's ``post`` called (the front, gunicorn, the RPC, nameko's worker);
- wait turn: that call -> its chat's turn (``_post_together``) began (the group commit's leader taking the turn,
  the chat's previous turn);
- turn: the turn itself, with its parts (the key's lock and cluster lock, the read ahead, the read marks, the save
  and its statement);
- answer back: the application's answer -> the client has it (RPC reply, gunicorn, the front);
- delivered: the application's answer -> each member's socket (relay, RabbitMQ, the gateway's fan-out).

``--steps closed``: bench.messaging's closed loop over the 5 chats instead (10 posters in each, each waiting for its
answer; send -> delivered), in turns like the rest.

Modes (``--modes``): messaging's environment, each a name=VAR=value,VAR=value ... (``base`` = none), run in turns.

    python -m bench.messaging_trace [--seconds 8] [--rounds 2] [--modes base,...]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.listeners import Listeners
from bench.messaging import open_loop_posts, run_on_uvloop, school_with_classes, spread_latency
from bench.pipeline import cpu_seconds, percentile, tree_cpu_seconds
from bench.platform import SmsCapture, running_platform
from bench.school import OPERATOR
from tools.devstack.stack import PYTHON, Managed


def start_traced(stack, trace: Path, env: dict[str, str]) -> None:
    if "messaging" in stack.processes:
        stack.stop_process("messaging")
    port = stack.metrics_port("messaging")
    stack._spawn(Managed("messaging", [PYTHON, "-m", "bench.messaging_trace_service", "messaging"],
                         f"http://127.0.0.1:{port}/healthz",
                         {"SFERA_METRICS_PORT": str(port), "SFERA_TRACE_FILE": str(trace), **env}))
    stack.wait_healthy(["messaging"])


def cpu_of(stack) -> dict[str, float]:
    found = {}
    for name, managed in stack.processes.items():
        try:
            found[name] = cpu_seconds(managed.process.pid)
        except (OSError, AttributeError):
            pass
    found["postgres"] = tree_cpu_seconds(stack.postgres.process.pid)  # its backends too
    return found


def q(values: list[float], p: float) -> float:
    return percentile(values, p) if values else float("nan")


def analyse(trace: Path, posts: dict, arrivals: dict, label: str, cpu: dict[str, float], seconds: float) -> dict:
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    t_lo = min(s for s, _, _ in posts.values())
    t_hi = max(a for _, a, _ in posts.values())
    by_text = {r["text"]: r for r in records if r["k"] == "post" and r["text"] in posts}
    batch_of = {t: r for r in records if r["k"] == "batch" for t in r["texts"] if t in posts}
    rows: dict[str, list[float]] = {k: [] for k in (
        "delivered", "answered", "to worker", "wait turn", "turn", "turn lock", "cluster acquire", "prefetch",
        "marks", "save", "insert", "answer back", "first socket", "last socket", "active")}
    for text, (scheduled, answered, _) in posts.items():
        rows["answered"].append((answered - scheduled) * 1000)
        got = arrivals.get(text, [])
        rows["delivered"] += [(a - scheduled) * 1000 for a in got]
        post, batch = by_text.get(text), batch_of.get(text)
        if post is None or batch is None:
            continue
        rows["to worker"].append((post["t0"] - scheduled) * 1000)
        rows["wait turn"].append((batch["t0"] - post["t0"]) * 1000)
        rows["turn"].append((batch["t1"] - batch["t0"]) * 1000)
        for stage, key in (("turn lock", "turn"), ("cluster acquire", "acquire"), ("prefetch", "prefetch"),
                           ("marks", "marks"), ("save", "save"), ("insert", "insert")):
            if batch.get(key) is not None:
                rows[stage].append(batch[key])
        rows["answer back"].append((answered - post["t1"]) * 1000)
        rows["active"].append(post["active"])
        if got:
            rows["first socket"].append((min(got) - post["t1"]) * 1000)
            rows["last socket"].append((max(got) - post["t1"]) * 1000)
    batches = {id(r): r for r in batch_of.values()}
    window = [r for r in records if r["k"] in ("connect", "catch_up", "gap") and t_lo <= r["t"] <= t_hi + 1]
    connects: dict[str, int] = {}
    for r in window:
        if r["k"] == "connect":
            connects[r["app"] or "pool"] = connects.get(r["app"] or "pool", 0) + 1
    catch_ups = [r["ms"] for r in window if r["k"] == "catch_up" and r["moved"]]
    gaps = [r["ms"] for r in window if r["k"] == "gap"]
    spans = [(r["t"] - r["ms"] / 1000, r["t"]) for r in window if r["k"] == "catch_up" and r["moved"]]
    collections = [r for r in records if r["k"] == "gc" and t_lo <= r["t"] <= t_hi + 1]
    in_gc = sum(r["ms"] for r in window if r["k"] == "gap" and any(
        c["t"] - c["ms"] / 1000 - 0.005 <= r["t"] <= c["t"] + 0.02 for c in collections))
    in_catch_up = sum(r["ms"] for r in window if r["k"] == "gap" and any(a <= r["t"] <= b + 0.05 for a, b in spans))
    print(f"  {label}: {len(posts)} posts, {len(batches)} turns ({len(posts) / max(1, len(batches)):.2f} posts a "
          f"turn), failures {sum(1 for *_, s in posts.values() if s != 201)}")
    for stage, values in rows.items():
        print(f"    {stage:16s} p50 {q(values, 0.5):8.2f}  p90 {q(values, 0.9):8.2f}  p99 {q(values, 0.99):8.2f}  "
              f"max {max(values, default=float('nan')):8.2f}  (n {len(values)})")
    print(f"    connects {connects}; read model catch-ups {len(catch_ups)} (ms p50 {q(catch_ups, 0.5):.1f}, max "
          f"{max(catch_ups, default=0):.1f}); loop stalls > 10 ms: {len(gaps)} (max {max(gaps, default=0):.1f} ms, "
          f"sum {sum(gaps):.0f} ms, {in_catch_up:.0f} of it during catch-ups, {in_gc:.0f} right after a collection)")
    for gen in (0, 1, 2):
        pauses = [c["ms"] for c in collections if c["gen"] == gen]
        print(f"    gc generation {gen}: {len(pauses)} collections, {sum(pauses):.0f} ms in all, max "
              f"{max(pauses, default=0):.1f} ms")
    print("    CPU ms a post: " + ", ".join(f"{k} {1000 * v / len(posts):.2f}" for k, v in sorted(
        cpu.items(), key=lambda kv: -kv[1]) if v > 0.0001 * len(posts)) + f"; load {os.getloadavg()[0]:.2f}",
        flush=True)
    return {stage: q(values, 0.99) for stage, values in rows.items()} | {
        "p50": q(rows["delivered"], 0.5), "answered_p50": q(rows["answered"], 0.5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="base", help="name=VAR=value,VAR=value;name2=... ('base': none)")
    parser.add_argument("--steps", default="one,five",
                        help="one (one chat), five (5 chats), closed (closed loop over 5 chats, 10 posting in each)")
    args = parser.parse_args()
    modes: dict[str, dict[str, str]] = {}
    for spec in args.modes.split(";"):
        name, _, env = spec.partition("=")
        modes[name] = dict(kv.split("=", 1) for kv in env.split(",") if kv)
    sms = SmsCapture()
    summary: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="sfera-trace-") as tmp, \
            running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
        chats = school_with_classes(api, sms, 40, 5)
        ws_url = stack.gateway_url.replace("http://", "ws://") + "/api/v1/realtime?access_token="
        open_steps = set(args.steps.split(",")) - {"closed"}  # the closed loop connects its own sockets
        sockets = Listeners(ws_url, [token for _, tokens in chats for token in tokens] if open_steps else [])
        for n in range(args.rounds):
            for mode, env in modes.items():
                trace = Path(tmp) / f"{mode}-{n}.jsonl"
                start_traced(stack, trace, env)
                for step in args.steps.split(","):
                    if step == "closed":  # bench.messaging's closed loop over 5 chats (10 posting in each, waiting)
                        own, before, each = time.process_time(), cpu_of(stack), {}
                        found = spread_latency(stack, api, chats, 10, args.rate, args.seconds, each)
                        after = cpu_of(stack)
                        print(f"  the bench's own CPU: {time.process_time() - own:.2f} s", flush=True)
                        analyse(trace, each, found["arrivals"], f"round {n + 1}, {mode}, closed",
                                {k: after[k] - before.get(k, after[k]) for k in after}, args.seconds)
                        print(f"round {n + 1}, {mode}, closed over {len(chats)} chats: sent {found['achieved']:.1f}"
                              f"/s, delivered {100 * found['delivered']:.1f}%, p50 {found['p50']:.1f} ms, p99 "
                              f"{found['p99']:.1f} ms (answered p99 {found['answered_p99']:.1f} ms)", flush=True)
                        summary.setdefault((mode, step), []).append(
                            {"delivered": found["p99"], "p50": found["p50"], "answered": found["answered_p99"]})
                        continue
                    some = chats[:1] if step == "one" else chats
                    senders = [(chat_id, tokens[m]) for m in range(40) for chat_id, tokens in some]
                    warm = open_loop_posts(api, senders, 50, 2, f"warm{mode}{n}{step}")
                    run_on_uvloop(warm)  # caches and connections
                    time.sleep(1)
                    before = cpu_of(stack)
                    paced = open_loop_posts(api, senders, args.rate, args.seconds, f"{mode}{n}{step}")
                    posts = run_on_uvloop(paced).posts
                    time.sleep(2)
                    after = cpu_of(stack)
                    time.sleep(1)  # the trace's last flush
                    cpu = {k: after[k] - before.get(k, after[k]) for k in after}
                    sockets.refresh()
                    summary.setdefault((mode, step), []).append(analyse(
                        trace, posts, sockets.arrivals, f"round {n + 1}, {mode}, {step}", cpu, args.seconds))
        sockets.close()
    print()
    for (mode, step), found in summary.items():
        print(f"{mode:12s} {step:5s} delivered p99 " + " / ".join(f"{f['delivered']:.1f}" for f in found)
              + " ms, p50 " + " / ".join(f"{f['p50']:.1f}" for f in found) + "; answered p99 "
              + " / ".join(f"{f['answered']:.1f}" for f in found) + " ms")


if __name__ == "__main__":
    main()
