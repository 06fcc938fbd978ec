"""``python -m bench.realtime``: WebSockets held by one realtime process, and send -> delivered under load.

One private RabbitMQ, identity and messaging as nameko stubs (``bench.realtime_stubs``: real RPC, every session
active, chats of 40), then for each server in turn:

- baseline: the gunicorn gthread gateway (``gateway.realtime``), at its limit of 128 sockets (one thread each);
- the asyncio server (``gateway.realtime_server``), first with the same 128 sockets, then with N (default 10,000).

A client process (aiohttp, loopback) opens the sockets (each a different person), then publishes MessagePosted
events to ``messaging.events`` at ``--rate`` msg/s round-robin into the chats of 40 whose members are connected,
as the messaging relay would, and times each event from its publish to its arrival on every member's socket.
Memory per socket is the server process's RSS growth over the connections / N. The bench raises its open-files
limit to the hard limit (the children inherit it) and says so when the hard limit is below what N needs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench import report
from bench.pipeline import percentile
from bench.realtime_stubs import CHAT_SIZE, chat_id, user_id

FDS_BESIDES_SOCKETS = 1024  # a process's own files, its broker connections, ... (the limit is per process: the
# client holds one end of each socket, the server the other, and each inherits the raised limit)


def raise_nofile(wanted: int) -> tuple[int, int, str]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        return soft, hard, f"could not raise the open-files limit: {exc}"
    note = "" if target >= wanted else f"the hard open-files limit {hard} is below the {wanted} this run needs"
    return target, hard, note


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def serving_pid(pid: int) -> int:
    """The process that holds the sockets: gunicorn's worker (the master's child), else ``pid`` itself."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


# -- the client process -------------------------------------------------------------------------------------------
async def client(url: str, sockets: int, rate: float, seconds: float, connect_concurrency: int,
                 amqp_uri: str, rss_pid: int) -> dict:
    import aiohttp
    import pika

    from shared.auth import issue_access_token
    from shared.contracts import get_contract, make_event

    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    connected: list = []
    refused = 0
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    gate = asyncio.Semaphore(connect_concurrency)

    async def open_one(n: int) -> None:
        nonlocal refused
        token = issue_access_token(uuid.UUID(user_id(n)), str(uuid.uuid4())).token
        async with gate:
            try:
                ws = await session.ws_connect(f"{url}?access_token={token}", autoping=True, max_msg_size=0,
                                              timeout=aiohttp.ClientWSTimeout(ws_close=2))
                ready = await ws.receive(timeout=60)
                if ready.type is not aiohttp.WSMsgType.TEXT or json.loads(ready.data)["type"] != "ready":
                    raise ConnectionError(f"not ready: {ready}")
                connected.append(ws)
            except Exception:
                refused += 1

    started = time.monotonic()
    await asyncio.gather(*(open_one(n) for n in range(sockets)))
    connect_seconds = time.monotonic() - started
    await asyncio.sleep(1)  # the server settles (its handshakes' garbage collected) before its RSS is read
    rss_connected = rss_kib(rss_pid)
    gc_connected = await asyncio.to_thread(gc_pauses, int(url.split(":")[2].split("/")[0]))
    fan_out_connected = await asyncio.to_thread(fan_out_buckets, int(url.split(":")[2].split("/")[0]))
    # The measuring client's N open sockets are long-lived: kept out of its cyclic collector's full passes, so the
    # client (not under test) spends its time reading frames.
    gc.collect()
    gc.freeze()

    async def listen(ws) -> None:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                data = json.loads(message.data)
                if data["type"] == "MessagePosted":
                    latencies.append(time.monotonic() - sent_at[data["data"]["seq"]])

    listeners = [asyncio.create_task(listen(ws)) for ws in connected]
    chats = max(1, len(connected) // CHAT_SIZE)  # only chats whose 40 members are all connected
    contract = get_contract("messaging.MessagePosted.v1")
    total = int(rate * seconds)
    stop = threading.Event()

    def publish() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        channel = connection.channel()
        begin = time.monotonic()
        for seq in range(total):
            if stop.is_set():
                break
            delay = begin + seq / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            event = make_event("messaging.MessagePosted.v1", {
                "chat_id": chat_id(seq % chats), "message_id": uuid.uuid4(), "seq": seq, "author_id": user_id(0),
                "text": "bench", "posted_at": datetime.now(timezone.utc)}, event_id=f"bench:{seq}")
            body = json.dumps(event.to_dict(), default=str).encode()
            sent_at[seq] = time.monotonic()
            channel.basic_publish(contract.exchange, contract.routing_key, body)
        connection.close()

    publisher = threading.Thread(target=publish, daemon=True)
    publish_started = time.monotonic()
    publisher.start()
    await asyncio.to_thread(publisher.join, seconds * 3 + 30)
    stop.set()
    expected = len(sent_at) * CHAT_SIZE
    deadline = time.monotonic() + 10
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    publish_seconds = time.monotonic() - publish_started
    still_open = sum(not ws.closed for ws in connected)
    gc_sent = await asyncio.to_thread(gc_pauses, int(url.split(":")[2].split("/")[0]))
    fan_out_sent = await asyncio.to_thread(fan_out_buckets, int(url.split(":")[2].split("/")[0]))
    for task in listeners:
        task.cancel()
    await session.close()
    return {"asked": sockets, "connected": len(connected), "refused": refused, "still_open": still_open,
            "connect_s": round(connect_seconds, 1), "rss_connected_kib": rss_connected, "gc_connected": gc_connected,
            "gc_sent": gc_sent, "fan_out": bucket_quantiles(fan_out_connected, fan_out_sent),
            "published": len(sent_at), "expected": expected,
            "delivered": len(latencies), "publish_s": round(publish_seconds, 1),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1) if latencies else None}


