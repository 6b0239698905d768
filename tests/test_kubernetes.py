"""The Kubernetes recipes: the manifests against the API's and the TFJob CRD's schemas,
the README's secret and image recipe, and the pods emulated from the manifests' own
environment.

Schemas: the Kubernetes API's come with the `kubernetes-validate` package (the test
extra); the TFJob CRD's is vendored in tests/schemas/ (see its README). The emulation
reads the YAML and runs, for every pod, its init containers and then its container's
command as a separate process, with the pod's environment and volumes. What a cluster
would provide differently, and only that, is substituted: `python` is this
interpreter and the image's /app is this checkout, the headless Service's pod names
resolve to 127.0.0.1 and, as every pod shares this host's network, each gets its own
port (the TF_CONFIG the operator writes, or DISTFLOW_PORT); volumes are directories
(a secret projected through the manifest's `items`, emptyDirs empty, the data
download served from the cache path the init container fills); and the example's
`--epochs 5` is the short probe script every engine test runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from engines import PROBE_STEPS, REPO, assert_trained_through_servers, free_base_port, write_probe

LAUNCH = REPO / "launch"
K8S_VERSION = "1.37.0"
IMAGE = "distflow:latest"
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
# what kubelet injects for a Service named `distflow` (cluster IP 10.96.12.34, port 80)
SERVICE_LINKS = {"DISTFLOW_SERVICE_HOST": "10.96.12.34", "DISTFLOW_SERVICE_PORT": "80",
                 "DISTFLOW_PORT": "tcp://10.96.12.34:80",
                 "DISTFLOW_PORT_80_TCP": "tcp://10.96.12.34:80"}


def manifests(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((LAUNCH / name).read_text()) if doc]


def readme_kubernetes_commands() -> list[str]:
    text = (LAUNCH / "README.md").read_text()
    section = text.split("## Kubernetes\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [" ".join(line.split("#")[0].split()) for line in block.splitlines() if line.strip()]


def readme_command(program: str) -> list[str]:
    found = [c for c in readme_kubernetes_commands() if c.startswith(program)]
    assert found, f"launch/README.md's Kubernetes section has no `{program}` line"
    return shlex.split(found[0])


def pod_specs(name: str) -> dict[str, dict]:
    """Role -> (replicas, pod spec) of a manifest's pods."""
    out = {}
    for doc in manifests(name):
        if doc["kind"] == "Job":
            out["job"] = (doc["spec"]["completions"], doc["spec"]["template"]["spec"])
        elif doc["kind"] == "TFJob":
            for role, replica in doc["spec"]["tfReplicaSpecs"].items():
                # the operator sets the pods' restart policy from the replica's
                spec = dict(replica["template"]["spec"], restartPolicy=replica["restartPolicy"])
                out[role] = (replica.get("replicas", 1), spec)
    return out


# ------------------------------------------------------------------ schemas


