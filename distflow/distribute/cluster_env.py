"""Reading a cluster description from the environment or from host lists.

Pure functions over strings and mappings: nothing here starts a process or
opens a socket. Supported sources:

- Slurm (``srun``): ``SLURM_PROCID``, ``SLURM_NTASKS`` (or
  ``SLURM_STEP_NUM_TASKS``), ``SLURM_NODEID`` (or ``SLURMD_NODENAME``),
  ``SLURM_STEP_NODELIST`` in Slurm's compressed host-list syntax
  (``node[01-03,07],gpu5``). One launcher per node.
- OpenMPI (``mpirun``): ``OMPI_COMM_WORLD_RANK``, ``_SIZE``, ``_LOCAL_RANK``,
  ``_LOCAL_SIZE``. One launcher per process (task).
- ``TF_CONFIG`` as Kubeflow's TFJob sets it. One launcher per process (task).
- ``--hosts h1:2,h2:2`` and ``--hostfile FILE`` (Horovod/OpenMPI style).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ClusterError",
    "HostSlots",
    "SlurmInfo",
    "MpiInfo",
    "TfConfigInfo",
    "expand_hostlist",
    "expand_tasks_per_node",
    "parse_hosts",
    "read_hostfile",
    "detect_slurm",
    "detect_openmpi",
    "parse_tf_config",
]


class ClusterError(ValueError):
    """A cluster description (environment variable, host list) is malformed."""


@dataclass(frozen=True)
class HostSlots:
    """One host of ``--hosts`` / ``--hostfile`` and how many workers it takes."""

    host: str
    slots: int


@dataclass(frozen=True)
class SlurmInfo:
    """What an ``srun`` step tells each task about the cluster."""

    procid: int
    ntasks: int
    nodeid: int
    nodes: list[str]
    job_id: str


@dataclass(frozen=True)
class MpiInfo:
    """What ``mpirun`` (OpenMPI) tells each process about the job."""

    rank: int
    size: int
    local_rank: int
    local_size: int
    job_id: str


@dataclass(frozen=True)
class TfConfigInfo:
    """``TF_CONFIG`` translated to distflow roles.

    ``chief`` (if present) becomes worker 0 and ``worker[i]`` becomes worker
    ``i + 1``; without a chief ``worker[i]`` is worker ``i``.
    """

    role: str
    rank: int
    workers: list[str]
    ps: list[str]


# --------------------------------------------------------------------- Slurm


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``[...]``."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ClusterError(f"Unbalanced ']' in host list. Received: {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ClusterError(f"Unbalanced '[' in host list. Received: {text!r}")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _expand_range_list(body: str, whole: str) -> list[str]:
    """``01-03,07`` -> ``['01', '02', '03', '07']`` (zero padding kept)."""
    values = []
    for item in body.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", item)
        if not match:
            raise ClusterError(
                f"Bad range {item!r} in host list; use forms like node[01-03,07]. "
                f"Received: {whole!r}"
            )
        start, end = match.group(1), match.group(2) or match.group(1)
        if int(end) < int(start):
            raise ClusterError(f"Descending range {item!r} in host list. Received: {whole!r}")
        width = len(start)
        values.extend(str(n).zfill(width) for n in range(int(start), int(end) + 1))
    return values


def _expand_one(pattern: str, whole: str) -> list[str]:
    """Expand one host pattern, possibly with several bracket groups."""
    match = re.search(r"\[([^\]]*)\]", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    expanded = []
    for value in _expand_range_list(match.group(1), whole):
        expanded.extend(_expand_one(head + value + tail, whole))
    return expanded


def expand_hostlist(text: str) -> list[str]:
    """Expands Slurm's compressed host-list syntax.

    Args:
        text: e.g. ``"node[01-03,07],gpu5"``.

    Returns:
        The host names in order, e.g. ``["node01", "node02", "node03",
        "node07", "gpu5"]``.

    Raises:
        ClusterError: if the brackets or ranges are malformed.
    """
    hosts = []
    for pattern in _split_top_level(text):
        hosts.extend(_expand_one(pattern, text))
    if not hosts:
        raise ClusterError(f"Host list is empty. Received: {text!r}")
    return hosts


def expand_tasks_per_node(text: str) -> list[int]:
    """Expands ``SLURM_TASKS_PER_NODE`` syntax: ``"2(x3),1"`` -> ``[2, 2, 2, 1]``."""
    counts = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", item)
        if not match:
            raise ClusterError(f"Bad tasks-per-node entry {item!r}. Received: {text!r}")
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    return counts


def _int_var(env: Mapping[str, str], name: str) -> int:
    value = env.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise ClusterError(f"`{name}` must be an int. Received: {name}={value!r}") from None


def _step_node_index(env: Mapping[str, str], nodes: list[str]) -> int:
    """This node's index in the step's node list.

    SLURM_NODEID counts nodes of the whole job; a step may use only some of
    them, so the position of SLURMD_NODENAME in the step list wins when known.
    """
    name = env.get("SLURMD_NODENAME", "")
    if name in nodes:
        return nodes.index(name)
    return _int_var(env, "SLURM_NODEID")


def detect_slurm(env: Mapping[str, str]) -> SlurmInfo | None:
    """Reads an ``srun`` step's variables; None outside a Slurm step.

    A batch script itself (outside ``srun``) has no ``SLURM_STEP_NODELIST``
    and is not treated as a cluster run.
    """
    nodelist = env.get("SLURM_STEP_NODELIST") or ""
    if not nodelist or "SLURM_PROCID" not in env:
        return None
    nodes = expand_hostlist(nodelist)
    tasks_var = next((v for v in ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS") if v in env), None)
    info = SlurmInfo(
        procid=_int_var(env, "SLURM_PROCID"),
        ntasks=_int_var(env, tasks_var) if tasks_var else len(nodes),
        nodeid=_step_node_index(env, nodes),
        nodes=nodes,
        job_id=env.get("SLURM_JOB_ID", "0") + "." + env.get("SLURM_STEP_ID", "0"),
    )
    if not 0 <= info.nodeid < len(nodes):
        raise ClusterError(
            f"`SLURM_NODEID` must be in [0, {len(nodes)}) for SLURM_STEP_NODELIST={nodelist!r}. "
            f"Received: SLURM_NODEID={info.nodeid}"
        )
    return info


# ------------------------------------------------------------------- OpenMPI


def detect_openmpi(env: Mapping[str, str]) -> MpiInfo | None:
    """Reads OpenMPI's ``OMPI_COMM_WORLD_*`` variables; None outside ``mpirun``."""
    if "OMPI_COMM_WORLD_RANK" not in env:
        return None
    size = _int_var(env, "OMPI_COMM_WORLD_SIZE")
    info = MpiInfo(
        rank=_int_var(env, "OMPI_COMM_WORLD_RANK"),
        size=size,
        local_rank=_int_var(env, "OMPI_COMM_WORLD_LOCAL_RANK"),
        local_size=(
            _int_var(env, "OMPI_COMM_WORLD_LOCAL_SIZE")
            if "OMPI_COMM_WORLD_LOCAL_SIZE" in env
            else size
        ),
        job_id=env.get("OMPI_MCA_ess_base_jobid", "mpi"),
    )
    if not 0 <= info.rank < info.size:
        raise ClusterError(
            f"`OMPI_COMM_WORLD_RANK` must be in [0, {info.size}). "
            f"Received: OMPI_COMM_WORLD_RANK={info.rank}"
        )
    return info


