"""An exchange's name is decided once, in shared.bus.naming (issue #16 "Repeats": ``"messaging.events"`` was
spelled in several places): code names exchanges through ``event_exchange`` or a contract's ``exchange``."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from shared.bus.naming import event_exchange
from shared.contracts import registry

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
NAMING = REPO / "shared" / "bus" / "naming.py"
EXCHANGE = re.compile(r"[a-z_]*\.events")


def spelled_exchanges(source: str) -> list[int]:
    """Lines of ``source`` with a string that is an exchange name or its ending (``"x.events"``,
    ``f"{service}.events"``, ``service + ".events"``); prose that mentions one is not counted."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr) and node.values:
            last = node.values[-1]
            if isinstance(last, ast.Constant) and isinstance(last.value, str) and EXCHANGE.fullmatch(last.value):
                found.add(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and EXCHANGE.fullmatch(node.value):
            found.add(node.lineno)
    return sorted(found)


def checked_sources() -> list[Path]:
    """Every Python module of the project but the naming module itself and test modules (a test may pin the
    wire names it checks); tests' helpers, fixtures and clients are checked."""
    roots = [REPO / d for d in ("shared", "services", "bench", "tools", "tests")]
    return [p for root in roots for p in root.rglob("*.py")
            if p != NAMING and not p.name.startswith("test_") and ".venv" not in p.parts
            and "node_modules" not in p.parts]


def test_exchange_names_are_spelled_in_shared_bus_naming_only():
    sources = checked_sources()
    spelled = [f"{p.relative_to(REPO)}:{line}" for p in sources for line in spelled_exchanges(p.read_text())]
    assert len(sources) > 50 and spelled == []


def test_the_check_finds_every_way_of_spelling_one():
    source = 'a = "messaging.events"\nb = f"{service}.events"\nc = service + ".events"\n"""On ``x.events``."""\n'
    assert spelled_exchanges(source) == [1, 2, 3]


def test_the_brokers_definitions_hold_every_publishers_exchange():
    """deploy/rabbitmq/definitions.json declares the exchange of every service that publishes a contract."""
    definitions = json.loads((REPO / "deploy" / "rabbitmq" / "definitions.json").read_text())
    assert {e["name"] for e in definitions["exchanges"]} == {event_exchange(c.service) for c in registry.values()}
