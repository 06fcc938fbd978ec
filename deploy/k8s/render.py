"""Renders a kustomize overlay of deploy/k8s offline, in Python (kustomize is not installed here; `kubectl
kustomize deploy/k8s/overlays/<name>` gives the same objects where it is). The subset our overlays use:
resources (files, or folders with a kustomization.yaml), namespace, images (newName/newTag/digest),
replicas, and patches as strategic-merge patches (maps merge, lists of named items merge by name, a null
removes a key, `$patch: delete` removes the object).

    .venv/bin/python deploy/k8s/render.py production > sfera.yaml
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass"}


def _key(obj: dict) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i
                                                                   for i in base + patch)):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            at = next((n for n, old in enumerate(out) if old["name"] == item["name"]), None)
            if item.get("$patch") == "delete":
                if at is not None:
                    out.pop(at)
            elif at is None:
                out.append(copy.deepcopy(item))
            else:
                out[at] = merge(out[at], item)
        return out
    return copy.deepcopy(patch)


def _images(obj: dict, images: list[dict]) -> None:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name = container["image"].split("@")[0].rsplit(":", 1)[0] if ":" in container["image"].split("/")[-1] \
            else container["image"].split("@")[0]
        for image in images:
            if image["name"] == name:
                new = image.get("newName", name)
                if "digest" in image:
                    container["image"] = f"{new}@{image['digest']}"
                else:
                    container["image"] = f"{new}:{image.get('newTag', 'latest')}"


def render(directory: Path) -> list[dict]:
    directory = Path(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch in kustomization.get("patches", []):
        for doc in yaml.safe_load_all((directory / patch["path"]).read_text()):
            matches = [n for n, obj in enumerate(objects) if _key(obj) == _key(doc)]
            if len(matches) != 1:
                raise ValueError(f"{directory / patch['path']}: patch of {_key(doc)} matches {len(matches)} objects")
            if doc.get("$patch") == "delete":
                objects.pop(matches[0])
            else:
                objects[matches[0]] = merge(objects[matches[0]], doc)
    for replicas in kustomization.get("replicas", []):
        found = [o for o in objects if o["metadata"]["name"] == replicas["name"] and "replicas" in o.get("spec", {})]
        if not found:
            raise ValueError(f"{directory}: replicas of {replicas['name']}: no such object")
        for obj in found:
            obj["spec"]["replicas"] = replicas["count"]
    for obj in objects:
        _images(obj, kustomization.get("images", []))
        if "namespace" in kustomization and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = kustomization["namespace"]
    keys = [_key(o) for o in objects]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise ValueError(f"{directory}: the same object twice: {sorted(duplicates)}")
    return objects


if __name__ == "__main__":
    print(yaml.safe_dump_all(render(HERE / "overlays" / sys.argv[1]), sort_keys=False), end="")
