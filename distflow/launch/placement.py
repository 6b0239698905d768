"""The launch plan: where each process of a run goes, for every way of starting a run.

:func:`build_plan` parses the options (``config``), picks the engine and
places the processes:

- ``local``: one machine; servers at free (or ``--port``) loopback ports.
- ``nodes`` / ``slurm`` / ``hosts`` with a node rank: one launcher per node.
  Parameter servers run on node 0 at ``master-addr`` ports ``port+i``; the
  coordinator channel is ``master-addr:port+M``; workers get contiguous
  global ranks node by node (even split, or by slots for ``--hosts``).
- ``openmpi`` / ``tf_config``: one launcher per process (task).
- ``ssh``: ``--hosts`` without ``--node-rank``; this launcher starts one node
  launcher per host (over ssh unless the host is this machine).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import socket
import sys
from collections.abc import Mapping, Sequence

from distflow import process_env
from distflow.distribute import cluster_env as cluster
from distflow.launch.config import (
    DEFAULT_PORT,
    OPTIONS,
    SERVER_MODULE,
    ControlSpec,
    LaunchError,
    LaunchPlan,
    Options,
    ProcessSpec,
    check_bind_security,
    check_port_free,
    default_run_id,
    is_loopback,
    parse_options,
    pick_free_ports,
    tcp_address,
    validate,
)

ANY_ADDRESS = "0.0.0.0"


def build_plan(argv: Sequence[str] | None = None,
               environ: Mapping[str, str] | None = None) -> LaunchPlan:
    """Turns the command line and the environment into a :class:`LaunchPlan`.

    Args:
        argv: arguments after ``python -m distflow.launch`` (default: sys.argv).
        environ: environment (default: ``os.environ``); read for ``DISTFLOW_*``
            option defaults and for Slurm, OpenMPI and ``TF_CONFIG``.

    Returns:
        The plan: every process of the run with its host and environment,
        marked ``local`` when this launcher starts it.

    Raises:
        LaunchError: on invalid options, a malformed cluster environment, a
            port in use, or a non-loopback bind without keys or --insecure.
    """
    env = dict(os.environ if environ is None else environ)
    opts = parse_options(argv, env)
    validate(opts)
    return place(opts, env)


def place(opts: Options, env: Mapping[str, str]) -> LaunchPlan:
    """Chooses the engine from the options and environment and places processes."""
    try:
        if opts.hosts or opts.hostfile:
            return _place_hosts(opts)
        if _multi_node_flags(opts):
            return _place_flag_nodes(opts)
        if not opts.standalone:
            if env.get("TF_CONFIG"):
                return _place_tf_config(opts, cluster.parse_tf_config(env["TF_CONFIG"]))
            mpi = cluster.detect_openmpi(env)
            if mpi is not None:
                return _place_openmpi(opts, mpi)
            slurm = cluster.detect_slurm(env)
            if slurm is not None:
                return _place_slurm(opts, slurm)
        return _place_local(opts)
    except cluster.ClusterError as exc:
        raise LaunchError(str(exc)) from None


def _multi_node_flags(opts: Options) -> bool:
    return (opts.nnodes or 1) > 1 or (opts.node_rank or 0) > 0


# ------------------------------------------------------------ environment


def child_env(opts: Options, run_id: str, num_workers: int, ps_addrs: list[str],
              bind: str) -> dict[str, str]:
    """The environment every child shares (role and rank added per process).

    The ``DISTFLOW_*`` part is written through the process contract
    (``distflow/process_env.py``); the BLAS pins and unbuffered output come on top.
    """
    threads = str(opts.blas_threads)
    return {
        **process_env.encode({
            "DISTFLOW_NUM_WORKERS": num_workers,
            "DISTFLOW_NUM_PS": len(ps_addrs),
            "DISTFLOW_PS_ADDRS": ps_addrs,
            "DISTFLOW_STRATEGY": opts.strategy,
            "DISTFLOW_MAX_STALENESS": opts.max_staleness,
            "DISTFLOW_RUN_ID": run_id,
            "DISTFLOW_RUN_NAMED": bool(opts.run_id),
            "DISTFLOW_RESUME_OTHER_RUN": opts.resume_other_run,
            "DISTFLOW_CHECKPOINT_DIR": opts.checkpoint_dir,
            "DISTFLOW_CHECKPOINT_EVERY": opts.checkpoint_every,
            "DISTFLOW_HEARTBEAT_TIMEOUT": opts.heartbeat_timeout,
            "DISTFLOW_RENDEZVOUS_TIMEOUT": opts.rendezvous_timeout,
            "DISTFLOW_KEYS": opts.keys,
            "DISTFLOW_BIND": bind,
            "DISTFLOW_RESTART": 0,
        }),
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "PYTHONUNBUFFERED": "1",
    }


def worker_argv(opts: Options) -> tuple[str, ...]:
    """``python -u script.py args`` or ``python -u -m module args``."""
    target = ("-m", opts.script) if opts.module else (opts.script,)
    return (sys.executable, "-u", *target, *opts.script_args)


def server_argv(opts: Options) -> tuple[str, ...]:
    """``python -u -m distflow.distribute.server`` unless ``--ps-command`` overrides it."""
    if opts.ps_command:
        return tuple(shlex.split(opts.ps_command))
    return (sys.executable, "-u", "-m", SERVER_MODULE)


def _spec(opts: Options, base: dict[str, str], role: str, rank: int, node: int, host: str,
          local: bool) -> ProcessSpec:
    env = {**base, **process_env.encode({"DISTFLOW_ROLE": role, "DISTFLOW_RANK": rank})}
    argv = server_argv(opts) if role == "ps" else worker_argv(opts)
    return ProcessSpec(role, rank, node, host, argv, env, local)


def even_split(total: int, parts: int) -> list[int]:
    """``total`` items over ``parts`` bins, the first bins one larger."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _stable_id(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:12]


