"""``make observe``: a Prometheus beside a running ``make run`` (same ports from the same environment), with
the repository's alert and SLO rules; prints its URL and runs until Ctrl-C. Data under var/prometheus.

    python -m tools.observe
"""

from __future__ import annotations

import sys
import time
import urllib.request

from shared.config import env_int, settings
from tools.devstack.infra import InfraError, stop_on_signals
from tools.devstack.stack import Stack, StackConfig
from tools.observe.prometheus import Prometheus, scrape_targets


def main() -> int:
    var_dir = settings().var_dir
    stack = Stack(StackConfig.from_env(var_dir))
    try:
        urllib.request.urlopen(f"{stack.gateway_url}/healthz", timeout=2).close()
    except OSError:
        print(f"No gateway answers on {stack.gateway_url}: start the platform first (`make run` in another "
              "terminal); Prometheus starts anyway and scrapes it once it is up.", file=sys.stderr)
    prometheus = Prometheus(var_dir / "prometheus", env_int("SFERA_PROMETHEUS_PORT", 9090), scrape_targets(stack),
                            interval="5s")
    stopping = stop_on_signals()
    try:
        prometheus.start()
    except (InfraError, RuntimeError) as error:
        print(f"Prometheus did not start: {error}", file=sys.stderr)
        return 1
    print(f"""
Prometheus is scraping the platform every 5 s (rules: deploy/prometheus/alerts.yml, slo.yml).

  Prometheus     {prometheus.url}
  Targets        {prometheus.url}/targets
  Alerts         {prometheus.url}/alerts
  Data, log      {prometheus.directory}

Dashboards: import deploy/grafana/*.json into a Grafana with this Prometheus as its data source.
Ctrl-C stops it.""", flush=True)
    try:
        while not stopping.is_set() and prometheus.process.poll() is None:
            time.sleep(0.5)
    finally:
        prometheus.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
