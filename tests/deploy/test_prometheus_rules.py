"""Alert and recording rules (issue #18): promtool checks them and runs their unit tests (Debian's
`prometheus` package, tools/bootstrap/system-deps.sh), every alert has a case that fires it and a runbook
section, and the generated SLO rules are what deploy/prometheus/slo.py writes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.deploy.rules import PROMETHEUS_DIR, ROOT, RULE_FILES, RULE_TESTS, alerts, anchors, generator, load

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_promtool_checks_the_rules_and_the_scrape_config():
    promtool("check", "rules", *map(str, RULE_FILES))
    promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file):
    promtool("test", "rules", str(test_file))


def test_every_alert_has_a_unit_test_that_fires_it():
    fired = set()
    for path in RULE_TESTS:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), "two alerts share a name"
    assert sorted(set(names) - fired) == [], "alerts without a promtool case in which they fire"
    assert sorted(fired - set(names)) == [], "unit tests of alerts that do not exist"


def test_every_alert_links_an_existing_runbook_section():
    missing = []
    for rule in alerts():
        link = rule.get("annotations", {}).get("runbook_url", "")
        path, _, anchor = link.partition("#")
        page = ROOT / path
        if not path.startswith("docs/runbooks/") or not page.is_file() or not anchor or anchor not in anchors(page):
            missing.append((rule["alert"], link))
        assert rule["labels"].get("severity") in {"page", "critical", "ticket", "warning"}, rule["alert"]
        assert rule["annotations"].get("summary"), rule["alert"]
    assert missing == []


def test_slo_rules_are_what_the_generator_writes():
    for path, text in generator(PROMETHEUS_DIR / "slo.py")["render"]().items():
        assert path.read_text() == text, f"{path} is stale: run .venv/bin/python deploy/prometheus/slo.py"


def test_slo_alerts_cover_three_journeys_two_ways_two_speeds():
    slo_alerts = [rule for rule in alerts() if "slo" in rule["labels"]]
    keys = {(r["labels"]["slo"], r["labels"]["sli"], r["labels"]["severity"]) for r in slo_alerts}
    assert keys == {(slo, sli, sev) for slo in ("sign_in", "messaging", "call_join")
                    for sli in ("availability", "latency") for sev in ("page", "ticket")}