# ----------------------------------------------------------------- TF_CONFIG

_TF_CONFIG_HELP = (
    'Expected e.g. {"cluster": {"chief": ["h0:2222"], "worker": ["h1:2222"], '
    '"ps": ["h2:2222"]}, "task": {"type": "worker", "index": 0}}'
)


def _tf_error(reason: str, text: str) -> ClusterError:
    shown = text if len(text) <= 200 else text[:200] + "..."
    return ClusterError(f"TF_CONFIG {reason}. {_TF_CONFIG_HELP}. Received: TF_CONFIG={shown!r}")


def _address_list(cluster: dict, key: str, text: str) -> list[str]:
    value = cluster.get(key, [])
    ok = isinstance(value, list) and all(
        isinstance(a, str) and re.fullmatch(r"[^:\s]+:\d+", a) for a in value
    )
    if not ok:
        raise _tf_error(f"cluster.{key} must be a list of 'host:port' strings", text)
    return value


def parse_tf_config(text: str) -> TfConfigInfo:
    """Translates a ``TF_CONFIG`` JSON string to distflow roles.

    Args:
        text: the value of ``TF_CONFIG``.

    Returns:
        This task's role (``worker`` or ``ps``) and rank, the worker
        addresses (chief first) and the parameter server addresses.

    Raises:
        ClusterError: on invalid JSON, missing keys, unsupported task types
            or an index out of range; the message quotes the value.
    """
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _tf_error(f"is not valid JSON ({exc.msg} at char {exc.pos})", text) from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise _tf_error('has no "cluster" object', text)
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise _tf_error('has no "task" object with "type" and "index"', text)
    cluster = config["cluster"]
    chief = _address_list(cluster, "chief", text)
    workers = chief + _address_list(cluster, "worker", text)
    ps = _address_list(cluster, "ps", text)
    kind, index = task["type"], task.get("index", 0)
    if kind not in ("chief", "worker", "ps") or not isinstance(index, int):
        raise _tf_error(f"task type {kind!r} is not supported (use chief, worker or ps)", text)
    group = {"chief": chief, "worker": cluster.get("worker", []), "ps": ps}[kind]
    if not 0 <= index < len(group):
        raise _tf_error(f"task index {index} is out of range for {len(group)} {kind} task(s)", text)
    if not workers:
        raise _tf_error("lists no chief or worker", text)
    if kind == "ps":
        return TfConfigInfo("ps", index, workers, ps)
    rank = index + (len(chief) if kind == "worker" else 0)
    return TfConfigInfo("worker", rank, workers, ps)