# -- the bench process --------------------------------------------------------------------------------------------
def gc_pauses(port: int) -> dict[str, tuple[float, float, float, float]]:
    """The asyncio server's collector so far (its /metrics): generation -> (passes, seconds, objects freed, CPU
    seconds)."""
    import urllib.request

    found: dict[str, list[float]] = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return {}
    for line in text.splitlines():
        for name, at in (("sfera_gc_pause_seconds_count", 0), ("sfera_gc_pause_seconds_sum", 1),
                         ("sfera_gc_collected_total", 2), ("sfera_gc_cpu_seconds_total", 3)):
            if line.startswith(name + "{"):
                generation = line.split('generation="')[1].split('"')[0]
                found.setdefault(generation, [0.0, 0.0, 0.0, 0.0])[at] = float(line.rsplit(" ", 1)[1])
    return {g: tuple(values) for g, values in found.items()}


def fan_out_buckets(port: int) -> dict[float, float]:
    """The asyncio server's ``sfera_realtime_fan_out_seconds`` so far: bucket bound -> events at most that long."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        if line.startswith("sfera_realtime_fan_out_seconds_bucket{"):
            bound = line.split('le="')[1].split('"')[0]
            found[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return found


def bucket_quantiles(before: dict[float, float], after: dict[float, float]) -> dict | None:
    """The server's fan-out while sending (the events between two reads of its histogram): how many, and the
    bucket bound its p50 and p99 fall under (ms)."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    if not total:
        return None

    def under(q: float) -> float:
        return next(bound for bound, n in counts.items() if n >= q * total) * 1000

    return {"events": int(total), "p50_ms_at_most": under(0.5), "p99_ms_at_most": under(0.99)}


