"""Command line and environment -> :class:`LaunchPlan`. Nothing here spawns.

Each option is declared once in :data:`OPTIONS` with its flag, its
environment variable and its default; the manual in ``__main__`` documents
the same table. A flag wins over its environment variable, which wins over
the default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "LaunchError",
    "OptionSpec",
    "OPTIONS",
    "Options",
    "ProcessSpec",
    "ControlSpec",
    "LaunchPlan",
    "parse_options",
    "build_plan",
    "is_loopback",
    "check_port_free",
    "pick_free_ports",
]

STRATEGIES = ("mirrored", "async")
DEFAULT_PORT = 29400
SERVER_MODULE = "distflow.distribute.server"


class LaunchError(ValueError):
    """The launch options or the cluster environment are invalid."""


@dataclass(frozen=True)
class OptionSpec:
    """One launcher option: its flag, its environment variable, its type."""

    flag: str
    env: str
    kind: str  # int, float, str, bool
    default: object
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("--workers", "DISTFLOW_WORKERS", "int", None, "number of worker processes"),
    OptionSpec("--ps", "DISTFLOW_PS", "int", None, "number of parameter servers (default 1)"),
    OptionSpec("--strategy", "DISTFLOW_STRATEGY", "str", "mirrored", "mirrored or async"),
    OptionSpec("--max-staleness", "DISTFLOW_MAX_STALENESS", "int", None, "async staleness bound"),
    OptionSpec("--port", "DISTFLOW_PORT", "int", None, "base port (default: free ports)"),
    OptionSpec("--bind", "DISTFLOW_BIND", "str", None, "address the servers listen on"),
    OptionSpec("--max-restarts", "DISTFLOW_MAX_RESTARTS", "int", 0, "restarts per process"),
    OptionSpec("--fail-fast", "DISTFLOW_FAIL_FAST", "bool", False, "any failure ends the run"),
    OptionSpec("--allow-lost-workers", "DISTFLOW_ALLOW_LOST_WORKERS", "bool", False,
               "exit 0 when workers were lost"),
    OptionSpec("--checkpoint-dir", "DISTFLOW_CHECKPOINT_DIR", "str", None, "PS checkpoints"),
    OptionSpec("--checkpoint-every", "DISTFLOW_CHECKPOINT_EVERY", "int", 100, "steps"),
    OptionSpec("--heartbeat-timeout", "DISTFLOW_HEARTBEAT_TIMEOUT", "float", 30.0, "seconds"),
    OptionSpec("--log-dir", "DISTFLOW_LOG_DIR", "str", None, "one log file per process"),
    OptionSpec("--nnodes", "DISTFLOW_NNODES", "int", None, "number of nodes"),
    OptionSpec("--node-rank", "DISTFLOW_NODE_RANK", "int", None, "this node's index"),
    OptionSpec("--master-addr", "DISTFLOW_MASTER_ADDR", "str", None, "address of node 0"),
    OptionSpec("--hosts", "DISTFLOW_HOSTS", "str", None, "h1:slots,h2:slots (ssh)"),
    OptionSpec("--hostfile", "DISTFLOW_HOSTFILE", "str", None, "file of 'host slots=N' lines"),
    OptionSpec("--keys", "DISTFLOW_KEYS", "str", None, "CURVE key directory"),
    OptionSpec("--insecure", "DISTFLOW_INSECURE", "bool", False, "allow non-loopback, no keys"),
    OptionSpec("--dry-run", "DISTFLOW_DRY_RUN", "bool", False, "print the plan and exit"),
    OptionSpec("--run-id", "DISTFLOW_RUN_ID", "str", None, "run id (default: generated)"),
    OptionSpec("--grace-period", "DISTFLOW_GRACE_PERIOD", "float", 10.0, "SIGTERM->SIGKILL s"),
    OptionSpec("--blas-threads", "DISTFLOW_BLAS_THREADS", "int", 1, "BLAS threads per child"),
    OptionSpec("--standalone", "DISTFLOW_STANDALONE", "bool", False, "ignore Slurm/MPI/TF"),
    OptionSpec("--ps-command", "DISTFLOW_PS_COMMAND", "str", None, "server command override"),
    OptionSpec("--rendezvous-timeout", "DISTFLOW_RENDEZVOUS_TIMEOUT", "float", 600.0, "s"),
    OptionSpec("--remote-python", "DISTFLOW_REMOTE_PYTHON", "str", None, "python over ssh"),
    OptionSpec("--ssh", "DISTFLOW_SSH", "str", "ssh -o BatchMode=yes", "ssh command"),
    OptionSpec("--watch-stdin", "DISTFLOW_WATCH_STDIN", "bool", False, "stop at stdin EOF"),
)


@dataclass
class Options:
    """Parsed options: one attribute per :data:`OPTIONS` entry plus the script."""

    script: str
    script_args: list[str]
    module: bool
    values: dict[str, object]

    def __getattr__(self, name: str) -> object:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)


@dataclass(frozen=True)
class ProcessSpec:
    """One process of the run: what runs, where, with which environment.

    ``env`` holds only the variables the launcher sets on top of its own
    environment. ``local`` says whether this launcher starts it.
    """

    role: str  # "worker", "ps" or "node" (a node launcher started over ssh)
    rank: int
    node: int
    host: str
    argv: tuple[str, ...]
    env: dict[str, str]
    local: bool = True

    @property
    def name(self) -> str:
        return f"{self.role} {self.rank}"


@dataclass(frozen=True)
class ControlSpec:
    """The launcher-to-launcher channel of a run spread over several launchers.

    The coordinator listens at ``host:port``; the ``peers`` other launchers
    connect, report when their workers are done, and are told when to stop.
    """

    host: str
    port: int
    is_coordinator: bool
    peers: int


@dataclass
class LaunchPlan:
    """Everything the supervisor needs; printable with ``--dry-run``."""

    options: Options
    engine: str  # local, nodes, slurm, openmpi, tf_config, hosts, ssh
    nnodes: int
    node_rank: int
    run_id: str
    bind: str
    ps_addrs: list[str]
    processes: list[ProcessSpec] = field(default_factory=list)
    control: ControlSpec | None = None

    @property
    def local_processes(self) -> list[ProcessSpec]:
        """The processes this launcher starts, servers first."""
        return [p for p in self.processes if p.local]


# ------------------------------------------------------------------ parsing


def _convert(spec: OptionSpec, raw: str, source: str) -> object:
    if spec.kind == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("", "0", "false", "no", "off"):
            return False
        raise LaunchError(f"`{source}` must be 1/0, true/false, yes/no or on/off. "
                          f"Received: {source}={raw!r}")
    if spec.kind == "str":
        return raw
    try:
        return int(raw) if spec.kind == "int" else float(raw)
    except ValueError:
        kind = "an int" if spec.kind == "int" else "a number"
        raise LaunchError(f"`{source}` must be {kind}. Received: {source}={raw!r}") from None


def _env_default(spec: OptionSpec, env: Mapping[str, str]) -> object:
    raw = env.get(spec.env)
    if raw is None or (raw == "" and spec.kind != "bool"):
        return spec.default
    return _convert(spec, raw, spec.env)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would sys.exit(2)
        raise LaunchError(f"{message}. Run `python -m distflow.launch --help` for the manual.")


def _make_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m distflow.launch", allow_abbrev=False, add_help=False)
    for spec in OPTIONS:
        default = _env_default(spec, env)
        if spec.kind == "bool":
            parser.add_argument(spec.flag, action="store_const", const=True, default=default)
        else:
            parser.add_argument(spec.flag, default=default, metavar=spec.env,
                                type=_flag_type(spec))
    parser.add_argument("-m", "--module", action="store_true", default=False)
    parser.add_argument("script", nargs="?")
    parser.add_argument("script_args", nargs=argparse.REMAINDER)
    return parser


def _flag_type(spec: OptionSpec):
    def convert(raw: str) -> object:
        return _convert(spec, raw, spec.flag)

    convert.__name__ = spec.kind
    return convert


def parse_options(argv: Sequence[str] | None, env: Mapping[str, str]) -> Options:
    """Parses the command line with environment-variable defaults.

    Args:
        argv: the arguments after ``python -m distflow.launch``.
        env: the environment to read ``DISTFLOW_*`` defaults from.

    Returns:
        The parsed :class:`Options`.

    Raises:
        LaunchError: on an unknown flag, a bad value, or a missing script.
    """
    namespace = _make_parser(env).parse_args(list(sys.argv[1:] if argv is None else argv))
    values = {spec.dest: getattr(namespace, spec.dest) for spec in OPTIONS}
    if not namespace.script:
        raise LaunchError("No training script given. Usage: python -m distflow.launch "
                          "[options] script.py [args...] or -m module [args...]")
    return Options(namespace.script, list(namespace.script_args), namespace.module, values)


# --------------------------------------------------------------- validation


def _positive(name: str, value: object, allow_zero: bool = False) -> None:
    if value is None:
        return
    low = 0 if allow_zero else 1
    if not isinstance(value, int | float) or value < low:
        kind = "a non-negative" if allow_zero else "a positive"
        noun = "int" if isinstance(value, int) else "number"
        raise LaunchError(f"`--{name}` must be {kind} {noun}. "
                          f"Received: {name.replace('-', '_')}={value!r}")


def _validate(opts: Options) -> None:
    for name in ("workers", "ps", "checkpoint-every", "nnodes", "blas-threads"):
        _positive(name, getattr(opts, name.replace("-", "_")))
    for name in ("max-restarts", "max-staleness", "node-rank"):
        _positive(name, getattr(opts, name.replace("-", "_")), allow_zero=True)
    for name in ("heartbeat-timeout", "grace-period", "rendezvous-timeout"):
        _positive(name, getattr(opts, name.replace("-", "_")))
    if opts.strategy not in STRATEGIES:
        raise LaunchError(f"`--strategy` must be one of 'mirrored', 'async'. "
                          f"Received: strategy={opts.strategy!r}")
    if opts.max_staleness is not None and opts.strategy != "async":
        raise LaunchError("`--max-staleness` only applies to --strategy async. "
                          f"Received: max_staleness={opts.max_staleness}, "
                          f"strategy={opts.strategy!r}")
    if opts.port is not None and not 0 < opts.port < 65536:
        raise LaunchError(f"`--port` must be in 1..65535. Received: port={opts.port}")
    if opts.fail_fast and opts.max_restarts:
        raise LaunchError("`--fail-fast` ends the run at the first failure, so it cannot be "
                          f"combined with restarts. Received: fail_fast=True, "
                          f"max_restarts={opts.max_restarts}")
    if opts.hosts and opts.hostfile:
        raise LaunchError("Give either `--hosts` or `--hostfile`, not both. "
                          f"Received: hosts={opts.hosts!r}, hostfile={opts.hostfile!r}")
    if opts.keys and not os.path.isdir(opts.keys):
        raise LaunchError(f"`--keys` must be a directory made by `python -m distflow.keys "
                          f"generate DIR`. Received: keys={opts.keys!r}")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind_security(opts: Options, bind: str) -> None:
    """Refuses a non-loopback bind without ``--keys`` unless ``--insecure``."""
    if is_loopback(bind) or opts.keys or opts.insecure:
        return
    raise LaunchError(
        f"Refusing to bind the parameter servers to non-loopback address {bind!r} without "
        "--keys: anyone who can reach it could read and change the model. Pass --keys DIR "
        "(make one with `python -m distflow.keys generate DIR`) or --insecure."
    )


# -------------------------------------------------------------------- ports


def check_port_free(host: str, port: int, needed_by: str) -> None:
    """Raises :class:`LaunchError` if ``host:port`` cannot be bound now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LaunchError(
                f"`--port` {port} is not available on {host} ({exc.strerror}); {needed_by} "
                f"needs it. Stop what uses it, pass another base port, or omit --port on a "
                f"single machine to pick free ports. Received: port={port}"
            ) from None


def pick_free_ports(host: str, count: int) -> list[int]:
    """Asks the kernel for ``count`` distinct free ports on ``host``.

    The probe sockets are all held open until every port is chosen so the
    ports differ; a small window remains between release and the servers'
    bind, which the servers report clearly if it is ever lost.
    """
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            probes.append(probe)
            probe.bind((host, 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _tcp(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


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
    from distflow.launch import placement  # placement imports this module

    env = dict(os.environ if environ is None else environ)
    opts = parse_options(argv, env)
    _validate(opts)
    return placement.place(opts, env)


def default_run_id() -> str:
    """A fresh random run id for single-machine runs."""
    return uuid.uuid4().hex[:12]


def tcp_address(host: str, port: int) -> str:
    """``tcp://host:port`` (brackets around IPv6 hosts)."""
    return _tcp(host, port)