def _bind_for(opts: Options, hosts: list[str]) -> str:
    loopback = "127.0.0.1" if hosts[0] == "localhost" else hosts[0]
    bind = opts.bind or (loopback if all(is_loopback(h) for h in hosts) else ANY_ADDRESS)
    bind = ANY_ADDRESS if bind == "*" else bind
    check_bind_security(opts, bind)
    return bind


# ------------------------------------------------------------------- local


def _place_local(opts: Options) -> LaunchPlan:
    num_ps, num_workers = opts.ps or 1, opts.workers or 1
    bind = _bind_for(opts, ["127.0.0.1"])
    host = "127.0.0.1" if bind in (ANY_ADDRESS, "::") else bind
    if opts.port is None:
        ports = pick_free_ports(bind, num_ps)
    else:
        ports = [opts.port + i for i in range(num_ps)]
        for i, port in enumerate(ports):
            _check_port(bind, port, f"ps {i}")
    ps_addrs = [tcp_address(host, p) for p in ports]
    run_id = opts.run_id or default_run_id()
    base = child_env(opts, run_id, num_workers, ps_addrs, bind)
    processes = [_spec(opts, base, "ps", i, 0, host, True) for i in range(num_ps)]
    processes += [_spec(opts, base, "worker", r, 0, host, True) for r in range(num_workers)]
    return LaunchPlan(opts, "local", 1, 0, run_id, bind, ps_addrs, processes)


def _check_port(host: str, port: int, needed_by: str) -> None:
    if port > 65535:
        raise LaunchError(f"`--port` leaves no room for {needed_by}: port {port} > 65535. "
                          "Pass a smaller base port.")
    check_port_free(host, port, needed_by)


# ------------------------------------------------------------- node modes


def server_nodes(num_ps: int, nnodes: int, spread: bool) -> list[int]:
    """The node of each server: ``i mod nnodes`` when ``spread`` and ``num_ps >= nnodes``
    (one or more per node, as BytePS co-locates servers with workers), else node 0."""
    if spread and num_ps >= nnodes:
        return [i % nnodes for i in range(num_ps)]
    return [0] * num_ps


def _place_nodes(opts: Options, engine: str, node_rank: int, master: str,
                 node_hosts: list[str], worker_counts: list[int], run_id: str,
                 default_port: int = DEFAULT_PORT, spread: bool = True) -> LaunchPlan:
    """One launcher per node; servers spread over the nodes (`server_nodes`), the
    coordinator on node 0. `spread=False` when only node 0's address is known."""
    nnodes, num_ps = len(node_hosts), opts.ps or 1
    num_workers = sum(worker_counts)
    bind = _bind_for(opts, node_hosts)
    base_port = opts.port or default_port
    hosts = [master, *node_hosts[1:]]
    ps_nodes = server_nodes(num_ps, nnodes, spread)
    for i, node in enumerate(ps_nodes):
        if node == node_rank:
            _check_port(bind, base_port + i, f"ps {i}")
    if node_rank == 0 and nnodes > 1:
        _check_port(bind, base_port + num_ps, "the launcher coordinator")
    ps_addrs = [tcp_address(hosts[node], base_port + i) for i, node in enumerate(ps_nodes)]
    base = child_env(opts, run_id, num_workers, ps_addrs, bind)
    processes = [_spec(opts, base, "ps", i, node, node_hosts[node], node == node_rank)
                 for i, node in enumerate(ps_nodes)]
    rank = 0
    for node, count in enumerate(worker_counts):
        for _ in range(count):
            processes.append(_spec(opts, base, "worker", rank, node, node_hosts[node],
                                   node == node_rank))
            rank += 1
    control = None
    if nnodes > 1:
        control = ControlSpec(master, base_port + num_ps, node_rank == 0, nnodes - 1)
    return LaunchPlan(opts, engine, nnodes, node_rank, run_id, bind, ps_addrs, processes,
                      control)