def measure(stack, name: str, port: int, pid: int, args, sockets: int) -> dict:
    pid = serving_pid(pid)
    before = rss_kib(pid)
    gc_before = gc_pauses(port)
    result_file = Path(stack.var_dir) / f"{name}.json"
    argv = [sys.executable, "-m", "bench.realtime", "client", "--url", f"ws://127.0.0.1:{port}/api/v1/realtime",
            "--sockets", str(sockets), "--rate", str(args.rate), "--seconds", str(args.seconds),
            "--amqp-uri", stack.amqp_uri, "--out", str(result_file), "--rss-pid", str(pid)]
    subprocess.run(argv, env=stack.env(SFERA_LOG_LEVEL="WARNING"), check=True, timeout=args.seconds * 4 + 600)
    result = json.loads(result_file.read_text())
    result["rss_before_mib"] = round(before / 1024, 1)
    result["kib_per_socket"] = round((result.pop("rss_connected_kib") - before) / max(1, result["connected"]), 1)
    gc_connected, gc_sent = result.pop("gc_connected"), result.pop("gc_sent")
    if gc_sent:  # the asyncio server: its collector's pauses while the sockets connected, then while sending

        def between(first: dict, then: dict) -> dict:
            out = {}
            for g, (c, s, f, cpu) in then.items():
                c0, s0, f0, cpu0 = first.get(g, (0, 0, 0, 0))
                out[g] = {"n": int(c - c0), "ms": round((s - s0) * 1000), "cpu_ms": round((cpu - cpu0) * 1000),
                          "freed": int(f - f0)}
            return out

        result["gc"] = {"connecting": between(gc_before, gc_connected), "sending": between(gc_connected, gc_sent)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--baseline-sockets", type=int, default=128, help="the gthread gateway's threads")
    parser.add_argument("--rate", type=float, default=200.0, help="messages a second, into chats of 40")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", metavar="FILE", help="run the asyncio server under cProfile (its loop's thread) "
                        "into FILE and print where its time went; the profiler slows it: its figures are not the "
                        "bench's")
    parser.add_argument("--no-baseline", action="store_true", help="skip the gthread gateway (a profile's run)")
    parser.add_argument("--without-gc-freeze", action="store_true", help="also measure the asyncio server with N "
                        "sockets and SFERA_REALTIME_GC_FREEZE=no (its sockets in the collector's full passes)")
    args = parser.parse_args()

    from tools.devstack.infra import free_port, free_port_block
    from tools.devstack.stack import Managed, Stack, StackConfig

    limit, hard, note = raise_nofile(args.sockets + FDS_BESIDES_SOCKETS)
    if note:
        args.sockets = min(args.sockets, limit - FDS_BESIDES_SOCKETS)
        print(f"NOTE: {note}: {args.sockets} sockets", flush=True)
    print(f"open-files limit {limit} (hard {hard}); {args.sockets} sockets", flush=True)

    with tempfile.TemporaryDirectory(prefix="sfera-bench-realtime-") as tmp:
        config = StackConfig(var_dir=Path(tmp), persistence="sqlite", amqp_port=free_port(),
                             gateway_port=free_port(), metrics_base_port=free_port_block(40),
                             gateway_threads=args.baseline_sockets, realtime_server="gthread",
                             extra_env={"SFERA_LOG_LEVEL": "WARNING"})
        stack = Stack(config)
        print(f"starting a private RabbitMQ in {tmp} ...", flush=True)
        results: dict[str, dict] = {}
        try:
            stack.start_infra()
            stack.run_tool("topology", [sys.executable, "-m", "shared.bus.topology"])
            for name in ("Identity", "Messaging"):
                stack.start_service(name.lower(), f"bench.realtime_stubs:{name}", port=free_port())
            stack.wait_healthy()

            if not args.no_baseline:
                stack.start_gateway()
                stack.wait_healthy(["gateway"])
                pid = stack.processes["gateway"].process.pid
                results["gthread (baseline)"] = measure(stack, "gthread", config.gateway_port, pid, args,
                                                       args.baseline_sockets)
                stack.stop_process("gateway")

            port = free_port()
            profiler = ["-m", "cProfile", "-o", str(Path(args.profile).resolve())] if args.profile else []
            server = stack._spawn(Managed("realtime", [sys.executable, *profiler, "-m", "gateway.realtime_server",
                                                        "--port", str(port)], f"http://127.0.0.1:{port}/healthz"))
            stack.wait_healthy(["realtime"])
            results["asyncio, same sockets"] = measure(stack, "asyncio-small", port, server.process.pid, args,
                                                       args.baseline_sockets)
            results["asyncio"] = measure(stack, "asyncio", port, server.process.pid, args, args.sockets)
            stack.stop_process("realtime", timeout=60)  # SIGTERM: a clean exit writes the profile
            if args.without_gc_freeze:
                port = free_port()
                server = stack._spawn(Managed("realtime-unfrozen", [sys.executable, "-m", "gateway.realtime_server",
                                                                    "--port", str(port)],
                                              f"http://127.0.0.1:{port}/healthz", {"SFERA_REALTIME_GC_FREEZE": "no"}))
                stack.wait_healthy(["realtime-unfrozen"])
                results["asyncio, no gc freeze"] = measure(stack, "asyncio-unfrozen", port, server.process.pid, args,
                                                           args.sockets)
        finally:
            stack.stop()
    summary(results, args)
    if args.profile:
        import pstats

        print(f"\nprofile of the asyncio server's loop ({args.profile}), by own time then by cumulative time:")
        stats = pstats.Stats(args.profile)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)


