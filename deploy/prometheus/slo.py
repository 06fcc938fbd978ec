"""Service level objectives as code: writes ``slo.yml`` (recording rules and multi-window burn-rate alerts)
and ``tests/slo_test.yml`` (a promtool unit test per alert) beside this file.

    .venv/bin/python deploy/prometheus/slo.py          # write both files
    .venv/bin/python deploy/prometheus/slo.py --check  # exit 1 when the committed files differ

The SLIs come from the gateway's ``sfera_http_request_duration_seconds`` histogram, per route (the Flask
rule, e.g. ``/api/v1/chats/<uuid:chat_id>/messages``): *availability* is the share of requests not answered
with a 5xx (a 4xx or a 429 is the platform working as designed), *latency* the share answered within the
objective's bucket. Burn-rate alerts follow the SRE workbook's multi-window, multi-burn-rate scheme (30-day
budget): page when 2% of the budget burns in an hour or 5% in six hours, ticket when 10% burns in three days.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "slo.yml"
TESTS = HERE / "tests" / "slo_test.yml"
HTTP = "sfera_http_request_duration_seconds"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# (severity, long window, short window, burn rate, for): the SRE workbook's table for a 30-day budget.
BURNS = (
    ("page", "1h", "5m", 14.4, "2m"),
    ("page", "6h", "30m", 6, "15m"),
    ("ticket", "1d", "2h", 3, "1h"),
    ("ticket", "3d", "6h", 1, "3h"),
)


@dataclass(frozen=True)
class Slo:
    key: str  # label value of slo=
    title: str  # alert name prefix
    what: str  # people's words
    routes: tuple[str, ...]
    methods: tuple[str, ...]
    availability: float  # objective: share of requests without a 5xx
    latency_le: str  # bucket boundary as the client library writes it
    latency: float  # objective: share of requests within latency_le seconds
    runbook: str

    @property
    def selector(self) -> str:
        routes = "|".join(self.routes)
        methods = "|".join(self.methods)
        return f'route=~"{routes}",method=~"{methods}"'


SLOS = (
    Slo("sign_in", "SignIn", "signing in (codes by SMS or flash call, e-mail codes, passwords)",
        ("/api/v1/auth/sign-in-codes", "/api/v1/auth/sign-in-codes/<uuid:challenge_id>/confirmation",
         "/api/v1/auth/email-codes", "/api/v1/auth/email-codes/<uuid:challenge_id>/confirmation",
         "/api/v1/auth/password-sign-in"),
        ("POST",), 0.999, "1.0", 0.99, "docs/runbooks/slo-sign-in.md"),
    Slo("messaging", "Messaging", "posting and reading chat messages",
        ("/api/v1/chats/<uuid:chat_id>/messages",), ("GET", "POST"), 0.999, "0.25", 0.99,
        "docs/runbooks/slo-messaging.md"),
    Slo("call_join", "CallJoin", "joining a call (admission and the join token)",
        ("/api/v1/calls/<uuid:call_id>/join",), ("POST",), 0.995, "1.0", 0.99, "docs/runbooks/slo-call-join.md"),
)


def error_ratio(slo: Slo, sli: str, window: str) -> str:
    total = f"sum(rate({HTTP}_count{{{slo.selector}}}[{window}]))"
    if sli == "availability":
        # `or vector(0)`: no 5xx series at all is no error, not an empty ratio.
        bad = f'(sum(rate({HTTP}_count{{{slo.selector},status=~"5.."}}[{window}])) or vector(0))'
        return f"{bad}\n/\n{total}"
    good = f'sum(rate({HTTP}_bucket{{{slo.selector},le="{slo.latency_le}"}}[{window}]))'
    return f"1 - {good}\n/\n{total}"


def objective(slo: Slo, sli: str) -> float:
    return slo.availability if sli == "availability" else slo.latency


def record_name(window: str) -> str:
    return f"sfera_slo:error_ratio:rate{window}"


def alert_name(slo: Slo, sli: str, severity: str) -> str:
    return f"{slo.title}{sli.capitalize()}BudgetBurn{'Fast' if severity == 'page' else 'Slow'}"


def rules() -> dict:
    recording, alerting = [], []
    for slo in SLOS:
        for sli in ("availability", "latency"):
            labels = {"slo": slo.key, "sli": sli}
            recording.append({"record": "sfera_slo:objective", "expr": str(objective(slo, sli)),
                              "labels": labels})
            for window in WINDOWS:
                recording.append({"record": record_name(window), "expr": error_ratio(slo, sli, window),
                                  "labels": labels})
            budget = round(1 - objective(slo, sli), 6)
            sel = f'{{slo="{slo.key}",sli="{sli}"}}'
            for severity in ("page", "ticket"):
                conditions = [
                    f"(\n  {record_name(long)}{sel} > {rate} * {budget}\n  and\n"
                    f"  {record_name(short)}{sel} > {rate} * {budget}\n)"
                    for sev, long, short, rate, _ in BURNS if sev == severity
                ]
                hold = min((f for sev, *_, f in BURNS if sev == severity), key=_seconds)
                what = (f"{100 * (1 - objective(slo, sli)):g}% of {slo.what} failing"
                        if sli == "availability" else
                        f"{100 * (1 - objective(slo, sli)):g}% of {slo.what} taking over {slo.latency_le} s")
                alerting.append({
                    "alert": alert_name(slo, sli, severity),
                    "expr": "\nor\n".join(conditions),
                    "for": hold,
                    "labels": {"severity": severity, **labels},
                    "annotations": {
                        "summary": f"{slo.what[0].upper()}{slo.what[1:]}: the {sli} error budget is burning "
                                   f"{'fast' if severity == 'page' else 'steadily'}",
                        "description": (f"Objective: no more than {what} over 30 days. Bad share over the "
                                        "alert's long window: {{ $value | humanizePercentage }}."),
                        "runbook_url": f"{slo.runbook}#{sli}",
                    },
                })
    return {"groups": [
        {"name": "sfera-slo-recording", "interval": "30s", "rules": recording},
        {"name": "sfera-slo-alerts", "rules": alerting},
    ]}


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[duration[-1]]


def unit_tests() -> dict:
    """Per alert: 100% bad requests on its routes fire it (both severities), a healthy
    hour fires nothing, and the recorded ratio is what the series say."""
    tests = []
    for slo in SLOS:
        route, method = slo.routes[0], slo.methods[0]
        base = f'route="{route}",method="{method}"'
        for sli in ("availability", "latency"):
            if sli == "availability":
                series = [{"series": f'{HTTP}_count{{{base},status="503"}}', "values": "0+60x70"},
                          {"series": f'{HTTP}_bucket{{{base},status="503",le="{slo.latency_le}"}}',
                           "values": "0+60x70"}]
            else:
                series = [{"series": f'{HTTP}_count{{{base},status="200"}}', "values": "0+60x70"},
                          {"series": f'{HTTP}_bucket{{{base},status="200",le="{slo.latency_le}"}}',
                           "values": "0+0x70"}]
            labels = {"slo": slo.key, "sli": sli}
            alerts = []
            for severity in ("page", "ticket"):
                alert = alert_name(slo, sli, severity)
                rule = next(r for r in rules()["groups"][1]["rules"] if r["alert"] == alert)
                annotations = {k: v.replace("{{ $value | humanizePercentage }}", "100%")
                               for k, v in rule["annotations"].items()}
                alerts.append({"eval_time": "70m", "alertname": alert, "exp_alerts": [{
                    "exp_labels": {"severity": severity, **labels}, "exp_annotations": annotations}]})
            tests.append({
                "name": f"{slo.key} {sli}: every request bad for 70 minutes",
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": alerts,
                "promql_expr_test": [{"expr": f'{record_name("5m")}{{slo="{slo.key}",sli="{sli}"}}',
                                      "eval_time": "30m", "exp_samples": [{"labels": _labels(record_name("5m"),
                                                                                             labels),
                                                                           "value": 1}]}],
            })
            healthy = [{"series": f'{HTTP}_count{{{base},status="200"}}', "values": "0+60x70"},
                       {"series": f'{HTTP}_bucket{{{base},status="200",le="{slo.latency_le}"}}',
                        "values": "0+60x70"},
                       # one 5xx in 70 minutes is inside every budget
                       {"series": f'{HTTP}_count{{{base},status="500"}}', "values": "0+0x29 1+0x40"}]
            tests.append({
                "name": f"{slo.key} {sli}: a healthy service fires nothing",
                "interval": "1m",
                "input_series": healthy,
                "alert_rule_test": [{"eval_time": "70m", "alertname": alert_name(slo, sli, s), "exp_alerts": []}
                                    for s in ("page", "ticket")],
            })
    return {"rule_files": ["../slo.yml"], "evaluation_interval": "1m", "tests": tests}


def _labels(name: str, labels: dict) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:  # every rule spelled out, no &id001 anchors
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)

HEADER = "# Generated by deploy/prometheus/slo.py: edit that, then run it.\n"


def render() -> dict[Path, str]:
    dump = {"sort_keys": False, "Dumper": _Dumper, "width": 120, "allow_unicode": True}
    return {RULES: HEADER + yaml.dump(rules(), **dump), TESTS: HEADER + yaml.dump(unit_tests(), **dump)}


def main(argv: list[str]) -> int:
    stale = [path for path, text in render().items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run python deploy/prometheus/slo.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
