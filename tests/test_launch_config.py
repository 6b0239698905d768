"""Launcher: argv + environment -> plan, without spawning anything."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from distflow.distribute import cluster_env as cluster
from distflow.launch import LaunchError, build_plan, main
from distflow.launch.config import OPTIONS, pick_free_ports
from distflow.launch.placement import fill_slots, node_launcher_args, ssh_command

REPO = Path(__file__).resolve().parents[1]


def free_base_port(count: int = 3, host: str = "127.0.0.1") -> int:
    """A base port P such that P..P+count-1 are currently free on ``host``."""
    for _ in range(50):
        base = pick_free_ports(host, 1)[0]
        if base + count > 65535:
            continue
        probes = []
        try:
            for port in range(base, base + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise AssertionError(f"no {count} consecutive free ports found on {host}")


def plan_for(argv, env=None):
    return build_plan(argv, {} if env is None else env)


def by_name(plan):
    return {p.name: p for p in plan.processes}


# ------------------------------------------------------------------ local


def test_local_plan_has_servers_and_workers_with_contract_env(tmp_path):
    port = free_base_port(2)
    plan = plan_for(["--workers", "3", "--ps", "2", "--strategy", "async",
                     "--max-staleness", "4", "--port", str(port),
                     "--checkpoint-dir", str(tmp_path / "ck"), "--checkpoint-every", "7",
                     "--heartbeat-timeout", "2.5", "train.py", "--epochs", "2"])
    names = [p.name for p in plan.processes]
    assert names == ["ps 0", "ps 1", "worker 0", "worker 1", "worker 2"]
    assert plan.ps_addrs == [f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}"]
    worker = by_name(plan)["worker 2"]
    assert worker.argv == (sys.executable, "-u", "train.py", "--epochs", "2")
    env = worker.env
    assert (env["DISTFLOW_ROLE"], env["DISTFLOW_RANK"]) == ("worker", "2")
    assert env["DISTFLOW_NUM_WORKERS"] == "3" and env["DISTFLOW_NUM_PS"] == "2"
    assert env["DISTFLOW_PS_ADDRS"] == ",".join(plan.ps_addrs)
    assert env["DISTFLOW_STRATEGY"] == "async" and env["DISTFLOW_MAX_STALENESS"] == "4"
    assert env["DISTFLOW_CHECKPOINT_DIR"] == str(tmp_path / "ck")
    assert env["DISTFLOW_CHECKPOINT_EVERY"] == "7"
    assert env["DISTFLOW_HEARTBEAT_TIMEOUT"] == "2.5"
    assert env["DISTFLOW_RENDEZVOUS_TIMEOUT"] == "600"  # the startup deadline
    assert env["DISTFLOW_KEYS"] == "" and env["DISTFLOW_RESTART"] == "0"
    assert {env[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")} == {
        "1"}
    server = by_name(plan)["ps 1"]
    assert server.argv[-2:] == ("-m", "distflow.distribute.server")
    assert (server.env["DISTFLOW_ROLE"], server.env["DISTFLOW_RANK"]) == ("ps", "1")
    assert server.env["DISTFLOW_BIND"] == "127.0.0.1"
    assert len({p.env["DISTFLOW_RUN_ID"] for p in plan.processes}) == 1


def test_every_contract_variable_from_architecture_is_produced():
    table = (REPO / "docs" / "architecture.md").read_text().split("## Environment contract")[1]
    names = set(re.findall(r"`([A-Z_]+)`", table))
    assert "DISTFLOW_PS_ADDRS" in names
    plan = plan_for(["x.py"])
    for spec in plan.processes:
        assert names <= set(spec.env), names - set(spec.env)


def test_free_ports_are_distinct_and_bindable():
    plan = plan_for(["--ps", "3", "x.py"])
    ports = [int(a.rsplit(":", 1)[1]) for a in plan.ps_addrs]
    assert len(set(ports)) == 3
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_module_mode_and_defaults():
    plan = plan_for(["-m", "pkg.train", "--lr", "0.1"])
    assert [p.name for p in plan.processes] == ["ps 0", "worker 0"]
    assert plan.processes[1].argv == (sys.executable, "-u", "-m", "pkg.train", "--lr", "0.1")
    assert plan.engine == "local" and plan.control is None


def test_ps_command_override_is_shell_split():
    plan = plan_for(["--ps-command", "python3 'my server.py' --x", "x.py"])
    assert plan.processes[0].argv == ("python3", "my server.py", "--x")


# --------------------------------------------------------- env equivalents

ENV_CASES = [
    ("--workers", "DISTFLOW_WORKERS", "3", 3),
    ("--ps", "DISTFLOW_PS", "2", 2),
    ("--strategy", "DISTFLOW_STRATEGY", "async", "async"),
    ("--max-restarts", "DISTFLOW_MAX_RESTARTS", "2", 2),
    ("--checkpoint-every", "DISTFLOW_CHECKPOINT_EVERY", "5", 5),
    ("--heartbeat-timeout", "DISTFLOW_HEARTBEAT_TIMEOUT", "1.5", 1.5),
    ("--log-dir", "DISTFLOW_LOG_DIR", "logs", "logs"),
    ("--run-id", "DISTFLOW_RUN_ID", "abc", "abc"),
    ("--grace-period", "DISTFLOW_GRACE_PERIOD", "3", 3.0),
    ("--blas-threads", "DISTFLOW_BLAS_THREADS", "2", 2),
]


@pytest.mark.parametrize("flag,var,raw,expected", ENV_CASES)
def test_env_variable_equals_flag(flag, var, raw, expected):
    from_flag = plan_for([flag, raw, "x.py"]).options
    from_env = plan_for(["x.py"], {var: raw}).options
    dest = flag.lstrip("-").replace("-", "_")
    assert getattr(from_flag, dest) == getattr(from_env, dest) == expected


def test_boolean_env_variables_and_flag_precedence():
    assert plan_for(["x.py"], {"DISTFLOW_DRY_RUN": "yes"}).options.dry_run is True
    assert plan_for(["x.py"], {"DISTFLOW_DRY_RUN": "0"}).options.dry_run is False
    plan = plan_for(["--workers", "4", "x.py"], {"DISTFLOW_WORKERS": "2"})
    assert plan.options.workers == 4
    assert plan_for(["x.py"], {"DISTFLOW_BLAS_THREADS": "3"}).processes[0].env[
        "OMP_NUM_THREADS"] == "3"


def test_every_option_has_env_variable_and_is_in_the_manual():
    from distflow.launch.cli import manual

    text = manual()
    for spec in OPTIONS:
        assert spec.env == "DISTFLOW_" + spec.dest.upper()
        assert spec.flag in text and spec.env in text, spec.flag


# ----------------------------------------------------------------- errors

ERROR_CASES = [
    (["--workers", "0", "x.py"], {}, "`--workers` must be a positive int. Received: workers=0"),
    (["x.py"], {"DISTFLOW_WORKERS": "two"},
     "`DISTFLOW_WORKERS` must be an int. Received: DISTFLOW_WORKERS='two'"),
    (["--strategy", "sync", "x.py"], {},
     "`--strategy` must be one of 'mirrored', 'async'. Received: strategy='sync'"),
    (["--nnodes", "2", "--node-rank", "2", "--master-addr", "10.0.0.1", "x.py"], {},
     "Received: node_rank=2, nnodes=2"),
    (["--nnodes", "2", "x.py"], {}, "`--master-addr` is required with --nnodes 2"),
    (["--max-staleness", "3", "x.py"], {}, "only applies to --strategy async"),
    (["--fail-fast", "--max-restarts", "1", "x.py"], {}, "cannot be combined with restarts"),
    (["--bind", "0.0.0.0", "x.py"], {}, "Refusing to bind the parameter servers"),
    (["--hosts", "a:1", "--hostfile", "f", "x.py"], {}, "either `--hosts` or `--hostfile`"),
    (["--workers", "2"], {}, "No training script given"),
    (["--wrokers", "2", "x.py"], {}, "unrecognized arguments"),
    (["--keys", "/nonexistent/keys", "x.py"], {}, "Received: keys='/nonexistent/keys'"),
]


@pytest.mark.parametrize("argv,env,message", ERROR_CASES)
def test_invalid_combinations_are_refused_with_a_clear_message(argv, env, message):
    with pytest.raises(LaunchError) as info:
        plan_for(argv, env)
    assert message in str(info.value)


def test_port_in_use_is_reported():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LaunchError) as info:
            plan_for(["--port", str(port), "x.py"])
    message = str(info.value)
    assert f"`--port` {port} is not available on 127.0.0.1" in message
    assert "ps 0 needs it" in message and f"Received: port={port}" in message


def test_insecure_or_keys_allow_a_public_bind(tmp_path):
    port = free_base_port(1, "0.0.0.0")
    assert plan_for(["--bind", "0.0.0.0", "--insecure", "--port", str(port), "x.py"]).bind == (
        "0.0.0.0")
    plan = plan_for(["--bind", "0.0.0.0", "--keys", str(tmp_path), "--port", str(port), "x.py"])
    assert plan.processes[0].env["DISTFLOW_KEYS"] == str(tmp_path)


def test_cli_prints_error_and_returns_2(capsys):
    assert main(["--workers", "0", "x.py"], {}) == 2
    assert "Received: workers=0" in capsys.readouterr().err


def test_dry_run_prints_the_plan(capsys):
    assert main(["--dry-run", "--workers", "2", "train.py"], {}) == 0
    out = capsys.readouterr().out
    assert "[ps 0] node 0" in out and "[worker 1] node 0" in out
    assert "DISTFLOW_ROLE=worker" in out and "DISTFLOW_ROLE=ps" in out
    assert "train.py" in out


# --------------------------------------------------------------- host lists


@pytest.mark.parametrize("text,expected", [
    ("node[01-03,07],gpu5", ["node01", "node02", "node03", "node07", "gpu5"]),
    ("gpu5", ["gpu5"]),
    ("r[1-2]n[8-9]", ["r1n8", "r1n9", "r2n8", "r2n9"]),
    ("10.0.0.[1-2],x[098-100]", ["10.0.0.1", "10.0.0.2", "x098", "x099", "x100"]),
])
def test_slurm_hostlist_expansion(text, expected):
    assert cluster.expand_hostlist(text) == expected


@pytest.mark.parametrize("text,message", [
    ("node[1-", "Unbalanced '['"),
    ("node1]", "Unbalanced ']'"),
    ("node[3-1]", "Descending range '3-1'"),
    ("node[a-b]", "Bad range 'a-b'"),
])
def test_slurm_hostlist_errors(text, message):
    with pytest.raises(cluster.ClusterError, match=re.escape(message)):
        cluster.expand_hostlist(text)


def test_tasks_per_node():
    assert cluster.expand_tasks_per_node("2(x3),1") == [2, 2, 2, 1]


def slurm_env(nodeid, nodelist="node[01-02]", ntasks=2):
    return {"SLURM_PROCID": str(nodeid), "SLURM_NTASKS": str(ntasks),
            "SLURM_NODEID": str(nodeid), "SLURM_STEP_NODELIST": nodelist,
            "SLURM_JOB_ID": "77", "SLURM_STEP_ID": "0"}


def test_slurm_node_share():
    port = free_base_port(2, "0.0.0.0")
    argv = ["--workers", "5", "--insecure", "--port", str(port), "x.py"]
    node0, node1 = plan_for(argv, slurm_env(0)), plan_for(argv, slurm_env(1))
    local0 = [p.name for p in node0.local_processes]
    local1 = [p.name for p in node1.local_processes]
    assert local0 == ["ps 0", "worker 0", "worker 1", "worker 2"]
    assert local1 == ["worker 3", "worker 4"]
    assert node1.ps_addrs == [f"tcp://node01:{port}"] and node1.bind == "0.0.0.0"
    assert node0.run_id == node1.run_id == "slurm-77.0"
    assert node0.control.is_coordinator and not node1.control.is_coordinator
    assert node1.control.host == "node01" and node1.control.port == port + 1


def test_slurm_node_index_follows_the_step_node_list():
    env = dict(slurm_env(3, nodelist="node[05-06]"), SLURMD_NODENAME="node06",
               SLURM_STEP_NUM_TASKS="2", SLURM_NTASKS="4")
    info = cluster.detect_slurm(env)
    assert (info.nodeid, info.ntasks, info.nodes) == (1, 2, ["node05", "node06"])
    with pytest.raises(cluster.ClusterError, match="Received: SLURM_NODEID=3"):
        cluster.detect_slurm(slurm_env(3, nodelist="node[05-06]"))


def test_slurm_errors():
    with pytest.raises(LaunchError, match="Received: SLURM_NTASKS=4 on 2 node"):
        plan_for(["--insecure", "x.py"], slurm_env(1, ntasks=4))
    with pytest.raises(LaunchError, match="Refusing to bind"):
        plan_for(["x.py"], slurm_env(1))
    assert plan_for(["--standalone", "x.py"], slurm_env(1)).engine == "local"


def mpi_env(rank, size=4, local_size=4):
    return {"OMPI_COMM_WORLD_RANK": str(rank), "OMPI_COMM_WORLD_SIZE": str(size),
            "OMPI_COMM_WORLD_LOCAL_RANK": str(rank), "OMPI_COMM_WORLD_LOCAL_SIZE":
            str(local_size)}


@pytest.mark.parametrize("rank,expected", [(0, "ps 0"), (1, "ps 1"), (2, "worker 0"),
                                           (3, "worker 1")])
def test_openmpi_rank_table(rank, expected):
    port = free_base_port(3)
    plan = plan_for(["--ps", "2", "--port", str(port), "x.py"], mpi_env(rank))
    assert [p.name for p in plan.local_processes] == [expected]
    assert plan.processes[0].env["DISTFLOW_NUM_WORKERS"] == "2"
    assert plan.ps_addrs == [f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}"]
    assert plan.control.is_coordinator == (rank == 0) and plan.control.peers == 3


def test_openmpi_errors():
    with pytest.raises(LaunchError, match="Received: OMPI_COMM_WORLD_SIZE=1, ps=1"):
        plan_for(["x.py"], mpi_env(0, size=1, local_size=1))
    with pytest.raises(LaunchError, match="pass --master-addr"):
        plan_for(["x.py"], mpi_env(3, size=4, local_size=2))


TF_CLUSTER = {"chief": ["c0:2222"], "worker": ["w0:2222", "w1:2222"], "ps": ["p0:2223"]}


@pytest.mark.parametrize("task,expected", [
    ({"type": "chief", "index": 0}, ("worker", 0)),
    ({"type": "worker", "index": 0}, ("worker", 1)),
    ({"type": "worker", "index": 1}, ("worker", 2)),
    ({"type": "ps", "index": 0}, ("ps", 0)),
])
def test_tf_config_table(task, expected):
    info = cluster.parse_tf_config(json.dumps({"cluster": TF_CLUSTER, "task": task}))
    assert (info.role, info.rank) == expected
    assert info.workers == ["c0:2222", "w0:2222", "w1:2222"] and info.ps == ["p0:2223"]


def test_tf_config_plan_for_a_worker():
    env = {"TF_CONFIG": json.dumps({"cluster": TF_CLUSTER,
                                    "task": {"type": "worker", "index": 1}})}
    plan = plan_for(["--insecure", "x.py"], env)
    assert [p.name for p in plan.local_processes] == ["worker 2"]
    assert plan.ps_addrs == ["tcp://p0:2223"] and plan.engine == "tf_config"
    assert (plan.control.host, plan.control.port) == ("c0", 2222)
    assert plan.local_processes[0].env["DISTFLOW_NUM_WORKERS"] == "3"


@pytest.mark.parametrize("text,message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "ps", "index": 0}}', 'TF_CONFIG has no "cluster" object'),
    (json.dumps({"cluster": TF_CLUSTER}), 'has no "task" object'),
    (json.dumps({"cluster": TF_CLUSTER, "task": {"type": "evaluator", "index": 0}}),
     "task type 'evaluator' is not supported"),
    (json.dumps({"cluster": TF_CLUSTER, "task": {"type": "worker", "index": 5}}),
     "task index 5 is out of range for 2 worker task(s)"),
    (json.dumps({"cluster": {"worker": "w0:1"}, "task": {"type": "worker", "index": 0}}),
     "cluster.worker must be a list of 'host:port' strings"),
])
def test_malformed_tf_config(text, message):
    with pytest.raises(LaunchError) as info:
        plan_for(["--insecure", "x.py"], {"TF_CONFIG": text})
    assert message in str(info.value) and "Received: TF_CONFIG=" in str(info.value)


# ---------------------------------------------------------- nodes and ssh


def test_nnodes_even_split_with_global_ranks():
    port = free_base_port(2, "0.0.0.0")
    argv = ["--nnodes", "2", "--master-addr", "10.9.8.7", "--workers", "3", "--insecure",
            "--port", str(port), "x.py"]
    node0 = plan_for(["--node-rank", "0", *argv])
    node1 = plan_for(["--node-rank", "1", *argv])
    assert [p.name for p in node0.local_processes] == ["ps 0", "worker 0", "worker 1"]
    assert [p.name for p in node1.local_processes] == ["worker 2"]
    assert node1.ps_addrs == [f"tcp://10.9.8.7:{port}"]
    assert node0.run_id == node1.run_id


def test_hosts_and_hostfile(tmp_path):
    assert cluster.parse_hosts("a:2,b") == [cluster.HostSlots("a", 2), cluster.HostSlots("b", 1)]
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# cluster\nnode1 slots=4\nnode2:2  # comment\n\n")
    assert cluster.read_hostfile(str(hostfile)) == [cluster.HostSlots("node1", 4),
                                                    cluster.HostSlots("node2", 2)]
    with pytest.raises(cluster.ClusterError, match="at least 1 slot"):
        cluster.parse_hosts("a:0")
    assert fill_slots(3, [2, 2]) == [2, 1] and fill_slots(4, [1, 5]) == [1, 3]
    with pytest.raises(LaunchError, match="exceeds the 3 slot"):
        plan_for(["--hosts", "a:1,b:2", "--workers", "4", "--insecure", "x.py"])


def test_ssh_driver_builds_one_node_launcher_per_host(tmp_path):
    plan = plan_for(["--hosts", "localhost:1,far.example:2", "--insecure", "--port", "31000",
                     "--log-dir", "logs", "--run-id", "r1", "train.py", "--lr", "0.1"])
    assert plan.engine == "ssh" and [p.name for p in plan.processes] == ["node 0", "node 1"]
    local, remote = plan.processes
    assert local.argv[:3] == (sys.executable, "-m", "distflow.launch")
    assert remote.argv[:4] == ("ssh", "-o", "BatchMode=yes", "far.example")
    command = remote.argv[4]
    assert command.startswith(f"cd {os.getcwd()} && exec ")
    for piece in ("--watch-stdin", "--hosts localhost:1,far.example:2", "--node-rank 1",
                  "--run-id r1", "--port 31000", "--workers 3", "--insecure",
                  f"--log-dir {os.path.abspath('logs')}", "train.py --lr 0.1"):
        assert piece in command, piece


def test_node_launcher_args_reproduce_the_node_plan():
    port = free_base_port(2, "0.0.0.0")
    driver = plan_for(["--hosts", "h0:2,h1:2", "--workers", "3", "--insecure",
                       "--port", str(port), "--strategy", "async", "x.py"])
    hosts = cluster.parse_hosts("h0:2,h1:2")
    args = node_launcher_args(driver.options, hosts, 1, driver.run_id, 3)
    node1 = plan_for(args)
    assert [p.name for p in node1.local_processes] == ["worker 2"]
    assert node1.processes[-1].env["DISTFLOW_STRATEGY"] == "async"
    assert node1.run_id == driver.run_id and node1.ps_addrs == driver.ps_addrs
    command = ssh_command(driver.options, "h1", args, env={"PYTHONPATH": "/src"})
    assert "env PYTHONPATH=/src " in command[-1]


# ---------------------------------------------------------------- structure


def _launch_imports() -> dict[str, set[str]]:
    """distflow.launch module -> the distflow.launch modules it imports (any level)."""
    import ast

    graph = {}
    for path in sorted((REPO / "distflow" / "launch").glob("*.py")):
        name = "distflow.launch." + path.stem
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m.startswith("distflow.launch.")} - {name}
    return graph


def test_the_launcher_modules_import_no_cycle():
    graph = _launch_imports()
    assert "distflow.launch.config" in graph["distflow.launch.placement"]

    def reaches(start, target, seen):
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    cycles = [m for m in graph if m != "distflow.launch.__init__" and reaches(m, m, {m})]
    assert cycles == []


def test_no_launcher_class_is_over_300_lines():
    import ast

    for path in (REPO / "distflow" / "launch").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 300, f"{path.name}: class {node.name} has {length} lines"


# ------------------------------------------------------- servers across nodes


@pytest.mark.parametrize("num_ps", [2, 3])
def test_servers_spread_one_per_node_when_ps_reaches_the_nodes(num_ps):
    """As BytePS co-locates a server with each node's workers: server i on node i mod N."""
    port = free_base_port(num_ps + 1, "0.0.0.0")
    argv = ["--workers", "4", "--ps", str(num_ps), "--insecure", "--port", str(port), "x.py"]
    node0, node1 = plan_for(argv, slurm_env(0)), plan_for(argv, slurm_env(1))
    hosts = ["node01", "node02"]
    expected = [f"tcp://{hosts[i % 2]}:{port + i}" for i in range(num_ps)]
    assert node0.ps_addrs == node1.ps_addrs == expected
    for node, plan in enumerate((node0, node1)):
        servers = [p for p in plan.processes if p.role == "ps"]
        assert [(p.node, p.host) for p in servers] == [(i % 2, hosts[i % 2])
                                                       for i in range(num_ps)]
        assert [p.name for p in plan.local_processes if p.role == "ps"] == [
            f"ps {i}" for i in range(num_ps) if i % 2 == node]
        assert all(p.env["DISTFLOW_PS_ADDRS"] == ",".join(expected) for p in plan.processes)
    assert node0.control.port == node1.control.port == port + num_ps
    assert node1.control.host == "node01"