def summary(results: dict[str, dict], args) -> None:
    print(f"\nrealtime: {args.rate:.0f} msg/s for {args.seconds:.0f} s into chats of {CHAT_SIZE}, "
          "send (publish to messaging.events) -> delivered on every member's socket", flush=True)
    header = (f"{'server':<24}{'sockets':>9}{'refused':>9}{'open at end':>12}{'connect s':>10}{'delivered':>18}"
              f"{'p50 ms':>9}{'p99 ms':>9}{'KiB/socket':>12}")
    print(header)
    for name, r in results.items():
        print(f"{name:<24}{r['connected']:>9}{r['refused']:>9}{r['still_open']:>12}{r['connect_s']:>10}"
              f"{str(r['delivered']) + '/' + str(r['expected']):>18}{str(r['p50_ms']):>9}{str(r['p99_ms']):>9}"
              f"{r['kib_per_socket']:>12}")
        if r.get("fan_out"):
            f = r["fan_out"]
            print(f"{'':<24}server's fan-out (arrival -> written to every socket) of {f['events']} events: p50 <= "
                  f"{f['p50_ms_at_most']:g} ms, p99 <= {f['p99_ms_at_most']:g} ms; the rest of send -> delivered is "
                  "the broker, the kernel and the client")
        for phase, pauses in r.get("gc", {}).items():
            print(f"{'':<24}collector {phase}: " + ", ".join(
                f"gen {g}: {p['n']} passes, {p['ms']} ms ({p['cpu_ms']} ms CPU), {p['freed']} freed"
                for g, p in sorted(pauses.items())))
    base, new = results.get("gthread (baseline)"), results.get("asyncio")
    if base and new and base["p99_ms"] and new["p99_ms"]:
        print(f"sockets held: {new['connected']} vs {base['connected']} ({new['connected'] / base['connected']:.0f}x);"
              f" p99 {new['p99_ms']} ms vs {base['p99_ms']} ms (goal <= 100 ms with 10,000 connected)")
    print(json.dumps(results), flush=True)
    if new and new["p99_ms"] is not None:
        baseline = f"gthread, {base['connected']} sockets: p99 {base['p99_ms']} ms" if base and base["p99_ms"] else "—"
        report.row("realtime", f"asyncio server, {new['connected']} sockets held ({new['refused']} refused), p99 send "
                   f"-> delivered at {args.rate:.0f} msg/s into chats of {CHAT_SIZE} "
                   f"({new['delivered']}/{new['expected']} delivered)",
                   f"p99 {new['p99_ms']} ms (p50 {new['p50_ms']} ms), {new['kib_per_socket']} KiB/socket"
                   + (f"; server's fan-out p99 <= {new['fan_out']['p99_ms_at_most']:g} ms"
                      if new.get("fan_out") else ""),
                   baseline,
                   new["p99_ms"] / base["p99_ms"] if base and base["p99_ms"] else None,
                   ">= 10,000 sockets, p99 <= 100 ms")


def client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--sockets", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--amqp-uri", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--rss-pid", type=int, required=True)
    parser.add_argument("--connect-concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    result = asyncio.run(client(args.url, args.sockets, args.rate, args.seconds, args.connect_concurrency,
                                args.amqp_uri, args.rss_pid))
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(sys.argv[2:])
    else:
        os.environ.setdefault("SFERA_LOG_LEVEL", "WARNING")
        main()
        print(report.table(report.rows("realtime")), flush=True)
