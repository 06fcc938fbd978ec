"""A chat's history page, CPU a page in messaging's application (issue #17): ``history`` is a ``@query``
(shared/store), so it reads the aggregate cache's own chat and message pages instead of a deep copy of each (a full
page holds 100 messages; opening a chat read the chat, its last page for the last seq, and that page again).

Baseline of the same run, in turns: the same application with ``SFERA_STORE_QUERY_CACHED=off`` (a copy a read, as
before). One process, one SQLite store in a temporary directory (the pages all cached: what the copy costs does not
depend on the database). Pages: the latest (a chat opened) and random ones (scrolling back), each the median of
``--rounds`` rounds of ``--pages`` reads; and ``readers`` (who has read a message: its count, as the web client asks
it of each of one's own messages shown), a ``@query`` too.

Pages not cached (a long chat scrolled back: the cache holds the last 1,000 aggregates read) are read from the store:
a message page is snapshotted every 50 of its events (messaging.application.base), so such a read is its snapshot and
the few events after it. Baseline of the same run, in turns: a chat written as before, a snapshot every 200 events
(which a page of 100 messages seldom reached: its ~100 events replayed), each read by an application without a cache.

A post that takes a page's snapshot (every 50 of its events) or its author's read mark's (every 100) takes it of the
page and mark it saved (``snapshots_as_saved``, shared/store), where eventsourcing read each again at that version
(its snapshot before and the events since: a round trip and a replay, inside the chat's turn). Baseline of the same
run, in turns: the same posts into a chat of an application whose snapshots are eventsourcing's (``--posts`` a
round).

    python -m bench.history_page [--messages 20000 --pages 1000 --rounds 5 --posts 500]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import report
from bench.platform import environment
from messaging.application import MessagingApplication
from messaging.domain import MessagePage
from messaging.seed import write_history
from shared.config import settings
from shared.contracts.api.messaging import PostMessage
from shared.store import make_application


def cpu_ms_a_page(read: Callable[[int | None], object], befores: list[int | None]) -> float:
    started = time.process_time()
    for before in befores:
        read(before)
    return (time.process_time() - started) / len(befores) * 1000


class PagesAsBefore(MessagingApplication):
    """Messaging as it was: a message page snapshotted every 200 of its events."""

    name = "messaging"
    snapshotting_intervals = {**MessagingApplication.snapshotting_intervals, MessagePage: 200}
    snapshots_as_saved = {kind: n for kind, n in MessagingApplication.snapshots_as_saved.items() if kind != MessagePage}


class SnapshotsReadAgain(MessagingApplication):
    """Messaging with eventsourcing's own snapshots of pages and read marks: of the aggregate read again at the
    snapshot's version, not of the object the post saved."""

    name = "messaging"
    snapshotting_intervals = {**MessagingApplication.snapshotting_intervals, **MessagingApplication.snapshots_as_saved}
    snapshots_as_saved = {}


