"""SFU nodes (issue #17): which are alive, which one takes a call, and which calls a dead node leaves behind.

Every SFU node sends ``sfu.NodeHeartbeat`` every ~2 s (its name, public URL, the calls it carries, its load).
Liveness is not a fact worth storing: each calls replica hears every heartbeat on a queue of its own (a broadcast)
and keeps this registry in memory. What must be the same for every replica is stored on the call: the node it was
assigned (``Call.assign_node``), so two replicas never split a room over two nodes.

- A call is assigned at a join, to the live node with the fewest calls (then participants): the calls in its last
  heartbeat and those this replica assigned it since.
- A node silent for ``SFERA_SFU_NODE_TIMEOUT`` seconds (default 6) is dead: ``newly_dead`` names it once, with the
  calls it carried, and their participants are marked gone (``Call.lose_node``, the effect of a leave). So is a
  node that started again within the timeout (its ``boot`` changed: a supervisor's quick restart under the same
  name), for the calls it carried before (reported or assigned) and does not carry now.
- A call whose node is dead is assigned a live node at its next join (and its participants are gone then, if no
  replica saw the node die, e.g. calls was down at the time).
- A replica that has heard no heartbeat yet (its first seconds) lets a join wait for the first one, up to a
  heartbeat's interval and a half (``first_heard``): answering the platform's URL then would put the call on no
  node, and where that URL reaches any node (Kubernetes' ``sfu.<domain>``) its participants could land on
  different nodes.
- No heartbeat heard at all (an SFU that does not report): no node, the join answers the platform's
  ``SFERA_SFU_URL`` as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from nameko.extensions import DependencyProvider

from calls.domain import Call
from shared.config import env_float


def node_timeout() -> float:
    return env_float("SFERA_SFU_NODE_TIMEOUT", 6.0)


@dataclass
class NodeState:
    name: str
    url: str
    seen: float
    calls: set[str] = field(default_factory=set)  # as its last heartbeat said
    participants: int = 0
    assigned: dict[str, float] = field(default_factory=dict)  # call id -> when this replica assigned it
    dead: bool = False
    boot: str | None = None

    def carries(self) -> set[str]:
        return self.calls | set(self.assigned)


class NodeRegistry:
    def __init__(self, timeout: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.timeout = node_timeout() if timeout is None else timeout
        self.clock = clock
        self.started = clock()
        self.nodes: dict[str, NodeState] = {}
        self.restarted: list[tuple[str, set[str]]] = []  # nodes that started again, with the calls they lost
        self.uncleared: list[tuple[str, set[str]]] = []  # dead nodes' calls whose clearing failed: tried again
        self.lock = threading.Lock()
        self.any_heard = threading.Event()

    def heard(self, node: str, url: str, calls: Iterable[str] = (), participants: int = 0,
              boot: str | None = None) -> None:
        """A heartbeat of ``node`` (``boot``: which start of it)."""
        now = self.clock()
        calls = {str(c) for c in calls}
        with self.lock:
            state = self.nodes.get(node)
            if state is None:
                state = self.nodes[node] = NodeState(node, url, now, boot=boot)
            if not state.dead and boot and state.boot and boot != state.boot:
                # what its last start carried, less what it carries again (someone joined again since). That
                # includes the calls this replica assigned it since its last heartbeat: people may have connected
                # to the old process in between (CI killed a node before it reported the call its two people had
                # just joined: they stayed connected for ever). One who held a token and had not connected yet
                # joins again.
                lost = state.carries() - calls
                if lost:
                    self.restarted.append((node, lost))
                state.assigned = {}
            if state.dead:  # back (restarted): what it was given before it died is gone
                state.assigned = {}
            state.boot = boot or state.boot
            state.url, state.seen, state.calls, state.participants, state.dead = url, now, calls, participants, False
            # an assignment counts until the node reports the call, or for a while if nobody connects to it
            state.assigned = {c: at for c, at in state.assigned.items()
                              if c not in calls and now - at < 3 * self.timeout}
        self.any_heard.set()

    def first_heard(self, wait: float | None = None) -> bool:
        """Whether a node has been heard, waiting for the first heartbeat while this registry is cold (at most
        ``wait`` seconds: by default a heartbeat's interval and a half, ``SFERA_SFU_HEARTBEAT``)."""
        if self.any_heard.is_set() or self.warm():
            return self.any_heard.is_set()
        if wait is None:
            wait = 1.5 * env_float("SFERA_SFU_HEARTBEAT", 2.0)
        return self.any_heard.wait(max(0.0, min(wait, self.timeout - (self.clock() - self.started))))

    def warm(self) -> bool:
        """Listened long enough that a node not heard from is not alive."""
        return self.clock() - self.started >= self.timeout

    def live(self) -> list[NodeState]:
        now = self.clock()
        return [s for s in self.nodes.values() if now - s.seen <= self.timeout]

    def usable(self, node: str) -> bool:
        """Whether a call assigned to ``node`` stays there: alive, or not known yet to a replica just started."""
        state = self.nodes.get(node)
        if state is not None:
            return self.clock() - state.seen <= self.timeout
        return not self.warm()

    def pick(self) -> NodeState | None:
        """The least loaded live node (fewest calls, then participants, then name), or None."""
        live = self.live()
        return min(live, key=lambda s: (len(s.carries()), s.participants, s.name)) if live else None

    def assigned(self, node: str, call_id: str) -> None:
        with self.lock:
            state = self.nodes.get(node)
            if state is not None:
                state.assigned.setdefault(str(call_id), self.clock())

    def newly_dead(self) -> list[tuple[str, set[str]]]:
        """Nodes silent for longer than the timeout, each named once, with the calls they carried; and nodes that
        started again, with the calls they carried before."""
        now = self.clock()
        with self.lock:
            dead, self.restarted = self.restarted, []
            for state in self.nodes.values():
                if not state.dead and now - state.seen > self.timeout:
                    state.dead = True
                    dead.append((state.name, state.carries()))
        return dead

    def not_cleared(self, node: str, calls: set[str]) -> None:
        """Calls of a dead ``node`` whose participants could not be marked gone (the store failed), for
        ``take_uncleared`` at the next check: the node is named dead once, and dropped, its people stayed seated
        until someone rejoined."""
        with self.lock:
            self.uncleared.append((node, set(calls)))

    def take_uncleared(self) -> list[tuple[str, set[str]]]:
        with self.lock:
            taken, self.uncleared = self.uncleared, []
        return taken


def place(call: Call, nodes: NodeRegistry) -> None:
    """Inside a join's command: keep the call on its node while that is alive; else its participants are gone
    (their node is) and the call goes to the least loaded live node (none known: no node)."""
    if call.node is not None and nodes.usable(call.node):
        return
    if call.node is not None:
        call.lose_node(call.node)
    chosen = nodes.pick()
    if chosen is not None:
        call.assign_node(node=chosen.name, url=chosen.url)


class SfuNodes(DependencyProvider):
    """The registry of one calls process (every worker of it shares it)."""

    def setup(self) -> None:
        self.registry = NodeRegistry()

    def get_dependency(self, worker_ctx) -> NodeRegistry:
        return self.registry
