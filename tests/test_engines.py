"""The shipped recipes on real engines: Slurm, OpenMPI's mpirun and ssh.

`.ci/run` installs Debian's slurm-wlm, munge, openmpi-bin and openssh-server; these
tests start private daemons on loopback (tests/engines.py), run each recipe as
launch/README.md gives it, with only the site-specific substitutions it documents,
and assert that training went through the servers: every worker ends with the same
weights and the server stopped at the number of synchronous steps.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from engines import (
    PROBE_STEPS,
    REPO,
    SlurmCluster,
    Sshd,
    assert_trained_through_servers,
    free_base_port,
    require,
    running,
    this_machines_address,
    write_probe,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
SBATCH = str(REPO / "launch" / "distflow.sbatch")


def readme_command(heading: str, replacements: dict[str, str]) -> list[str]:
    """The first command of a section of launch/README.md with the site-specific parts
    the README names replaced (each must be found), as argv."""
    text = (REPO / "launch" / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    command = section.split("```sh\n", 1)[1].split("```", 1)[0].split("\n# ")[0]
    command = " ".join(command.replace("\\\n", " ").split())
    for old, new in replacements.items():
        assert old in command, f"the README's command no longer has {old!r}: {command}"
        command = command.replace(old, new)
    return shlex.split(command)


def generate_keys(cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "distflow.keys", "generate", "keys"], cwd=cwd,
                   check=True, capture_output=True)


def submit_env(cluster_env: dict[str, str]) -> dict[str, str]:
    """The submitting shell: the virtual environment active, the data set named.

    DISTFLOW_MASTER_ADDR is the documented substitution for node names that do not
    resolve (the test cluster's nodes n1, n2 are both this machine, 127.0.0.1).
    """
    env = {k: v for k, v in cluster_env.items()
           if not k.startswith(("DISTFLOW_", "SLURM_", "OMPI_")) or k == "SLURM_CONF"}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["DISTFLOW_DATA"] = os.environ.get("DISTFLOW_DATA", str(REPO.parent / "shared" / "data"))
    env["DISTFLOW_MASTER_ADDR"] = "127.0.0.1"
    return env


def sbatch(cluster, cwd: Path, *options: str) -> str:
    """`sbatch [options] launch/distflow.sbatch probe_train.py` from `cwd`; the job id."""
    probe = write_probe(cwd)
    out = cluster.run(["sbatch", "--parsable", *options, SBATCH, str(probe)], cwd=cwd,
                      env=submit_env(cluster.env)).stdout
    return out.strip().split(";")[0]


def job_output(cwd: Path, job_id: str) -> str:
    return (cwd / f"distflow-{job_id}.out").read_text()


def job_times(cluster, job_id: str) -> tuple[datetime, datetime]:
    out = cluster.run(["scontrol", "show", "job", job_id]).stdout
    start, end = (re.search(rf"{key}=(\S+)", out).group(1) for key in ("StartTime", "EndTime"))
    return datetime.fromisoformat(start), datetime.fromisoformat(end)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    require("slurmctld", "slurmd", "sbatch", "munged")
    with running(SlurmCluster(tmp_path_factory.mktemp("slurm"), nodes=2)) as cluster:
        yield cluster


def test_sbatch_on_two_nodes_trains_through_the_servers_with_node_prefixes(slurm, tmp_path):
    job = sbatch(slurm, tmp_path, "--nodes=2")
    state = slurm.wait_job(job)
    output = job_output(tmp_path, job)
    assert state == "COMPLETED", output[-4000:]
    assert_trained_through_servers(output, workers=4)
    assert re.search(r"^\[node 0\] \[worker 0\] final", output, flags=re.M), output[-3000:]
    assert re.search(r"^\[node 1\] \[worker [23]\] final", output, flags=re.M), output[-3000:]
    assert (tmp_path / "runs" / "distflow" / "checkpoints").is_dir()
    assert (tmp_path / "keys" / "clients").is_dir()


def test_two_jobs_sharing_a_node_both_complete(slurm, tmp_path):
    options = ("--nodelist=n1", "--cpus-per-task=1", "--export=ALL,WORKERS_PER_NODE=2")
    first = sbatch(slurm, tmp_path, "--job-name=first", *options)
    second = sbatch(slurm, tmp_path, "--job-name=second", *options)
    states = [slurm.wait_job(first), slurm.wait_job(second)]
    outputs = [job_output(tmp_path, first), job_output(tmp_path, second)]
    assert states == ["COMPLETED", "COMPLETED"], outputs[0][-3000:] + outputs[1][-3000:]
    for output in outputs:
        assert_trained_through_servers(output, workers=2)
    (start1, end1), (start2, end2) = job_times(slurm, first), job_times(slurm, second)
    assert start2 <= end1 and start1 <= end2  # they ran at the same time on n1


def test_a_resubmitted_job_resumes_from_its_checkpoints(slurm, tmp_path):
    first = sbatch(slurm, tmp_path, "--job-name=resumed")
    assert slurm.wait_job(first) == "COMPLETED", job_output(tmp_path, first)[-4000:]
    assert_trained_through_servers(job_output(tmp_path, first), workers=2)
    second = sbatch(slurm, tmp_path, "--job-name=resumed")
    state = slurm.wait_job(second)
    output = job_output(tmp_path, second)
    assert state == "COMPLETED", output[-4000:]
    assert "Resumed from checkpoint" in output, output[-4000:]
    assert str(tmp_path / "runs" / "resumed" / "checkpoints") in output, output[-4000:]
    assert_trained_through_servers(output, workers=2, steps=2 * PROBE_STEPS)


# ----------------------------------------------------------- mpirun and ssh


def user_env() -> dict[str, str]:
    """The user's shell: the virtual environment active, the data set named."""
    return submit_env(dict(os.environ))


def test_mpirun_as_the_readme_says_runs_remote_ranks_over_ssh(tmp_path):
    """Ranks 3-4 run on 127.0.0.2, which OpenMPI starts over ssh with the login PATH."""
    require("mpirun", "sshd", "ssh-keygen")
    probe = write_probe(tmp_path)
    generate_keys(tmp_path)
    (tmp_path / "hosts").write_text("127.0.0.1 slots=3\n127.0.0.2 slots=2\n")
    with running(Sshd(tmp_path / "sshd", ["127.0.0.2"])) as server:
        env = dict(user_env(), OMPI_MCA_plm_rsh_agent=server.ssh)
        env.pop("DISTFLOW_MASTER_ADDR")
        argv = readme_command("OpenMPI", {
            "--hostfile hosts": f"--hostfile {tmp_path / 'hosts'}",
            "--master-addr node01": "--master-addr 127.0.0.1",
            "examples/fashion_mnist_mlp.py --epochs 5": str(probe)})
        if os.getuid() == 0:
            argv.insert(1, "--allow-run-as-root")
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        assert_trained_through_servers(output, workers=4)
        # the same line without the environment: the remote ranks cannot start
        bare = [token for token in argv if token not in ("-x", "PATH", "DISTFLOW_DATA")]
        failed = subprocess.run(bare, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=300)
        assert failed.returncode != 0, (failed.stdout + failed.stderr)[-3000:]


def test_hostfile_over_ssh_trains_through_the_servers(tmp_path):
    """The README's --hostfile line; the second host is this machine's own address,
    which the launcher reaches over ssh (it starts only hosts naming this machine directly)."""
    require("sshd", "ssh-keygen")
    probe = write_probe(tmp_path)
    generate_keys(tmp_path)
    address = this_machines_address()
    (tmp_path / "hostfile").write_text(f"127.0.0.1 slots=2\n{address} slots=2\n")
    with running(Sshd(tmp_path / "sshd", [address])) as server:
        base = free_base_port(2)
        data = user_env()["DISTFLOW_DATA"] + "/fashion-mnist"
        argv = readme_command("SSH", {
            "--hostfile launch/hostfile.example": f"--hostfile {tmp_path / 'hostfile'} "
                                                  f"--ssh {shlex.quote(server.ssh)} --port {base}",
            "python -m": f"{sys.executable} -m",
            "examples/fashion_mnist_mlp.py --epochs 5": f"{probe} {data}"})
        done = subprocess.run(argv, cwd=tmp_path, env=user_env(), capture_output=True,
                              text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert_trained_through_servers(output, workers=4)
    assert re.search(r"^\[node 1\] \[worker [23]\] final", output, flags=re.M), output[-3000:]