@pytest.mark.parametrize("name", ["kubernetes.yaml", "tfjob.yaml"])
def test_the_manifests_validate_against_the_kubernetes_schemas(name):
    for doc in manifests(name):
        if doc["kind"] == "TFJob":
            schema = json.loads((REPO / "tests" / "schemas" / "tfjob-v1.json").read_text())
            jsonschema.validate(doc, schema)
            for replica in doc["spec"]["tfReplicaSpecs"].values():  # the pods, strictly
                pod = {"apiVersion": "v1", "kind": "PodTemplate",
                       "metadata": {"name": "distflow"}, "template": replica["template"]}
                kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validation_catches_a_wrong_manifest():
    job = next(d for d in manifests("kubernetes.yaml") if d["kind"] == "Job")
    job["spec"]["template"]["spec"]["restartPolicy"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    tfjob = manifests("tfjob.yaml")[0]
    tfjob["spec"]["tfReplicaSpecs"]["PS"]["replicas"] = "one"
    schema = json.loads((REPO / "tests" / "schemas" / "tfjob-v1.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tfjob, schema)


# ------------------------------------------------------------- the recipe


@pytest.mark.parametrize("name", ["kubernetes.yaml", "tfjob.yaml"])
def test_every_pod_is_set_up_for_the_launcher(name):
    for _, spec in pod_specs(name).values():
        assert spec["enableServiceLinks"] is False
        assert spec["restartPolicy"] == "Never"
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert int(env["DISTFLOW_MAX_RESTARTS"]) >= 1
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert env["DISTFLOW_CHECKPOINT_DIR"] in mounts
        assert any(env["DISTFLOW_DATA"].startswith(m) for m in mounts)
        assert [c["image"] for c in spec["initContainers"]] == [IMAGE]
        assert container["image"] == IMAGE


def test_the_image_is_the_dockerfiles_slim_non_root_install():
    dockerfile = (REPO / "Dockerfile").read_text()
    # The base is a build argument whose default is the official slim Python image.
    base = re.search(r"^ARG BASE=(\S+)\s*$", dockerfile, flags=re.M)
    assert base and re.fullmatch(r"python:[\d.]+-slim", base.group(1)), base
    assert re.search(r"^FROM \$\{BASE\}\s*$", dockerfile, flags=re.M)
    assert re.search(r"^\s*RUN pip install \.(\s|$)", dockerfile, flags=re.M)
    user = re.findall(r"^USER (\S+)", dockerfile, flags=re.M)
    assert user and user[-1] not in ("root", "0")
    assert readme_command("docker") == ["docker", "build", "-t", IMAGE, "."]
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M)
    for sources in copied:
        for source in sources.split():
            assert (REPO / source).exists(), source
    assert "examples" in " ".join(copied)  # the manifests' script is in the image


def test_the_logs_line_follows_every_pod_with_a_prefix():
    argv = readme_command("kubectl logs")
    assert "--prefix" in argv and "-l" in argv
    assert argv[argv.index("-l") + 1] == "job-name=distflow"
    assert not any(a.startswith("job/") for a in argv)


def kubectl_create_secret(argv: list[str], cwd: Path) -> dict[str, bytes]:
    """What `kubectl create secret generic NAME --from-file=...` stores: key -> bytes.

    As kubectl does, `--from-file=DIR` stores the regular files directly in DIR under
    their names (it does not descend), `--from-file=KEY=PATH` one file under KEY.
    """
    assert argv[:4] == ["kubectl", "create", "secret", "generic"], argv
    data: dict[str, bytes] = {}
    for arg in argv[5:]:
        source = arg.removeprefix("--from-file=")
        key, _, path = source.rpartition("=")
        path = cwd / path
        if path.is_dir():
            data.update({f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file()})
        else:
            data[key or path.name] = path.read_bytes()
    return data


def project_secret(volume: dict, data: dict[str, bytes], target: Path) -> None:
    """A secret volume as kubelet lays it out: the `items` (or every key) as files."""
    secret = volume["secret"]
    items = secret.get("items") or [{"key": k, "path": k} for k in data]
    for item in items:
        assert item["key"] in data, f"the secret has no key {item['key']!r}: {sorted(data)}"
        path = target / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[item["key"]])
        path.chmod(item.get("mode", secret.get("defaultMode", 0o644)))


# ------------------------------------------------------------- emulation


class Pod:
    """One pod of a manifest run on this machine (see the module docstring)."""

    def __init__(self, name: str, spec: dict, root: Path, secret: dict[str, bytes]) -> None:
        self.name, self.spec, self.dir = name, spec, root / name
        self.volumes: dict[str, Path] = {}
        for volume in spec.get("volumes", []):
            self.volumes[volume["name"]] = self.dir / "volumes" / volume["name"]
            self.volumes[volume["name"]].mkdir(parents=True)
            if "secret" in volume:
                project_secret(volume, secret, self.volumes[volume["name"]])

    def local_path(self, container: dict, value: str) -> str:
        """`value` with a container mount path replaced by the volume's directory."""
        for mount in container.get("volumeMounts", []):
            path = mount["mountPath"]
            if value == path or value.startswith(path + "/"):
                return str(self.volumes[mount["name"]]) + value[len(path):]
        return value

    def env(self, container: dict, index: int, extra: dict[str, str]) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.dir), "LANG": "C.UTF-8"}
        if self.spec.get("enableServiceLinks", True):
            env.update(SERVICE_LINKS)  # kubelet's default; explicit variables win below
        for item in container.get("env", []):
            if "valueFrom" in item:
                assert item["valueFrom"]["fieldRef"]["fieldPath"] == COMPLETION_INDEX, item
                env[item["name"]] = str(index)
            else:
                env[item["name"]] = self.local_path(container, item["value"])
        env.update(extra)
        return env

    def argv(self, container: dict, probe: Path) -> list[str]:
        command = [sys.executable if a == "python" else self.local_path(container, a)
                   for a in container["command"]]
        script = "examples/fashion_mnist_mlp.py"
        if script in command:
            command = command[:command.index(script)] + [str(probe)]
        return command

    def run_init_containers(self, index: int) -> None:
        for container in self.spec.get("initContainers", []):
            env = self.env(container, index, {})
            # the download, served from where it would land ($HOME/.distflow/datasets)
            cache = Path(env["HOME"]) / ".distflow" / "datasets" / "fashion-mnist"
            cache.parent.mkdir(parents=True, exist_ok=True)
            if not cache.exists():
                cache.symlink_to(Path(os.environ.get(
                    "DISTFLOW_DATA", REPO.parent / "shared" / "data")) / "fashion-mnist")
            done = subprocess.run(self.argv(container, Path()), cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"{self.name} init {container['name']}: {done.stderr}"

    def start(self, index: int, extra: dict[str, str], probe: Path) -> subprocess.Popen:
        self.run_init_containers(index)
        (container,) = self.spec["containers"]
        log = open(self.dir / "log", "w+")  # noqa: SIM115
        return subprocess.Popen(self.argv(container, probe), cwd=REPO,
                                env=self.env(container, index, extra), stdout=log,
                                stderr=subprocess.STDOUT, text=True)


def run_pods(pods: list[tuple[Pod, int, dict[str, str]]], probe: Path) -> str:
    """Starts every pod, waits for all; returns their logs, each line prefixed by its pod."""
    procs = [(pod, pod.start(index, extra, probe)) for pod, index, extra in pods]
    codes = {}
    for pod, proc in procs:
        try:
            codes[pod.name] = proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
    logs = "\n".join((pod.dir / "log").read_text() for pod, _ in procs)
    assert set(codes.values()) == {0}, f"{codes}\n{logs[-5000:]}"
    return logs


def secret_from_readme(tmp_path: Path) -> dict[str, bytes]:
    """Keys generated as the README says, stored as its `kubectl create secret` line does."""
    subprocess.run([sys.executable, "-m", "distflow.keys", "generate", "keys"], cwd=tmp_path,
                   check=True, capture_output=True)
    return kubectl_create_secret(readme_command("kubectl create secret"), tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_indexed_job_pods_train_through_the_servers(tmp_path):
    secret = secret_from_readme(tmp_path)
    completions, spec = pod_specs("kubernetes.yaml")["job"]
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    dns = {"DISTFLOW_MASTER_ADDR": "127.0.0.1",  # distflow-0.distflow, the headless Service
           "DISTFLOW_PORT": str(free_base_port(int(env["DISTFLOW_PS"]) + 1))}
    pods = [(Pod(f"distflow-{k}", spec, tmp_path, secret), k, dns) for k in range(completions)]
    logs = run_pods(pods, write_probe(tmp_path))
    assert_trained_through_servers(logs, workers=int(env["DISTFLOW_WORKERS"]))
    assert list((pods[0][0].volumes["checkpoints"]).iterdir()), "no server checkpoint"


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_tfjob_pods_train_through_the_servers(tmp_path):
    secret = secret_from_readme(tmp_path)
    roles = pod_specs("tfjob.yaml")
    names = [(role, i) for role in ("Chief", "Worker", "PS") for i in range(roles[role][0])]
    base = free_base_port(len(names))
    cluster: dict[str, list[str]] = {}
    for k, (role, _) in enumerate(names):  # the operator's TF_CONFIG; one port per pod here
        cluster.setdefault(role.lower(), []).append(f"127.0.0.1:{base + k}")
    pods = []
    for role, i in names:
        tf_config = {"cluster": cluster, "task": {"type": role.lower(), "index": i}}
        pods.append((Pod(f"distflow-{role.lower()}-{i}", roles[role][1], tmp_path, secret), i,
                     {"TF_CONFIG": json.dumps(tf_config)}))
    logs = run_pods(pods, write_probe(tmp_path))
    workers = roles["Chief"][0] + roles["Worker"][0]
    assert_trained_through_servers(logs, workers=workers, steps=PROBE_STEPS)


def test_the_readme_secret_mounts_back_as_the_launchers_key_directory(tmp_path):
    secret = secret_from_readme(tmp_path)
    _, spec = pod_specs("kubernetes.yaml")["job"]
    pod = Pod("distflow-0", spec, tmp_path, secret)
    keys = pod.volumes["keys"]
    for name in ("server.key", "server.key_secret", "clients/client-0.key",
                 "clients/client-0.key_secret"):
        assert (keys / name).read_bytes() == (tmp_path / "keys" / name).read_bytes()
    listed = subprocess.run([sys.executable, "-m", "distflow.keys", "list", str(keys)],
                            capture_output=True, text=True, check=True).stdout
    assert "allow-list (1 client key(s))" in listed