def _place_flag_nodes(opts: Options) -> LaunchPlan:
    nnodes, node_rank = opts.nnodes or 1, opts.node_rank or 0
    if node_rank >= nnodes:
        raise LaunchError(f"`--node-rank` must be in [0, nnodes) = [0, {nnodes}). "
                          f"Received: node_rank={node_rank}, nnodes={nnodes}")
    if not opts.master_addr:
        raise LaunchError(f"`--master-addr` is required with --nnodes {nnodes}: give the "
                          "address of node 0, where the parameter servers run. "
                          "Received: master_addr=None")
    workers = opts.workers or nnodes
    hosts = [opts.master_addr] + [f"node{k}" for k in range(1, nnodes)]
    run_id = opts.run_id or _stable_id("nodes", opts.master_addr, opts.port, nnodes)
    return _place_nodes(opts, "nodes", node_rank, opts.master_addr, hosts,
                        even_split(workers, nnodes), run_id, spread=False)


def _place_slurm(opts: Options, info: cluster.SlurmInfo) -> LaunchPlan:
    nnodes = len(info.nodes)
    if info.ntasks != nnodes:
        raise LaunchError(
            "Under Slurm run one launcher per node (srun --ntasks-per-node=1 python -m "
            "distflow.launch ...); it starts that node's share of the processes. "
            f"Received: SLURM_NTASKS={info.ntasks} on {nnodes} node(s)"
        )
    master = opts.master_addr or info.nodes[0]
    workers = opts.workers or nnodes
    run_id = opts.run_id or f"slurm-{info.job_id}"
    return _place_nodes(opts, "slurm", info.nodeid, master, info.nodes,
                        even_split(workers, nnodes), run_id,
                        slurm_base_port(info.job_id, opts.ps or 1))


SLURM_PORTS = (20000, 32768)  # below Linux's ephemeral range (32768-60999)


