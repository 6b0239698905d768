"""Real runs through rate-limited links, for `scale_sim.py --validate`: one namespace per node.

Builds a star network on this machine: a "switch" network namespace holding a
Linux bridge, and one namespace per node joined to it by a veth pair whose two
ends are both shaped with `tc qdisc ... tbf` (the node's end: its uplink; the
switch's end: its downlink), so every node has a full-duplex link of `--mbit`
Mbit/s, as `scale_sim.py` models it. One `python -m distflow.launch` per node
(`--nnodes W --node-rank k --master-addr <node 0>`) runs one worker there; the
launcher puts the servers on node 0, beside worker 0, so only the other workers'
traffic crosses links. With `--slurm` the launchers read Slurm's variables
instead, and with `--servers` >= `--workers` server i runs on node i mod W.
It trains `benchmarks/train_worker.py` (the MLP) and prints one JSON line per
run (`workers`, `servers`, `mode`, `mbit`, `server_nodes`, `samples_per_s`,
and `load1`: the machine's one-minute load average when the run ended). The
first two lines are the unshaped calibration runs `scale_sim.py --validate`
needs (one process; sync 1 worker x 1 server), taken from `scale_runs.py`.

Needs root, iproute2 (`ip`, `tc`) and the kernel's `tbf` qdisc:

    DISTFLOW_DATA=/work/shared/data python benchmarks/link_runs.py \\
        --workers 2,4 --mbit 100,300,1000 > link.jsonl
    python benchmarks/scale_sim.py --validate link.jsonl --cores 2 --shared-speed 0.69
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from scale_runs import runs  # noqa: E402
from train_bench import _run, parse_result  # noqa: E402

from distflow.launch.placement import server_nodes  # noqa: E402

PORT = 29700
TBF = ["burst", "128kb", "limit", "4mb"]  # queue enough that TCP is not dropped into


def _sh(*cmd: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")


@contextmanager
def star(nodes: int, mbit: float):
    """Namespaces for `nodes` nodes behind one switch, each link shaped to `mbit`.

    Yields (namespace names, addresses); removes every namespace afterwards.
    """
    tag = f"dfl{os.getpid() % 10000}"
    switch, names = f"{tag}sw", [f"{tag}n{k}" for k in range(nodes)]
    hosts = [f"10.233.{os.getpid() % 250}.{k + 1}" for k in range(nodes)]
    made = []
    try:
        for name in (switch, *names):
            _sh("ip", "netns", "add", name)
            made.append(name)
        _sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        _sh("ip", "-n", switch, "link", "set", "br0", "up")
        for k, (name, host) in enumerate(zip(names, hosts, strict=True)):
            _join(switch, name, host, f"{tag}s{k}", f"{tag}v{k}", mbit)
        yield names, hosts
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)


def _join(switch: str, name: str, host: str, sw_end: str, node_end: str, mbit: float) -> None:
    """A veth pair from node namespace `name` to the switch's bridge, both ends shaped."""
    _sh("ip", "link", "add", node_end, "type", "veth", "peer", "name", sw_end)
    _sh("ip", "link", "set", node_end, "netns", name)
    _sh("ip", "link", "set", sw_end, "netns", switch)
    _sh("ip", "-n", switch, "link", "set", sw_end, "master", "br0")
    _sh("ip", "-n", name, "addr", "add", f"{host}/24", "dev", node_end)
    for ns, end in ((switch, sw_end), (name, node_end)):
        _sh("ip", "-n", ns, "link", "set", end, "up")
        _sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", end, "root", "tbf",
            "rate", f"{mbit}mbit", *TBF)
    _sh("ip", "-n", name, "link", "set", "lo", "up")


def _env() -> dict[str, str]:
    """This environment without run variables, one BLAS thread, this tree importable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DISTFLOW_") or k == "DISTFLOW_DATA"}
    return dict(env, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                PYTHONPATH=str(HERE.parent))


def shaped_run(workers: int, servers: int, mode: str, mbit: float, epochs: int,
               slurm: bool = False) -> dict:
    """One launcher per node through `mbit` links; returns the chief's result.

    `slurm`: the launchers read Slurm's variables instead of `--nnodes` flags, so
    the servers spread over the nodes when there are at least as many as nodes.
    """
    batch = 128 * workers if mode == "sync" else 128
    strategy = "mirrored" if mode == "sync" else "async"
    launcher = [sys.executable, "-m", "distflow.launch", "--insecure", "--port", str(PORT),
                "--workers", str(workers), "--ps", str(servers), "--strategy", strategy,
                "--rendezvous-timeout", "120"]
    script = [str(HERE / "train_worker.py"), "--epochs", str(epochs), "--batch-size", str(batch)]
    with star(workers, mbit) as (names, hosts):
        procs = []
        for k, name in enumerate(names):
            args, env = _node(k, hosts, slurm)
            procs.append(subprocess.Popen(["ip", "netns", "exec", name, *launcher, *args,
                                           *script], cwd=HERE.parent, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        outs = [p.communicate(timeout=1800) for p in procs]
    return parse_result(launcher + script, procs[0].returncode, *outs[0])


def _node(rank: int, hosts: list[str], slurm: bool) -> tuple[list[str], dict[str, str]]:
    """Node `rank`'s launcher flags and environment."""
    if not slurm:
        return ["--nnodes", str(len(hosts)), "--node-rank", str(rank),
                "--master-addr", hosts[0]], _env()
    prefix = hosts[0].rsplit(".", 1)[0]
    return [], dict(_env(), SLURM_PROCID=str(rank), SLURM_NODEID=str(rank),
                    SLURM_NTASKS=str(len(hosts)), SLURM_JOB_ID="42", SLURM_STEP_ID="0",
                    SLURM_STEP_NODELIST=f"{prefix}.[1-{len(hosts)}]")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default="2,4")
    p.add_argument("--servers", default="1")
    p.add_argument("--mbit", default="100,300,1000")
    p.add_argument("--modes", default="sync")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--slurm", action="store_true",
                   help="launch as Slurm would (servers spread when --servers >= workers)")
    args = p.parse_args(argv)
    for w, m, mode, cmd in list(runs([1], [1], args.epochs))[:2]:
        row = {"workers": w, "servers": m, "mode": mode, **_run(cmd, timeout=1800)}
        print(json.dumps({**row, "load1": os.getloadavg()[0]}), flush=True)
    for mbit in (float(x) for x in args.mbit.split(",")):
        for w in (int(x) for x in args.workers.split(",")):
            for m in (int(x) for x in args.servers.split(",")):
                for mode in args.modes.split(","):
                    row = {"workers": w, "servers": m, "mode": mode, "mbit": mbit,
                           "server_nodes": server_nodes(m, w, spread=args.slurm),
                           **shaped_run(w, m, mode, mbit, args.epochs, args.slurm)}
                    print(json.dumps({**row, "load1": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
