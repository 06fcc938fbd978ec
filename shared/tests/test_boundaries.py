"""The boundaries of docs/architecture.md ("Boundaries") hold: import-linter's contracts in pyproject.toml.

No gateway → service, no service → another service, no shared → service, the SFU apart from calls, its layers.
``make lint`` runs the same check; this test makes ``make test`` enforce it."""

from __future__ import annotations

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