def slurm_base_port(job_id: str, num_ps: int) -> int:
    """The base port of a Slurm job run without ``--port``, the same on all its nodes.

    Job J (``SLURM_JOB_ID``) with M servers uses the M+1 ports from
    ``20000 + (J mod K) * (M+1)``, K = 12768 // (M+1): jobs sharing a node never
    collide unless their ids differ by a multiple of K (6384 with one server).
    A job id that is not a number (never seen from Slurm) is hashed.
    """
    job = job_id.split(".", 1)[0]
    number = int(job) if job.isdigit() else int(_stable_id(job), 16)
    low, high = SLURM_PORTS
    stride = num_ps + 1
    return low + (number % ((high - low) // stride)) * stride


# ---------------------------------------------------------------- hosts/ssh


def _read_hosts(opts: Options) -> list[cluster.HostSlots]:
    if opts.hosts:
        return cluster.parse_hosts(opts.hosts)
    return cluster.read_hostfile(opts.hostfile)


def fill_slots(workers: int, slots: list[int]) -> list[int]:
    """Fills hosts in order up to their slots: ``fill_slots(3, [2, 2]) == [2, 1]``."""
    counts = []
    for capacity in slots:
        counts.append(min(capacity, workers))
        workers -= counts[-1]
    return counts


def _place_hosts(opts: Options) -> LaunchPlan:
    hosts = _read_hosts(opts)
    total = sum(h.slots for h in hosts)
    workers = opts.workers or total
    if workers > total:
        raise LaunchError(f"`--workers` {workers} exceeds the {total} slot(s) of the hosts; "
                          f"add slots or hosts. Received: workers={workers}")
    if opts.nnodes is not None and opts.nnodes != len(hosts):
        raise LaunchError(f"`--nnodes` must match the {len(hosts)} host(s) listed. "
                          f"Received: nnodes={opts.nnodes}")
    names = [h.host for h in hosts]
    master = opts.master_addr or names[0]
    run_id = opts.run_id or default_run_id()
    if opts.node_rank is None:
        return _place_ssh_driver(opts, hosts, master, run_id, workers)
    if opts.node_rank >= len(hosts):
        raise LaunchError(f"`--node-rank` must be in [0, {len(hosts)}) for {len(hosts)} "
                          f"host(s). Received: node_rank={opts.node_rank}")
    counts = fill_slots(workers, [h.slots for h in hosts])
    return _place_nodes(opts, "hosts", opts.node_rank, master, names, counts, run_id)


def is_this_machine(host: str) -> bool:
    """True when ``host`` names this machine (no ssh needed)."""
    return is_loopback(host) or host in (socket.gethostname(), socket.getfqdn())


_NOT_FORWARDED = {"hosts", "hostfile", "node_rank", "run_id", "dry_run", "watch_stdin",
                  "remote_python", "ssh", "port", "workers"}


def node_launcher_args(opts: Options, hosts: list[cluster.HostSlots], node_rank: int,
                       run_id: str, workers: int) -> list[str]:
    """The ``distflow.launch`` arguments that make one host act as node ``node_rank``."""
    args = ["--hosts", ",".join(f"{h.host}:{h.slots}" for h in hosts),
            "--node-rank", str(node_rank), "--run-id", run_id,
            "--port", str(opts.port or DEFAULT_PORT), "--workers", str(workers)]
    for spec in OPTIONS:
        value = opts.values[spec.dest]
        if spec.dest in _NOT_FORWARDED or value is None or value == spec.default:
            continue
        text = process_env.encode({spec.env: value})[spec.env]  # paths made absolute
        args += [spec.flag] if spec.kind == "bool" else [spec.flag, text]
    return args + (["-m"] if opts.module else []) + [opts.script, *opts.script_args]


REMOTE_ENV = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")  # forwarded when set
_OPTION_VARIABLES = frozenset(spec.env for spec in OPTIONS)  # travel as flags instead


def remote_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables a node launcher started over ssh gets from this one's environment.

    Every ``DISTFLOW_*`` variable that is not a launcher option (those travel as
    flags), such as ``DISTFLOW_DATA`` or ``DISTFLOW_REQUEST_TIMEOUT``, then the
    interpreter's ``PYTHONPATH``, ``VIRTUAL_ENV`` and ``PYTHONHOME``. Nothing
    else: the remote login environment keeps its own ``HOME``, ``USER``, ....
    """
    names = sorted(k for k in env if k.startswith("DISTFLOW_") and k not in _OPTION_VARIABLES)
    return {k: env[k] for k in [*names, *REMOTE_ENV] if env.get(k)}


def ssh_command(opts: Options, host: str, launcher_args: list[str],
                env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The ssh command line that runs a node launcher on ``host``.

    The remote command is ``cd <this directory> && exec env <remote_env>
    PATH=<interpreter's bin>:"$PATH" <interpreter> -m distflow.launch ...``:
    the interpreter is this one's absolute path (or ``--remote-python``), so a
    virtual environment's packages are found without activating it. The
    remote launcher gets ``--watch-stdin``: when this ssh client dies its
    stdin closes, and the remote launcher stops its processes.
    """
    env = os.environ if env is None else env
    python = opts.remote_python or os.path.abspath(sys.executable)
    exports = [f"{k}={shlex.quote(v)}" for k, v in remote_env(env).items()]
    exports.append(f'PATH={shlex.quote(os.path.dirname(python))}:"$PATH"')
    remote = (f"cd {shlex.quote(os.getcwd())} && exec env {' '.join(exports)} "
              f"{shlex.quote(python)} -m distflow.launch --watch-stdin "
              f"{shlex.join(launcher_args)}")
    return (*shlex.split(opts.ssh), host, remote)


def _place_ssh_driver(opts: Options, hosts: list[cluster.HostSlots], master: str,
                      run_id: str, workers: int) -> LaunchPlan:
    bind = _bind_for(opts, [h.host for h in hosts])
    base_port = opts.port or DEFAULT_PORT
    names = [master, *(h.host for h in hosts[1:])]
    ps_addrs = [tcp_address(names[node], base_port + i)
                for i, node in enumerate(server_nodes(opts.ps or 1, len(hosts), True))]
    processes = []
    for k, host in enumerate(hosts):
        args = node_launcher_args(opts, hosts, k, run_id, workers)
        if is_this_machine(host.host):
            argv = (sys.executable, "-m", "distflow.launch", *args)
        else:
            argv = ssh_command(opts, host.host, args)
        processes.append(ProcessSpec("node", k, k, host.host, argv, {}, True))
    return LaunchPlan(opts, "ssh", len(hosts), 0, run_id, bind, ps_addrs, processes)


# -------------------------------------------------------------- task modes


def _task_plan(opts: Options, engine: str, role: str, rank: int, ps_addrs: list[str],
               ps_hosts: list[str], num_workers: int, bind: str, run_id: str,
               control: ControlSpec, chief_serves: bool = False) -> LaunchPlan:
    """One task's plan; with `chief_serves` the chief's launcher also starts server 0."""
    base = child_env(opts, run_id, num_workers, ps_addrs, bind)
    serves = chief_serves and role == "worker" and rank == 0
    processes = [_spec(opts, base, "ps", i, i, ps_hosts[i],
                       (role == "ps" and rank == i) or serves)
                 for i in range(len(ps_addrs))]
    processes += [_spec(opts, base, "worker", r, len(ps_addrs) + r, "?",
                        role == "worker" and rank == r) for r in range(num_workers)]
    task_index = rank if role == "ps" else len(ps_addrs) + rank
    return LaunchPlan(opts, engine, len(processes), task_index, run_id, bind, ps_addrs,
                      processes, control)


def _place_openmpi(opts: Options, info: cluster.MpiInfo) -> LaunchPlan:
    num_ps = opts.ps or 1
    num_workers = info.size - num_ps
    if num_workers < 1 or (opts.workers is not None and opts.workers != num_workers):
        raise LaunchError(
            f"Under mpirun every rank is one process: ranks 0..{num_ps - 1} are the servers, "
            f"the rest are workers, so -np must be --ps + --workers. Received: "
            f"OMPI_COMM_WORLD_SIZE={info.size}, ps={num_ps}, workers={opts.workers}")
    single_node = info.local_size == info.size
    master = opts.master_addr or ("127.0.0.1" if single_node else None)
    if master is None:
        raise LaunchError("This mpirun spans several nodes: pass --master-addr with the "
                          "address of the host of ranks 0..ps-1 (the servers). "
                          "Received: master_addr=None")
    bind = _bind_for(opts, [master])
    base_port = opts.port or DEFAULT_PORT
    role, rank = ("ps", info.rank) if info.rank < num_ps else ("worker", info.rank - num_ps)
    if role == "ps":
        _check_port(bind, base_port + rank, f"ps {rank}")
    if info.rank == 0:
        _check_port(bind, base_port + num_ps, "the launcher coordinator")
    ps_addrs = [tcp_address(master, base_port + i) for i in range(num_ps)]
    control = ControlSpec(master, base_port + num_ps, info.rank == 0, info.size - 1)
    run_id = opts.run_id or _stable_id("mpi", info.job_id, master, base_port)
    return _task_plan(opts, "openmpi", role, rank, ps_addrs, [master] * num_ps, num_workers,
                      bind, run_id, control)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _place_tf_config(opts: Options, info: cluster.TfConfigInfo) -> LaunchPlan:
    chief_serves = not info.ps  # TF's multi-worker tutorial lists only worker tasks
    if chief_serves:
        host, port = _split_address(info.workers[0])
        info = cluster.TfConfigInfo(info.role, info.rank, info.workers, [f"{host}:{port + 1}"])
    for name, given, actual in (("ps", opts.ps, len(info.ps)),
                                ("workers", opts.workers, len(info.workers))):
        if given is not None and given != actual:
            raise LaunchError(f"`--{name}` disagrees with TF_CONFIG, which lists {actual}. "
                              f"Received: {name}={given}")
    ps_hosts = [_split_address(a) for a in info.ps]
    bind = _bind_for(opts, [h for h, _ in ps_hosts] + [a.rpartition(":")[0]
                                                      for a in info.workers])
    if info.role == "ps":
        _check_port(bind, ps_hosts[info.rank][1], f"ps {info.rank}")
    chief_host, chief_port = _split_address(info.workers[0])
    is_chief = info.role == "worker" and info.rank == 0
    if is_chief:
        _check_port(bind, chief_port, "the launcher coordinator (the chief's TF_CONFIG port)")
        if chief_serves:
            _check_port(bind, chief_port + 1, "ps 0 (the chief's TF_CONFIG port + 1)")
    control = ControlSpec(chief_host, chief_port, is_chief,
                          len(info.workers) + (0 if chief_serves else len(info.ps)) - 1)
    ps_addrs = [tcp_address(h, p) for h, p in ps_hosts]
    run_id = opts.run_id or _stable_id("tf", *info.workers, *info.ps)
    return _task_plan(opts, "tf_config", info.role, info.rank, ps_addrs,
                      [h for h, _ in ps_hosts], len(info.workers), bind, run_id, control,
                      chief_serves)
