"""Debian's ``prometheus`` as a child process: loopback only, temp storage, the repository's rule files, and a
scrape job per kind of process (the job names deploy/prometheus and the dashboards expect)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from shared.config import REPO_ROOT
from shared.platform import SERVICES
from tools.devstack.infra import die_with_parent, wait_for

RULES = [REPO_ROOT / "deploy" / "prometheus" / "alerts.yml", REPO_ROOT / "deploy" / "prometheus" / "slo.yml"]
BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


def _seconds(duration: str) -> float:
    return float(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


# A job whose processes answer elsewhere than /metrics: the asyncio realtime server fronting the gateway's port
# passes /metrics on to gunicorn's gateway and answers its own (sockets, events pushed) here.
METRICS_PATHS = {"sfera-realtime": "/_realtime/metrics"}


def scrape_targets(stack) -> dict[str, list[str]]:
    """Job -> host:port of every process the stack runs (gateways with their realtime fronts, services, relays,
    SFU nodes: every replica); before any runs, the first of each at the stack's fixed ports."""
    targets = {"sfera-gateway": [], "sfera-services": [], "sfera-relays": [], "sfera-sfu": []}
    for name, address in stack.process_addresses().items():
        job = _job(name)
        if job:
            targets[job].append(address)
    if not any(targets.values()):
        targets = {
            "sfera-gateway": [f"127.0.0.1:{stack.config.gateway_port}"],
            "sfera-services": [f"127.0.0.1:{stack.metrics_port(name)}" for name in SERVICES],
            "sfera-relays": [f"127.0.0.1:{stack.metrics_port(f'{name}-relay')}" for name in SERVICES],
            "sfera-sfu": [f"127.0.0.1:{stack.config.sfu_port}"],
        }
    if stack.config.realtime_server == "asyncio":  # each gateway's front answers its own metrics too
        targets["sfera-realtime"] = list(targets["sfera-gateway"])
    return targets


def _job(process: str) -> str | None:
    """The scrape job of a stack's process by its name (``identity``, ``identity-2``, ``school-relay-2``,
    ``gateway-2``, ``sfu-3``); None for what exports no metrics of its own (the balancer, a gateway's gunicorn
    behind its asyncio front, which the front passes /metrics on to, the e-journal simulator)."""
    base = re.sub(r"-\d+$", "", process)
    if base in SERVICES:
        return "sfera-services"
    if base.endswith("-relay") and base.removesuffix("-relay") in SERVICES:
        return "sfera-relays"
    if base == "gateway":
        return "sfera-gateway"
    if base == "sfu":
        return "sfera-sfu"
    return None


class Prometheus:
    def __init__(self, directory: Path, port: int, targets: dict[str, list[str]], interval: str = "15s",
                 rule_interval: str | None = None):
        self.directory = Path(directory)
        self.port = port
        self.targets = targets
        self.interval = interval
        self.rule_interval = rule_interval  # overrides the rule groups' own interval (tests: 1s)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        rule_files = []
        for path in RULES:
            groups = yaml.safe_load(path.read_text())
            if self.rule_interval:
                for group in groups["groups"]:
                    group["interval"] = self.rule_interval
            copy = self.directory / path.name
            copy.write_text(yaml.safe_dump(groups, sort_keys=False))
            rule_files.append(str(copy))
        config = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval,
                       # a scrape may not outlast its interval
                       "scrape_timeout": self.interval if _seconds(self.interval) < 10 else "10s"},
            "rule_files": rule_files,
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}],
                                **({"metrics_path": METRICS_PATHS[job]} if job in METRICS_PATHS else {})}
                               for job, targets in self.targets.items()],
        }
        path = self.directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self, timeout: float = 30) -> Prometheus:
        config = self.write_config()
        log = open(self.directory / "prometheus.log", "ab")
        self.process = subprocess.Popen(
            [BINARY, f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d",
             "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent(),
        )
        log.close()

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: see {self.directory / 'prometheus.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(ready, timeout, f"prometheus on {self.url}", interval=0.1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, path: str, **params: str) -> dict:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:  # a bad query answers 400 with the error in the body
            return json.load(error)

    def query(self, expr: str) -> list[dict]:
        """The instant vector of ``expr`` now; raises on a query error."""
        answer = self.api("query", query=expr, time=str(time.time()))
        if answer.get("status") != "success":
            raise ValueError(f"{expr}: {answer.get('errorType')}: {answer.get('error')}")
        result = answer["data"]["result"]
        return result if isinstance(result, list) else [result]

    def targets_up(self) -> dict[str, str]:
        """scrape URL -> health ("up", "down", "unknown") of every active target."""
        return {t["scrapeUrl"]: t["health"] for t in self.api("targets")["data"]["activeTargets"]}
