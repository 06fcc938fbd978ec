"""Real packages (issue #16): shared/ and each service install alone from their own pyproject.toml, with their
true pinned dependencies, and start.

Each project is copied (without its tests) and built into a wheel; then a FRESH virtual environment (no system
site-packages, not even pip) gets that wheel, sfera-shared's and their declared dependencies from the wheel
cache ``make setup`` fills (``.venv/wheelhouse``: the wheels of requirements.lock), offline (``--no-index``,
no pip configuration of the machine). There, from a folder outside the repository and with ``python -I``
(no PYTHONPATH, no current folder), every module of the package is imported and the process is started against
this run's RabbitMQ until its ``/healthz`` says ok. An import the pyproject does not declare fails the test:
``test_an_undeclared_dependency_fails`` builds the bridge without ``jsonschema`` and sees it fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.devstack.infra import RabbitMQ, free_port, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / ".venv" / "wheelhouse"
LOCK = REPO / "requirements.lock"
PIP = [sys.executable, "-m", "pip"]
UV = Path(sys.executable).parent / "uv"
NAMEKO_SERVICES = ("identity", "school", "messaging", "calls", "ejournal_bridge")


@dataclass(frozen=True)
class Project:
    name: str  # folder under services/, or "shared"
    package: str

    @property
    def source(self) -> Path:
        return REPO / "shared" if self.name == "shared" else REPO / "services" / self.name

    @property
    def distribution(self) -> str:
        return tomllib.loads((self.source / "pyproject.toml").read_text())["project"]["name"]


PROJECTS = [Project("shared", "shared"), *(Project(p.parent.name, p.parent.name)
                                          for p in sorted(REPO.glob("services/*/pyproject.toml")))]


def pip_env() -> dict[str, str]:
    """pip with none of this machine's configuration (its indexes, find-links, constraints): only what we pass."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def run(argv: list, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise PackagingError(f"{' '.join(map(str, argv[:6]))} ... failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


class PackagingError(AssertionError):
    pass