def test_servers_stay_on_node_0_when_fewer_than_nodes_or_node_hosts_unknown():
    port = free_base_port(3, "0.0.0.0")
    fewer = plan_for(["--workers", "3", "--ps", "1", "--insecure", "--port", str(port),
                      "x.py"], slurm_env(1, "node[01-03]", 3))
    assert fewer.ps_addrs == [f"tcp://node01:{port}"]
    flags = plan_for(["--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1",
                      "--ps", "2", "--insecure", "--port", str(port), "x.py"])
    assert flags.ps_addrs == [f"tcp://10.0.0.1:{port}", f"tcp://10.0.0.1:{port + 1}"]
    assert not any(p.local for p in flags.processes if p.role == "ps")


def test_hosts_plan_spreads_servers_over_the_listed_hosts():
    port = free_base_port(3, "0.0.0.0")
    node1 = plan_for(["--hosts", "h0:2,h1:2", "--node-rank", "1", "--ps", "2", "--insecure",
                      "--port", str(port), "x.py"])
    assert node1.ps_addrs == [f"tcp://h0:{port}", f"tcp://h1:{port + 1}"]
    assert [p.name for p in node1.local_processes] == ["ps 1", "worker 2", "worker 3"]


def test_ssh_command_carries_the_interpreter_and_its_environment():
    """A remote login shell has neither this virtual environment nor the DISTFLOW_* set here."""
    plan = plan_for(["--hosts", "localhost:1,far.example:1", "--insecure", "--run-id", "r1",
                     "train.py"])
    env = {"DISTFLOW_DATA": "/data/my sets", "DISTFLOW_REQUEST_TIMEOUT": "90",
           "DISTFLOW_HOSTFILE": "ignored-hosts", "DISTFLOW_WORKERS": "7",
           "VIRTUAL_ENV": "/opt/venv", "PYTHONPATH": "/src", "HOME": "/home/me",
           "SECRET_TOKEN": "x"}
    args = node_launcher_args(plan.options, cluster.parse_hosts("localhost:1,far.example:1"),
                              1, "r1", 2)
    command = ssh_command(plan.options, "far.example", args, env=env)[-1]
    python = os.path.abspath(sys.executable)
    prefix = (f"cd {os.getcwd()} && exec env DISTFLOW_DATA='/data/my sets' "
              "DISTFLOW_REQUEST_TIMEOUT=90 PYTHONPATH=/src VIRTUAL_ENV=/opt/venv "
              f"PATH={os.path.dirname(python)}:\"$PATH\" {python} -m distflow.launch "
              "--watch-stdin ")
    assert command.startswith(prefix), command
    for absent in ("DISTFLOW_HOSTFILE", "DISTFLOW_WORKERS", "HOME", "SECRET_TOKEN"):
        assert absent not in command  # options travel as flags; other variables stay here
