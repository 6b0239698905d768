"""The process contract (distflow/process_env.py): every DISTFLOW_* variable declared once."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from distflow import process_env
from distflow.launch import main

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "distflow"
DECLARED = {v.name for v in process_env.VARIABLES}

# What kubelet injects into every container when a Service named `distflow` (port 80)
# exists in the namespace and the pod spec does not say `enableServiceLinks: false`.
KUBELET_SERVICE_LINKS = {
    "DISTFLOW_PORT": "tcp://10.96.12.34:80",
    "DISTFLOW_PORT_80_TCP": "tcp://10.96.12.34:80",
    "DISTFLOW_PORT_80_TCP_PROTO": "tcp",
    "DISTFLOW_PORT_80_TCP_PORT": "80",
    "DISTFLOW_PORT_80_TCP_ADDR": "10.96.12.34",
    "DISTFLOW_SERVICE_HOST": "10.96.12.34",
    "DISTFLOW_SERVICE_PORT": "80",
}


# ------------------------------------------------------ the declaration is complete


def _literals_outside_the_contract() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        for name in re.findall(r"DISTFLOW_[A-Z0-9_]+", path.read_text(encoding="utf-8")):
            found.setdefault(name.rstrip("_"), []).append(relative)
    return found


def test_every_distflow_variable_named_in_the_package_is_declared():
    # kubelet's service-link names (DISTFLOW_SERVICE_HOST, ...) are named in the docs
    # that explain them; they are not distflow's.
    undeclared = {name: files for name, files in _literals_outside_the_contract().items()
                  if name != "DISTFLOW" and name not in DECLARED
                  and not process_env.is_service_link(name, "")}
    assert not undeclared, f"declare these in distflow/process_env.py: {undeclared}"


def test_the_server_reads_its_variables_through_the_contract():
    text = (PACKAGE / "distribute" / "server" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r"DISTFLOW_[A-Z0-9_]*[A-Z0-9]", text))
    assert "DISTFLOW_STATS_INTERVAL" in names and "environ.get" not in text
    assert names <= DECLARED, names - DECLARED


def test_the_contract_is_standard_library_only():
    tree = ast.parse((PACKAGE / "process_env.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_every_declaration_is_complete():
    kinds = {"int", "float", "str", "path", "list", "bool", "switch"}
    for var in process_env.VARIABLES:
        assert var.name.startswith("DISTFLOW_") and var.kind in kinds, var
        assert var.meaning and var.read_by, var.name
        assert var.bound in ("", "positive", "non-negative"), var.name
        if var.default is not None and var.kind in ("int", "float"):
            assert process_env.parse(var.name, str(var.default)) == var.default


# ------------------------------------------------------------------ the docs


def _readme_table() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("<!-- process_env table -->")[1].split("<!-- end -->")[0].strip()


def test_readme_table_is_the_printed_declaration():
    printed = subprocess.run([sys.executable, "-m", "distflow.process_env"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.strip()
    assert _readme_table() == printed, "regenerate it: python -m distflow.process_env"


def test_readme_documents_every_declared_variable_and_declares_every_documented_one():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    documented = {n.rstrip("_") for n in re.findall(r"DISTFLOW_[A-Z0-9_]+", readme)}
    assert DECLARED - documented == set(), "undocumented"
    assert documented - DECLARED == set(), "documented but not declared"


def test_architecture_lists_exactly_the_variables_of_every_child():
    table = (REPO / "docs" / "architecture.md").read_text().split(
        "## Environment contract")[1].split("\n## ")[0]
    listed = set(re.findall(r"`(DISTFLOW_[A-Z_]+)`", table))
    assert listed == {v.name for v in process_env.child_variables()}


def test_the_manual_gives_each_option_its_declared_default():
    from distflow.launch.cli import manual

    rows = {re.search(r"DISTFLOW_\w+", line).group(): line for line in manual().splitlines()
            if line.strip().startswith("--") and "DISTFLOW_" in line}
    for var in process_env.launcher_options():
        shown = var.option_default
        if shown is None or isinstance(shown, bool):
            continue
        assert re.search(rf"\s{re.escape(process_env.encode({var.name: shown})[var.name])}"
                         rf"(\s|$)", rows[var.name]), rows[var.name]


# ------------------------------------------------------------ reading, writing


def test_read_types_defaults_and_blank():
    env = {"DISTFLOW_HEARTBEAT_TIMEOUT": "2.5", "DISTFLOW_MAX_STALENESS": "",
           "DISTFLOW_PS_ADDRS": " tcp://a:1, tcp://b:2 ,", "DISTFLOW_OFFLINE": "please"}
    assert process_env.read("DISTFLOW_HEARTBEAT_TIMEOUT", env) == 2.5
    assert process_env.read("DISTFLOW_MAX_STALENESS", env) is None
    assert process_env.read("DISTFLOW_CHECKPOINT_EVERY", env) == 100
    assert process_env.read("DISTFLOW_PS_ADDRS", env) == ("tcp://a:1", "tcp://b:2")
    assert process_env.read("DISTFLOW_OFFLINE", env) is True
    assert process_env.read("DISTFLOW_OFFLINE", {"DISTFLOW_OFFLINE": "off"}) is False


@pytest.mark.parametrize("name,raw,message", [
    ("DISTFLOW_SEED", "-1", "DISTFLOW_SEED must be a non-negative int. Received: '-1'"),
    ("DISTFLOW_NUM_WORKERS", "two", "DISTFLOW_NUM_WORKERS must be an int. Received: 'two'"),
    ("DISTFLOW_STRATEGY", "ring", "must be one of 'mirrored', 'async'. Received: 'ring'"),
    ("DISTFLOW_TTY", "maybe", "must be 1/0, true/false, yes/no or on/off"),
    ("DISTFLOW_HEARTBEAT_TIMEOUT", "0", "or unset it for the default (30)"),
])
def test_bad_values_are_refused_quoting_the_value_and_the_fix(name, raw, message):
    with pytest.raises(process_env.ProcessEnvError) as info:
        process_env.read(name, {name: raw})
    assert message in str(info.value) and "Set it to" in str(info.value)


def test_an_undeclared_name_is_refused_naming_the_contract():
    with pytest.raises(KeyError, match="process_env.py"):
        process_env.read("DISTFLOW_WROKERS", {})


def test_encode_writes_what_read_reads(tmp_path):
    values = {"DISTFLOW_HEARTBEAT_TIMEOUT": 2.5, "DISTFLOW_MAX_STALENESS": None,
              "DISTFLOW_KEYS": os.path.relpath(tmp_path), "DISTFLOW_PS_ADDRS": ["tcp://a:1"],
              "DISTFLOW_TTY": True, "DISTFLOW_CHECKPOINT_EVERY": 7}
    env = process_env.encode(values)
    assert env == {"DISTFLOW_HEARTBEAT_TIMEOUT": "2.5", "DISTFLOW_MAX_STALENESS": "",
                   "DISTFLOW_KEYS": str(tmp_path), "DISTFLOW_PS_ADDRS": "tcp://a:1",
                   "DISTFLOW_TTY": "1", "DISTFLOW_CHECKPOINT_EVERY": "7"}
    assert process_env.read("DISTFLOW_PS_ADDRS", env) == ("tcp://a:1",)
    assert process_env.read("DISTFLOW_TTY", env) is True


# ------------------------------------------------- Kubernetes service links (issue 18)


def test_a_kubernetes_service_link_is_recognised_and_ignored():
    assert process_env.is_service_link("DISTFLOW_PORT", "tcp://10.96.12.34:80")
    assert not process_env.is_service_link("DISTFLOW_PORT", "29400")
    assert set(process_env.service_links(KUBELET_SERVICE_LINKS)) == set(KUBELET_SERVICE_LINKS)
    assert process_env.read("DISTFLOW_PORT", KUBELET_SERVICE_LINKS) is None
    note = process_env.service_link_note(KUBELET_SERVICE_LINKS)
    assert "Service named 'distflow'" in note and "enableServiceLinks: false" in note
    assert "DISTFLOW_PORT=tcp://10.96.12.34:80" in note and "rename the Service" in note
    assert process_env.service_link_note({"DISTFLOW_PORT": "29400"}) is None


def test_the_launcher_starts_under_kubernetes_service_links_and_says_why(capsys):
    # Used to refuse to start: "`DISTFLOW_PORT` must be an int".
    assert main(["--dry-run", "--workers", "2", "train.py"], KUBELET_SERVICE_LINKS) == 0
    captured = capsys.readouterr()
    assert "[worker 1] node 0" in captured.out
    assert "distflow.launch: warning: ignoring Kubernetes service-link" in captured.err
    assert "enableServiceLinks: false" in captured.err


def test_a_launcher_process_with_service_links_and_a_real_port_uses_the_port(tmp_path):
    from test_launch_config import free_base_port
    from test_launch_supervisor import clean_env

    port = free_base_port(1)
    env = clean_env(tmp_path, **KUBELET_SERVICE_LINKS)
    result = subprocess.run([sys.executable, "-m", "distflow.launch", "--dry-run", "--port",
                             str(port), "train.py"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"DISTFLOW_PS_ADDRS=tcp://127.0.0.1:{port}" in result.stdout
    assert "Service named 'distflow'" in result.stderr