def in_turns(rounds: int, runs: dict[Any, Callable[[], float]]) -> dict[Any, float]:
    """Each run once a round, all of them in turns, ``rounds`` times: each one's median."""
    ms: dict[Any, list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            ms[key].append(run())
    return {key: statistics.median(each) for key, each in ms.items()}


def from_the_store(config, user: uuid.UUID, messages: int, pages: int, rounds: int) -> dict[str, float]:
    """CPU ms a random history page read from the store: a chat written now and one written as before, each read by an
    application without a cache, in turns."""
    with environment(SFERA_AGGREGATE_CACHE_SIZE="0"):  # read when an application is made
        apps = {"now": make_application(MessagingApplication, "messaging", config=config),
                "before": make_application(PagesAsBefore, "messaging", config=config)}
    chats = {name: write_history(app, user, messages, f"archive {name}").id for name, app in apps.items()}
    shuffled = random.Random(2)
    befores = [shuffled.randrange(50, messages) for _ in range(pages)]
    medians = in_turns(rounds, {name: lambda app=app, chat=chats[name]: cpu_ms_a_page(
        lambda before: app.history(user, chat, before, None, 50), befores) for name, app in apps.items()})
    for app in apps.values():
        app.close()
    return medians


def posts_taking_snapshots(config, user: uuid.UUID, posts: int, rounds: int) -> dict[str, tuple[float, float, int]]:
    """CPU ms of a post that took a snapshot (a page's every 50 events, the author's read mark's every 100) and of a
    post that did not, each the median of ``rounds`` rounds of ``posts`` posts into a chat of the application's own,
    in turns: messaging now (of the object saved) and with eventsourcing's snapshots (read again at the version)."""
    apps = {"now": make_application(MessagingApplication, "messaging", config=config),
            "before": make_application(SnapshotsReadAgain, "messaging", config=config)}
    chats = {name: write_history(app, user, 1, f"posts {name}").id for name, app in apps.items()}
    taken = dict.fromkeys(apps, 0)  # snapshots each application put

    def counting(name: str, put: Callable) -> Callable:
        def counted(snapshots: list, **kwargs: Any) -> Any:
            taken[name] += len(snapshots)
            return put(snapshots, **kwargs)
        return counted

    for name, app in apps.items():
        app.snapshots.put = counting(name, app.snapshots.put)
    ms: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
    snapshots = dict.fromkeys(apps, 0)
    for _ in range(rounds):
        for name, app in apps.items():
            took, other = [], []
            for n in range(posts):
                before, started = taken[name], time.process_time()
                app.post(user, PostMessage(chats[name], f"post {n}"))
                (took if taken[name] > before else other).append((time.process_time() - started) * 1000)
            ms[name].append((statistics.fmean(took), statistics.fmean(other)))
            snapshots[name] += len(took)
    for app in apps.values():
        app.close()
    return {name: (statistics.median(t for t, _ in each), statistics.median(o for _, o in each), snapshots[name])
            for name, each in ms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--posts", type=int, default=500, help="posts a round (a snapshot every 50 of a page's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sfera-bench-history-") as var:
        config = settings({**os.environ, "PERSISTENCE": "sqlite", "SFERA_VAR_DIR": var})
        cached = make_application(MessagingApplication, "messaging", create_table=True, config=config)
        with environment(SFERA_STORE_QUERY_CACHED="off"):  # read when the application is made
            copied = make_application(MessagingApplication, "messaging", config=config)
        user = uuid.uuid4()
        chat = write_history(cached, user, args.messages)
        print(f"a chat of {args.messages} messages; {args.rounds} rounds of {args.pages} pages of 50, in turns ...",
              flush=True)
        shuffled = random.Random(1)
        kinds = {"latest": [None] * args.pages,
                 "random": [shuffled.randrange(50, args.messages) for _ in range(args.pages)]}
        apps = {"cached": cached, "copied": copied}
        for app in apps.values():  # every page in each one's cache, and the code warm
            for before in range(50, args.messages + 50, 50):
                app.history(user, chat.id, before, None, 50)
            app.readers(user, chat.id, 0, None, 1)  # its read model caught up with the chat before any is timed
        runs: dict[tuple[str, str], Callable[[], float]] = {}
        for kind, befores in kinds.items():
            for name, app in apps.items():
                runs[(kind, name)] = lambda app=app, befores=befores: cpu_ms_a_page(
                    lambda before: app.history(user, chat.id, before, None, 50), befores)
        for name, app in apps.items():  # who has read one's message (the web client asks it of its own)
            runs[("readers", name)] = lambda app=app: cpu_ms_a_page(
                lambda before: app.readers(user, chat.id, before, None, 1), kinds["random"])
        ms = in_turns(args.rounds, runs)
        cached.close()
        copied.close()
        print(f"pages read from the store: {args.rounds} rounds of {args.pages // 5} random pages, in turns ...",
              flush=True)
        stored = from_the_store(config, user, args.messages, args.pages // 5, args.rounds)
        print(f"posts: {args.rounds} rounds of {args.posts} posts, in turns ...", flush=True)
        posting = posts_taking_snapshots(config, user, args.posts, args.rounds)
    for kind, what in (("latest", "history page of 50, the latest (a chat opened)"),
                       ("random", "history page of 50, random pages (scrolling back)"),
                       ("readers", "readers of a random message (a count)")):
        now, before = (ms[(kind, name)] for name in ("cached", "copied"))
        print(f"{what}: {now:.3f} ms CPU a call, a copy a read {before:.3f} ms ({now / before:.2f}x)")
        report.row("history_page", f"{what} in a chat of {args.messages}: CPU a call (messaging's application, "
                   f"cached; median of {args.rounds} rounds in turns)", f"{now:.3f} ms",
                   f"SFERA_STORE_QUERY_CACHED=off {before:.3f} ms", now / before, "< 1x")

    now, before = stored["now"], stored["before"]
    print(f"random pages read from the store: {now:.3f} ms CPU a page, pages snapshotted as before {before:.3f} ms "
          f"({now / before:.2f}x)")
    report.row("history_page", f"history page of 50 in a chat of {args.messages}, random pages read from the store "
               f"(not cached): CPU a page (median of {args.rounds} rounds in turns)", f"{now:.3f} ms",
               f"a snapshot every 200 events (before) {before:.3f} ms", now / before, "< 1x")

    (now, other, count), (before, before_other, _) = posting["now"], posting["before"]
    print(f"a post that took a snapshot ({count} of {args.rounds * args.posts}): {now:.3f} ms CPU, read again at its "
          f"version {before:.3f} ms ({now / before:.2f}x); the other posts {other:.3f} / {before_other:.3f} ms")
    report.row("history_page", f"a post that took a snapshot (a page's every 50 events, a read mark's every 100): "
               f"CPU a post (median of {args.rounds} rounds of {args.posts} posts in turns; the others "
               f"{other:.3f} / {before_other:.3f} ms)", f"{now:.3f} ms",
               f"eventsourcing's snapshot, read again at its version {before:.3f} ms", now / before, "< 1x")


if __name__ == "__main__":
    main()