def build(sources: list[Path], into: Path, tmp: Path, edit=None) -> None:
    """Wheels of the projects at ``sources``, built from copies (no tests, nothing left in the work tree)."""
    copies = []
    for source in sources:
        copy = tmp / "src" / source.name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
        if edit is not None:
            edit(copy / "pyproject.toml")
        copies.append(copy)
    run([*PIP, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", into, *copies],
        env=pip_env(), cwd=tmp)


def uv_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_")) and k != "PYTHONPATH"}
    return {**env, "UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(cache), "UV_OFFLINE": "1"}


def fresh_venv(folder: Path, distribution: str, *wheel_dirs: Path) -> Path:
    """A new virtual environment (no system site-packages, no pip) holding ``distribution`` and what it declares,
    from the wheels only (uv: a second per venv where pip took a minute); its python."""
    cache = folder.parent / "uv-cache"
    run([UV, "venv", "-q", "--python", sys.executable, folder], env=uv_env(cache))
    python = folder / "bin" / "python"
    links = [arg for d in (*wheel_dirs, WHEELHOUSE) for arg in ("--find-links", d)]
    run([UV, "pip", "install", "-q", "--python", python, "--no-index", *links, "-c", LOCK, distribution],
        env=uv_env(cache), cwd=folder)
    return python


@pytest.fixture(scope="session")
def venvs(tmp_path_factory) -> dict[str, Path]:
    """Each project's fresh venv."""
    if not (WHEELHOUSE.is_dir() and any(WHEELHOUSE.glob("*.whl"))):
        pytest.fail(f"{WHEELHOUSE} is missing: run `make setup` (tools/bootstrap/venv.sh fills it)")
    tmp = tmp_path_factory.mktemp("packages")
    built = tmp / "built"
    build([p.source for p in PROJECTS], built, tmp)
    return {"built": built, **{p.name: fresh_venv(tmp / f"venv-{p.name}", p.distribution, built) for p in PROJECTS}}


def optional_modules() -> set[str]:
    """Modules of optional dependencies (``[project.optional-dependencies]``: boto3 for the S3 blob store): a
    package may import them lazily without declaring them."""
    names = set()
    for project in PROJECTS:
        extras = tomllib.loads((project.source / "pyproject.toml").read_text())["project"].get(
            "optional-dependencies", {})
        for requirement in (r for group in extras.values() for r in group):
            names.add(requirement.split("=")[0].split("[")[0].strip().lower().replace("-", "_"))
    return names


PROBE = """
import ast, importlib, importlib.util, pathlib, pkgutil, sys
package_name, optional, repo = sys.argv[1], set(sys.argv[2].split(",")), sys.argv[3]
package = importlib.import_module(package_name)
names = [m.name for m in pkgutil.walk_packages(package.__path__, package_name + ".")]
names.sort(key=lambda name: name != "shared.runner")  # it must come first (eventlet, then psycopg)
for name in names:
    if not name.endswith(".__main__"):
        importlib.import_module(name)
assert not any(p.startswith(repo) for p in sys.path), sys.path
# imports inside functions too (a lazy import of an undeclared package fails only when it runs)
missing = set()
for folder in package.__path__:
    for path in pathlib.Path(folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in optional or top in sys.modules:
                    continue
                if importlib.util.find_spec(top) is None:
                    missing.add(f"No module named {top!r} ({path.relative_to(folder)}:{node.lineno})")
if missing:
    sys.exit("\\n".join(sorted(missing)))
print(len(names), "modules")
"""


PREPARE = """
from shared.bus.topology import main as topology
from shared.platform import SERVICES
from shared.store.migrate import main as migrate
migrate([sys.argv[4]]) or topology([SERVICES[sys.argv[4]].service])
"""


def import_everything(python: Path, package: str, cwd: Path, env: dict | None = None, prepare: str = "") -> None:
    """Every module of the package imported in the fresh environment, isolated from the repository (``-I``: no
    PYTHONPATH, no current folder), and every package any of its import statements names is there. With
    ``prepare`` (a nameko service's name), then its store's tables and its queues, as make run does before the
    services start (in the same process: one start of Python fewer)."""
    code = PROBE + (PREPARE if prepare else "")
    run([python, "-I", "-c", code, package, ",".join(sorted(optional_modules())), str(REPO), prepare], cwd=cwd,
        env=env or service_env(cwd), timeout=180)


def service_env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFERA_", "PYTHON", "PIP_"))}
    return {**env, "SFERA_VAR_DIR": str(folder / "var"), "PERSISTENCE": "sqlite", "SFERA_LOG_LEVEL": "WARNING",
            **extra}


def start(project: Project, python: Path, folder: Path, amqp_uri: str) -> None:
    """Imports every module of the project in its fresh environment, then starts its process there and waits for
    its /healthz to say ok."""
    port = free_port()
    bin_dir = python.parent
    env = service_env(folder, SFERA_AMQP_URI=amqp_uri, SFERA_METRICS_PORT=str(port), SFERA_SFU_PORT=str(port),
                      SFERA_SFU_NODE=f"packaging-{uuid.uuid4().hex[:6]}")
    nameko = project.name in NAMEKO_SERVICES
    import_everything(python, project.package, folder, env, prepare=project.name if nameko else "")
    if nameko:
        argv = [python, "-I", "-m", "shared.runner", project.name]
    elif project.name == "gateway":
        argv = [bin_dir / "gunicorn", "-c", "python:gateway.gunicorn_conf", "--workers", "1", "--bind",
                f"127.0.0.1:{port}", "--no-control-socket", "gateway.app:create_app()"]
    elif project.name == "sfu":
        argv = [python, "-I", "-m", "sfu"]
    else:
        raise AssertionError(f"how does {project.name} start? (tests/packaging)")
    log = folder / "process.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(a) for a in argv], cwd=folder, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)

    def healthy() -> bool:
        if process.poll() is not None:
            raise PackagingError(f"{project.name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                return b'"ok"' in response.read()
        except OSError:
            return False

    try:
        wait_for(healthy, 60, f"{project.name} to be healthy from its own venv", interval=0.2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def amqp_uri(rabbitmq: RabbitMQ) -> str:
    rabbitmq.add_vhost("packaging")
    return rabbitmq.amqp_uri + "packaging"


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_each_package_installs_alone_and_starts(project, venvs, amqp_uri, tmp_path):
    python = venvs[project.name]
    if project.name == "shared":
        import_everything(python, project.package, tmp_path)
    else:
        start(project, python, tmp_path, amqp_uri)


def test_an_undeclared_dependency_fails(venvs, tmp_path):
    """The check can fail: the bridge imports jsonschema (lazily, in a function); built without declaring it, its
    venv lacks it and the probe says so."""
    def without_jsonschema(pyproject: Path) -> None:
        text = pyproject.read_text()
        assert '"jsonschema==' in text and 'version = "0.1.0"' in text
        lines = [line for line in text.splitlines() if '"jsonschema==' not in line]
        pyproject.write_text("\n".join(lines).replace('version = "0.1.0"', 'version = "0.1.0.post1"') + "\n")

    broken = tmp_path / "broken"
    build([REPO / "services" / "ejournal_bridge"], broken, tmp_path, edit=without_jsonschema)
    python = fresh_venv(tmp_path / "venv", "sfera-ejournal-bridge==0.1.0.post1", broken, venvs["built"])
    with pytest.raises(PackagingError, match=r"No module named 'jsonschema' \(application/"):
        import_everything(python, "ejournal_bridge", tmp_path)


def test_the_installed_bridge_finds_its_webhook_schema(venvs, tmp_path):
    """EJ-3's webhook contract ships inside the bridge's package (docs/ejournal/ links to it): an installed bridge
    validates webhooks without the repository beside it."""
    run([venvs["ejournal_bridge"], "-I", "-c",
         "from ejournal_bridge.application.inbox import webhook_validator\n"
         "assert webhook_validator().schema['title'] == 'E-journal webhook v1'"],
        cwd=tmp_path, env=service_env(tmp_path))
