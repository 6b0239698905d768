"""Command line and environment -> :class:`Options`, and the plan's types. Nothing here spawns.

Each option is a variable of the process contract (``distflow/process_env.py``)
with a flag: :data:`OPTIONS` lists them with their type and default, and the
manual in ``__main__`` documents the same table. A flag wins over its
environment variable, which wins over the default. ``placement.build_plan``
turns the options into a :class:`LaunchPlan`.
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

from distflow import process_env

__all__ = [
    "LaunchError",
    "OptionSpec",
    "OPTIONS",
    "Options",
    "ProcessSpec",
    "ControlSpec",
    "LaunchPlan",
    "parse_options",
    "validate",
    "is_loopback",
    "check_port_free",
    "pick_free_ports",
]

STRATEGIES = process_env.variable("DISTFLOW_STRATEGY").choices
DEFAULT_PORT = 29400
SERVER_MODULE = "distflow.distribute.server"


class LaunchError(ValueError):
    """The launch options or the cluster environment are invalid."""


@dataclass(frozen=True)
class OptionSpec:
    """One launcher option: its flag, its environment variable, its type."""

    flag: str
    env: str
    kind: str  # a process_env kind: int, float, str, path, bool
    default: object
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[OptionSpec, ...] = tuple(
    OptionSpec(var.flag, var.name, var.kind, var.option_default, var.meaning)
    for var in process_env.launcher_options())


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

    @property
    def output_prefix(self) -> str:
        """What starts every output line of this launcher, before the process's own prefix.

        ``"[node K] "`` for a launcher of a multi-node Slurm step, whose launchers all
        write into one job output file; empty elsewhere (the ssh driver adds the node
        itself, other engines give each launcher its own console).
        """
        return f"[node {self.node_rank}] " if self.engine == "slurm" and self.nnodes > 1 else ""


# ------------------------------------------------------------------ parsing


def _convert(spec: OptionSpec, raw: str, source: str) -> object:
    """The contract's type of `spec` (range and choices are checked by `validate`)."""
    if spec.kind in ("str", "path"):
        return raw
    var = process_env.variable(spec.env)
    try:
        if raw.strip():  # blank means the default only for a variable, not for a flag
            return process_env.parse(spec.env, raw, checked=False)
    except process_env.ProcessEnvError:
        pass
    raise LaunchError(f"`{source}` must be {process_env.expectation(var, checked=False)}. "
                      f"Received: {source}={raw!r}")


def _env_default(spec: OptionSpec, env: Mapping[str, str]) -> object:
    raw = env.get(spec.env)
    if raw is None or process_env.is_service_link(spec.env, raw):
        return spec.default
    if raw == "" and spec.kind != "bool":
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


def validate(opts: Options) -> None:
    """Checks each option's declared range and the options' combinations.

    Raises:
        LaunchError: naming the option and quoting the value.
    """
    for var in process_env.launcher_options():
        if var.bound:
            _positive(var.flag.lstrip("-"), opts.values[var.flag.lstrip("-").replace("-", "_")],
                      allow_zero=var.bound == "non-negative")
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


def default_run_id() -> str:
    """A fresh random run id for single-machine runs."""
    return uuid.uuid4().hex[:12]


def tcp_address(host: str, port: int) -> str:
    """``tcp://host:port`` (brackets around IPv6 hosts)."""
    return _tcp(host, port)
