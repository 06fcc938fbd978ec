"""The boundaries of docs/architecture.md ("Boundaries") hold: import-linter's contracts in pyproject.toml.

No gateway → service, no service → another service, no shared → service, the SFU apart from calls, its layers.
``make lint`` runs the same check; this test makes ``make test`` enforce it."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = {"gateway-no-services", "services-independent", "shared-no-services", "sfu-no-calls", "sfu-layers"}


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_the_contracts_are_the_ones_the_architecture_names():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert {c["id"] for c in config["contracts"]} == CONTRACTS


def test_every_import_contract_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


def test_a_forbidden_import_breaks_its_contract(tmp_path):
    """The check can fail: a gateway module that imports a service's domain is reported."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    gateway = next(c for c in config["contracts"] if c["id"] == "gateway-no-services")
    probe = tmp_path / "probe"
    (probe / "gateway_probe").mkdir(parents=True)
    (probe / "gateway_probe" / "__init__.py").write_text("from messaging.domain import Chat  # noqa: F401\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_packages =\n    gateway_probe\n    messaging\n\n"
        f"[importlinter:contract:probe]\nname = {gateway['name']}\ntype = forbidden\n"
        "source_modules =\n    gateway_probe\nforbidden_modules =\n    messaging\n")
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--config",
                             str(tmp_path / ".importlinter")], cwd=probe, capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(probe), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gateway_probe -> messaging.domain" in result.stdout


def test_one_clock():
    """Services and shared read the time from shared.clock only (four copies of utcnow() were one too many)."""
    sources = [*REPO.glob("shared/**/*.py"), *REPO.glob("services/*/*/**/*.py")]
    own_clocks = [f"{path.relative_to(REPO)}:{number}"
                  for path in sources if "tests" not in path.parts and path != REPO / "shared" / "clock.py"
                  for number, line in enumerate(path.read_text().splitlines(), 1)
                  if "datetime.now(" in line or "datetime.utcnow(" in line or "def utcnow(" in line]
    assert sources and own_clocks == []


# -- applications by use case (issue #16) ----------------------------------------------------------------------
APPLICATION_MAX_LINES = 250


def application_problems(package: Path) -> list[str]:
    """What keeps ``<service>/application/`` from being applications by use case: a module over
    APPLICATION_MAX_LINES lines, or one that knows the bus (``shared.bus``) or CloudEvents (its handlers, in
    ``<service>/handlers.py``, read the events and call the application with plain values)."""
    if not package.is_dir():
        return [f"{package.relative_to(package.parents[1])}: not a package (application/ with one module per use case)"]
    problems = []
    for path in sorted(package.rglob("*.py")):
        source = path.read_text()
        name = path.relative_to(package.parents[1])
        if (lines := len(source.splitlines())) > APPLICATION_MAX_LINES:
            problems.append(f"{name}: {lines} lines (at most {APPLICATION_MAX_LINES})")
        for node in ast.walk(ast.parse(source)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(m == "shared.bus" or m.startswith("shared.bus.") for m in modules):
                problems.append(f"{name}:{node.lineno}: imports the bus ({', '.join(modules)})")
            if isinstance(node, ast.ImportFrom) and any(a.name == "CloudEvent" for a in node.names):
                problems.append(f"{name}:{node.lineno}: imports CloudEvent")
    return problems


SERVICES = sorted(p.parent.name for p in REPO.glob("services/*/*/service.py") if p.parent.name == p.parents[1].name)


@pytest.mark.parametrize("service", SERVICES)
def test_an_application_is_modules_by_use_case_that_know_no_bus(service):
    assert application_problems(REPO / "services" / service / service / "application") == []


def test_the_application_check_can_fail(tmp_path):
    package = tmp_path / "services" / "probe" / "probe" / "application"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from shared.contracts import CloudEvent  # noqa: F401\n")
    (package / "big.py").write_text("import shared.bus.consumer\n" + "x = 1\n" * APPLICATION_MAX_LINES)
    assert application_problems(package) == [
        "probe/application/__init__.py:1: imports CloudEvent",
        f"probe/application/big.py: {APPLICATION_MAX_LINES + 1} lines (at most {APPLICATION_MAX_LINES})",
        "probe/application/big.py:1: imports the bus (shared.bus.consumer)"]
    assert application_problems(tmp_path / "services" / "other" / "other" / "application") == [
        "other/application: not a package (application/ with one module per use case)"]
