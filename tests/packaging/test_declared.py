"""Each package's pyproject.toml declares every distribution its code imports, pinned as requirements.lock pins it
(issue #16). Static and quick; test_packages.py proves the same by installing and starting each package alone,
but a package there may still import what another dependency happens to pull in (kombu through nameko): here
a direct import must be a declared dependency."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROJECTS = [REPO / "shared", *sorted(p.parent for p in REPO.glob("services/*/pyproject.toml"))]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0])


def lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def declared(project: Path) -> dict[str, str]:
    """Requirement name -> its pinned version, extras included."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    requirements = [*meta.get("dependencies", []),
                    *(r for group in meta.get("optional-dependencies", {}).values() for r in group)]
    return {requirement_name(r): r.partition("==")[2].strip() for r in requirements}


def packages_of(project: Path) -> list[Path]:
    if project.name == "shared":
        return [project]
    return [p.parent for p in project.glob("*/__init__.py") if p.parent.name != "tests"]


def imported(project: Path) -> dict[str, str]:
    """Top-level module -> where it is first imported (functions included), third-party and first-party."""
    found: dict[str, str] = {}
    for package in packages_of(project):
        for path in sorted(package.rglob("*.py")):
            if "tests" in path.relative_to(package).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], f"{path.relative_to(project.parent)}:{node.lineno}")
    return found


def undeclared(project: Path) -> list[str]:
    own = {p.name for p in packages_of(project)}
    distributions = importlib.metadata.packages_distributions()
    wanted = declared(project)
    problems = []
    for module, where in sorted(imported(project).items()):
        if module in own or module in sys.stdlib_module_names or module == "__future__":
            continue
        if module == "shared":
            names = ["sfera-shared"]
        else:
            names = [canonical(d) for d in distributions.get(module, [])]
        if not names:
            problems.append(f"{module} ({where}): no installed distribution provides it")
        elif not any(n in wanted for n in names):
            problems.append(f"{module} ({where}): {', '.join(names)} is not declared")
    return problems


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_every_import_is_a_declared_dependency(project):
    assert undeclared(project) == []


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_every_dependency_is_pinned_as_the_lock_pins_it(project):
    pins = lock()
    wrong = {name: version for name, version in declared(project).items()
             if name != "sfera-shared" and pins.get(name) != version}
    assert wrong == {}, f"{project.name}: pins that differ from requirements.lock ({ {n: pins.get(n) for n in wrong} })"


def test_an_undeclared_import_is_found(tmp_path):
    """The check can fail: messaging with a lazy ``import yaml`` it does not declare."""
    project = tmp_path / "messaging"
    shutil.copytree(REPO / "services" / "messaging", project, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    (project / "messaging" / "extra.py").write_text("def load():\n    import yaml\n    return yaml\n")
    assert undeclared(project) == ["yaml (messaging/messaging/extra.py:2): pyyaml is not declared"]
