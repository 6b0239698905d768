"""The shipped cluster recipes (launch/, README) and the launcher facts they rely on.

The recipes themselves run on real engines in tests/test_engines.py; these tests
check what can be checked without an engine: resources, run hygiene, the ports of
jobs sharing a node, node prefixes, the mpirun line's environment.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from distflow.launch import build_plan

ROOT = Path(__file__).resolve().parents[1]
SBATCH = (ROOT / "launch" / "distflow.sbatch").read_text()


def slurm_env(job_id: str, nodeid: int = 0, nodelist: str = "localhost") -> dict[str, str]:
    nnodes = 2 if "," in nodelist or "[" in nodelist else 1
    return {"SLURM_PROCID": str(nodeid), "SLURM_NTASKS": str(nnodes),
            "SLURM_NODEID": str(nodeid), "SLURM_STEP_NODELIST": nodelist,
            "SLURM_JOB_ID": job_id, "SLURM_STEP_ID": "0"}


def _ports(plan) -> set[int]:
    ports = {int(addr.rsplit(":", 1)[1]) for addr in plan.ps_addrs}
    return ports | ({plan.control.port} if plan.control else set())


# ------------------------------------------------------------------ Slurm


def test_run_outputs_and_keys_are_git_ignored():
    paths = ["keys/server.key_secret", "keys/clients/worker.key", "runs/distflow/logs/x.log",
             "distflow-1234.out", "launch/keys/server.key", "launch/runs/a"]
    found = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True,
                           text=True).stdout.split()
    assert found == paths


def test_the_batch_script_asks_for_resources_a_small_partition_has():
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", SBATCH, flags=re.M))
    assert int(directives.get("nodes", "1")) == 1
    assert int(directives.get("cpus-per-task", "1")) <= 2
    assert "--nodes=2" in SBATCH and "--cpus-per-task" in SBATCH  # the scaled form documented


def test_the_run_directory_is_named_so_a_resubmitted_job_resumes():
    run_dir = re.search(r"^RUN_DIR=(.*)$", SBATCH, flags=re.M).group(1)
    assert "SLURM_JOB_ID" not in run_dir and "SLURM_JOB_NAME" in run_dir


def test_two_slurm_jobs_on_one_node_get_disjoint_ports():
    argv = ["--workers", "2", "--ps", "2", "x.py"]
    first = build_plan(argv, slurm_env("1041"))
    second = build_plan(argv, slurm_env("1042"))
    assert len(_ports(first)) == len(_ports(second)) == 2
    assert not _ports(first) & _ports(second)
    for port in _ports(first) | _ports(second):
        assert 20000 <= port < 32768  # below Linux's ephemeral range


def test_the_slurm_ports_of_every_node_of_a_job_agree():
    argv = ["--workers", "2", "--insecure", "x.py"]
    node0 = build_plan(argv, slurm_env("9001", 0, "localhost,127.0.0.1"))
    node1 = build_plan(argv, slurm_env("9001", 1, "localhost,127.0.0.1"))
    assert node0.ps_addrs == node1.ps_addrs and node0.control.port == node1.control.port
    assert node0.control.port == _ports(node0).difference({node0.control.port}).pop() + 1


def test_an_explicit_port_still_wins_under_slurm():
    plan = build_plan(["--port", "29400", "--workers", "1", "x.py"], slurm_env("5"))
    assert plan.ps_addrs == ["tcp://localhost:29400"]


def test_a_multi_node_slurm_launcher_prefixes_its_output_with_its_node():
    argv = ["--workers", "2", "--insecure", "x.py"]
    node1 = build_plan(argv, slurm_env("9002", 1, "localhost,127.0.0.1"))
    single = build_plan(argv, slurm_env("9003"))
    assert node1.output_prefix == "[node 1] "
    assert single.output_prefix == ""


# ------------------------------------------------------------------ mpirun


def _readme_block(heading: str) -> str:
    text = (ROOT / "launch" / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_mpirun_recipe_passes_the_data_and_the_environment_to_remote_ranks():
    line = _readme_block("OpenMPI").replace("\\\n", " ")
    assert "mpirun" in line
    assert "-x DISTFLOW_DATA" in line
    # remote ranks get the login PATH: the venv's bin must come along, or an absolute python
    assert "-x PATH" in line or re.search(r"\s/\S*python3?\s+-m distflow.launch", line)
