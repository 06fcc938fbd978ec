"""Dashboards as code (issue #18): the committed JSON is what deploy/grafana/dashboards.py generates, and every
panel says what it shows."""

from __future__ import annotations

import json

from tests.deploy.rules import ROOT, generator

GRAFANA = ROOT / "deploy" / "grafana"


def panels(board: dict) -> list[dict]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_committed_dashboards_are_what_the_generator_writes():
    rendered = generator(GRAFANA / "dashboards.py")["render"]()
    assert sorted(rendered) == sorted(GRAFANA.glob("*.json")), "a dashboard JSON without its generator, or missing"
    for path, text in rendered.items():
        assert path.read_text() == text, f"{path.name} is stale: run .venv/bin/python deploy/grafana/dashboards.py"


def test_the_dashboards_an_sre_needs_exist():
    titles = {json.loads(p.read_text())["title"] for p in GRAFANA.glob("*.json")}
    assert {"Sfera / Platform overview", "Sfera / Event path", "Sfera / RabbitMQ", "Sfera / PostgreSQL",
            "Sfera / SFU", *(f"Sfera / {s}" for s in ("identity", "school", "messaging", "calls",
                                                      "ejournal_bridge"))} <= titles


def test_every_panel_says_what_it_shows_and_queries_prometheus():
    uids = set()
    for path in GRAFANA.glob("*.json"):
        board = json.loads(path.read_text())
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in panels(board):
            where = f"{path.name}: {panel['title']}"
            assert len(panel.get("description", "")) > 20, where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), where
