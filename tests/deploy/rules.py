"""The Prometheus side of deploy/: rule files, their alerts, and the PromQL of rules and dashboards
(shared by the promtool tests and the real-Prometheus test)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = [PROMETHEUS_DIR / "alerts.yml", PROMETHEUS_DIR / "slo.yml"]
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in load(path)["groups"] for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def generator(path: Path) -> dict:
    """A generator script's globals (render(), ...) without running its main."""
    return runpy.run_path(str(path), run_name="generator")


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in markdown.read_text().splitlines() if line.startswith("#")}


# Metric names in PromQL: ours (sfera_*, recorded sfera_slo:*, the client library's process_*, Prometheus' up)
# and the exporters' (expected absent without them).
_SELECTOR = re.compile(r"(?<![\w:$.])((?:sfera_|process_|rabbitmq_|cnpg_|probe_)[a-zA-Z0-9_:]+|up)\b(\{[^}]*\})?")
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"')
EXPORTERS = {
    "rabbitmq_": "RabbitMQ's rabbitmq_prometheus plugin (per-object metrics), enabled in production only",
    "cnpg_": "CloudNativePG's instance exporter",
    "probe_": "blackbox_exporter probing the public URL",
}


def selectors(expr: str) -> list[tuple[str, list[str]]]:
    """(metric name, label names it matches on) of every vector selector of ``expr``."""
    found = []
    for name, braces in _SELECTOR.findall(expr):
        found.append((name, [label for label in _MATCHER.findall(braces or "") if label != "__name__"]))
    return found


def exporter_of(expr: str) -> str | None:
    for name, _ in selectors(expr):
        for prefix, what in EXPORTERS.items():
            if name.startswith(prefix):
                return what
    return None