# --------------------------------------------------------------------- hosts


def _host_slots(item: str, default_slots: int, origin: str) -> HostSlots:
    match = re.fullmatch(r"\s*([^\s:=]+)\s*(?:(?::|\s+slots=)\s*(\d+))?\s*", item)
    if not match:
        raise ClusterError(
            f"Bad host entry {item!r}; use 'host:slots' (or 'host slots=N' in a hostfile). "
            f"Received: {origin}"
        )
    slots = int(match.group(2)) if match.group(2) else default_slots
    if slots <= 0:
        raise ClusterError(f"Host {match.group(1)!r} must have at least 1 slot. Received: {origin}")
    return HostSlots(match.group(1), slots)


def parse_hosts(text: str) -> list[HostSlots]:
    """Parses ``--hosts``: ``"h1:2,h2:4"`` (a missing ``:slots`` means 1)."""
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise ClusterError(f"`--hosts` lists no host. Received: hosts={text!r}")
    return [_host_slots(item, 1, f"hosts={text!r}") for item in items]


def read_hostfile(path: str) -> list[HostSlots]:
    """Reads a hostfile: one ``host slots=N`` or ``host:N`` per line, ``#`` comments."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ClusterError(
            f"Cannot read `--hostfile`: {exc.strerror}. Received: hostfile={path!r}"
        ) from None
    entries = [line.split("#", 1)[0] for line in lines]
    hosts = [
        _host_slots(entry, 1, f"hostfile {path!r} line {number}")
        for number, entry in enumerate(entries, 1)
        if entry.strip()
    ]
    if not hosts:
        raise ClusterError(f"`--hostfile` lists no host. Received: {path!r}")
    return hosts
