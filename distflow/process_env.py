"""The process contract: every `DISTFLOW_*` environment variable, declared once.

Each :class:`Variable` in :data:`VARIABLES` gives a name, a type, a default, a
meaning, who reads it and what values it accepts. The launcher builds its
options from the entries that carry a flag and writes each child's environment
with :func:`encode`; the children (client, strategies, servers, datasets,
random seeding, the progress bar) read their settings with :func:`read`. A new
variable is one entry here: README.md's table is printed from this declaration
(`python -m distflow.process_env`) and a test fails on any `DISTFLOW_*` name
in `distflow/` that is not declared here.

Standard library only: the launcher and `import distflow` read it before numpy.

Values: an unset or blank variable means the default. Booleans accept
1/0, true/false, yes/no, on/off; a "switch" is on for any value but blank,
0, false, no and off. A Kubernetes service-link value (`tcp://10.96.0.1:80`,
which kubelet sets as `DISTFLOW_PORT` when a Service named `distflow` exists)
is never a setting: :func:`read` ignores it and :func:`service_link_note`
explains it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Variable", "VARIABLES", "ProcessEnvError", "variable", "read", "is_set", "parse",
           "encode", "launcher_options", "child_variables", "expectation", "is_service_link",
           "service_links", "service_link_note", "markdown_table"]

_UNSET = object()
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_BOOL_WORDS = "1/0, true/false, yes/no or on/off"


@dataclass(frozen=True)
class Variable:
    """One `DISTFLOW_*` variable.

    Attributes:
        name: the variable, `DISTFLOW_...`.
        kind: "int", "float", "str", "path" (a str the launcher writes as an
            absolute path), "list" (comma-separated), "bool" or "switch".
        default: what a reader gets when the variable is unset or blank.
        meaning: one line for the docs.
        read_by: who reads it (the launcher, workers, servers, ...).
        flag: the launcher option it backs (None: not a launcher option).
        child: the launcher writes it into every child's environment.
        bound: "positive", "non-negative" or "" for numbers.
        choices: the accepted values of a str variable (empty: any).
        launcher_default: the option's default when it differs from `default`
            (e.g. the run id: the launcher generates one when it is unset).
    """

    name: str
    kind: str
    default: object
    meaning: str
    read_by: str
    flag: str | None = None
    child: bool = False
    bound: str = ""
    choices: tuple[str, ...] = ()
    launcher_default: object = _UNSET

    @property
    def option_default(self) -> object:
        """The launcher option's default."""
        return self.default if self.launcher_default is _UNSET else self.launcher_default


def _v(name: str, kind: str, default: object, meaning: str, read_by: str,
       **extra: object) -> Variable:
    return Variable("DISTFLOW_" + name, kind, default, meaning, read_by, **extra)


_LAUNCHER = "launcher"
VARIABLES: tuple[Variable, ...] = (
    # ---------------------------------------------------- launcher options
    _v("WORKERS", "int", None, "worker processes (unset: one per node, or every slot of "
       "--hosts)", _LAUNCHER, flag="--workers", bound="positive"),
    _v("PS", "int", None, "parameter servers (unset: 1)", _LAUNCHER, flag="--ps",
       bound="positive"),
    _v("STRATEGY", "str", "mirrored", "the training strategy: `mirrored` (synchronous "
       "steps) or `async`", "launcher, workers, servers", flag="--strategy", child=True,
       choices=("mirrored", "async")),
    _v("MAX_STALENESS", "int", None, "async staleness bound in steps (unset: none)",
       "launcher, workers, async servers", flag="--max-staleness", child=True,
       bound="non-negative"),
    _v("PORT", "int", None, "base port of the servers (unset: free ports on one machine, "
       "29400 on several)", _LAUNCHER, flag="--port"),
    _v("BIND", "str", None, "the address servers listen on (unset: 127.0.0.1 on one "
       "machine, 0.0.0.0 on several)", "launcher, servers", flag="--bind", child=True),
    _v("MAX_RESTARTS", "int", 0, "restarts per failed process", _LAUNCHER,
       flag="--max-restarts", bound="non-negative"),
    _v("FAIL_FAST", "bool", False, "any failure ends the run", _LAUNCHER, flag="--fail-fast"),
    _v("ALLOW_LOST_WORKERS", "bool", False, "a run that lost workers exits 0 (not 3)",
       _LAUNCHER, flag="--allow-lost-workers"),
    _v("CHECKPOINT_DIR", "path", None, "where servers checkpoint (unset: nowhere)",
       "launcher, servers", flag="--checkpoint-dir", child=True),
    _v("CHECKPOINT_EVERY", "int", 100, "steps between server checkpoints",
       "launcher, servers", flag="--checkpoint-every", child=True, bound="positive"),
    _v("HEARTBEAT_TIMEOUT", "float", 30.0, "seconds of silence before a worker is "
       "declared dead", "launcher, workers, servers", flag="--heartbeat-timeout",
       child=True, bound="positive"),
    _v("LOG_DIR", "path", None, "one log file per process (unset: console only)", _LAUNCHER,
       flag="--log-dir"),
    _v("NNODES", "int", None, "number of nodes (unset: 1)", _LAUNCHER, flag="--nnodes",
       bound="positive"),
    _v("NODE_RANK", "int", None, "this node's index (unset: 0)", _LAUNCHER,
       flag="--node-rank", bound="non-negative"),
    _v("MASTER_ADDR", "str", None, "address of node 0, where the servers run", _LAUNCHER,
       flag="--master-addr"),
    _v("HOSTS", "str", None, "`h1:slots,h2:slots`: start a node launcher per host over ssh",
       _LAUNCHER, flag="--hosts"),
    _v("HOSTFILE", "str", None, "a file of `host slots=N` lines (as --hosts)", _LAUNCHER,
       flag="--hostfile"),
    _v("KEYS", "path", None, "CURVE key directory (`python -m distflow.keys generate DIR`); "
       "unset: plain TCP", "launcher, workers, servers", flag="--keys", child=True),
    _v("INSECURE", "bool", False, "allow servers beyond loopback without keys",
       "launcher, chief-hosted and `ps` task servers", flag="--insecure"),
    _v("DRY_RUN", "bool", False, "print the plan and exit", _LAUNCHER, flag="--dry-run"),
    _v("RUN_ID", "str", "local", "id of the run, in logs and checkpoints (the launcher "
       "generates one)", "launcher, workers, servers", flag="--run-id", child=True,
       launcher_default=None),
    _v("RESUME_OTHER_RUN", "bool", False, "servers resume checkpoints another run wrote "
       "(unset: a named run refuses another run's, and an unnamed run a named run's)",
       "launcher, servers", flag="--resume-other-run", child=True),
    _v("GRACE_PERIOD", "float", 10.0, "seconds from SIGTERM to SIGKILL when stopping",
       _LAUNCHER, flag="--grace-period", bound="positive"),
    _v("BLAS_THREADS", "int", 1, "BLAS threads per child (OMP/OPENBLAS/MKL_NUM_THREADS)",
       _LAUNCHER, flag="--blas-threads", bound="positive"),
    _v("STANDALONE", "bool", False, "ignore Slurm, OpenMPI and TF_CONFIG", _LAUNCHER,
       flag="--standalone"),
    _v("PS_COMMAND", "str", None, "command run instead of the parameter server", _LAUNCHER,
       flag="--ps-command"),
    _v("RENDEZVOUS_TIMEOUT", "float", 600.0, "the startup deadline: launchers' rendezvous, "
       "a worker's first contact and wait for the chief's values, a sync server's wait for "
       "unregistered workers", "launcher, workers, servers", flag="--rendezvous-timeout",
       child=True, bound="positive"),
    _v("REMOTE_PYTHON", "str", None, "the interpreter run over ssh (unset: this one's path)",
       _LAUNCHER, flag="--remote-python"),
    _v("SSH", "str", "ssh -o BatchMode=yes", "the ssh command", _LAUNCHER, flag="--ssh"),
    _v("WATCH_STDIN", "bool", False, "stop when stdin closes (ssh-started launchers)",
       _LAUNCHER, flag="--watch-stdin"),
    # ------------------------------------------- written by the launcher
    _v("ROLE", "str", "worker", "`worker` or `ps`; set: this process was started by the "
       "launcher", "`import distflow`, `get_strategy`, servers", child=True,
       choices=("worker", "ps")),
    _v("RANK", "int", 0, "index within the role; worker 0 is the chief, a server's is its "
       "shard id", "`get_strategy`, servers", child=True, bound="non-negative"),
    _v("NUM_WORKERS", "int", 1, "number of workers in the step barrier",
       "`get_strategy`, servers", child=True, bound="positive"),
    _v("NUM_PS", "int", None, "number of parameter servers", "scripts", child=True,
       bound="positive"),
    _v("PS_ADDRS", "list", (), "comma-separated `tcp://host:port`, index = shard id; "
       "unset: a local (single-process) strategy", "`get_strategy`, servers, seeding",
       child=True),
    _v("RESTART", "int", 0, "how many times this process was restarted", "scripts",
       child=True, bound="non-negative"),
    _v("TTY", "bool", False, "set to 1 when the launcher's console is a terminal: the "
       "chief's progress bar is redrawn in place", "Keras progress bar"),
    # ------------------------------------------------- set by the user
    _v("REQUEST_TIMEOUT", "float", 60.0, "seconds a request may wait for a server; raised "
       "to at least 3 x heartbeat timeout + 30 so that a barrier wait for a dead peer never "
       "times out first (120 s in effect with the default heartbeat timeout)", "workers",
       bound="positive"),
    _v("SEED", "int", 0, "base of the per-epoch shuffle seed shared by all workers and the "
       "start of each worker's global random generator, so unseeded shuffles agree",
       "`fit` under a strategy, workers' global generator", bound="non-negative"),
    _v("DATA", "path", None, "directory holding `<name>/` data set folders",
       "dataset loaders"),
    _v("OFFLINE", "switch", False, "never try to download a data set", "dataset loaders"),
    _v("ALLOW_LOCAL_TRAINING", "bool", False, "a launcher's worker may train a model that "
       "belongs to no strategy (unset: refused)", "`fit`, `apply_gradients`"),
    _v("STATS_INTERVAL", "float", 60.0, "seconds between a server's stats log lines "
       "(0: never)", "servers", bound="non-negative"),
    _v("NONFINITE", "str", "reject", "what a server does with gradients holding NaN/inf",
       "servers", choices=("reject", "skip")),
    _v("RUN_NAMED", "bool", False, "set by the launcher when the run id was given "
       "(--run-id); written into checkpoints to say whose they are", "servers", child=True),
    _v("IGNORE_CORRUPT_CHECKPOINTS", "bool", False, "a server whose checkpoints are all "
       "corrupt starts empty instead of refusing to start", "servers"),
    _v("LOG_LEVEL", "str", "INFO", "a server's logging level", "servers"),
    _v("TWINS", "bool", True, "with several intra-op threads, ops' batch ranges run in "
       "twin processes free of this process's GIL (0: on threads)", "ops (`distflow.twin`)"),
    _v("TWIN_TIMEOUT", "float", 600.0, "seconds this process waits for a twin process to "
       "start or to finish its range of an op", "ops (`distflow.twin`)", bound="positive"),
)
_BY_NAME = {v.name: v for v in VARIABLES}


class ProcessEnvError(ValueError):
    """A `DISTFLOW_*` variable holds a value its declaration does not accept."""

    def __init__(self, variable: Variable, raw: str, expected: str):
        self.variable, self.raw, self.expected = variable, raw, expected
        super().__init__(f"Environment variable {variable.name} must be {expected}. "
                         f"Received: {raw!r}. {_fix(variable)}")


def _fix(variable: Variable) -> str:
    default = "" if variable.default in (None, ()) else f" ({_show(variable.default)})"
    return f"Set it to {expectation(variable)}, or unset it for the default{default}: " \
           f"{variable.meaning}."


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return f"{value:g}" if isinstance(value, float) else str(value)


def variable(name: str) -> Variable:
    """The declaration of `name`; KeyError names the declared variables' module."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name} is not declared in distflow/process_env.py; declare it "
                       f"there (name, type, default, meaning).") from None


def expectation(var: Variable, checked: bool = True) -> str:
    """What `var` accepts, as in "must be ...": "a positive int", "one of 'a', 'b'"."""
    if var.kind == "bool":
        return _BOOL_WORDS
    if var.choices and checked:
        return "one of " + ", ".join(repr(c) for c in var.choices)
    if var.kind in ("int", "float"):
        noun = "int" if var.kind == "int" else "number"
        if var.bound and checked:
            return f"a {var.bound} {noun}"
        return "an int" if var.kind == "int" else "a number"
    return "a string"


def parse(name: str, raw: str, checked: bool = True) -> object:
    """Converts one raw value of variable `name`; blank gives the default.

    Args:
        name: a declared variable.
        raw: its text.
        checked: also check `bound` and `choices` (False: the type only, for a
            caller that checks the range itself under its own field name).

    Raises:
        ProcessEnvError: quoting the value and saying what to set instead.
    """
    var = variable(name)
    text = raw.strip()
    if var.kind in ("bool", "switch"):
        return _parse_bool(var, text)
    if not text:
        return var.default
    if var.kind == "list":
        return tuple(item.strip() for item in text.split(",") if item.strip())
    value = _parse_number(var, text) if var.kind in ("int", "float") else raw
    if checked and not _accepts(var, value):
        raise ProcessEnvError(var, raw, expectation(var))
    return value


def _parse_bool(var: Variable, text: str) -> bool:
    lowered = text.lower()
    if var.kind == "switch" or lowered in _TRUE:
        return lowered not in _FALSE
    if lowered in _FALSE:
        return False
    raise ProcessEnvError(var, text, _BOOL_WORDS)


def _parse_number(var: Variable, text: str) -> int | float:
    try:
        return int(text) if var.kind == "int" else float(text)
    except ValueError:
        raise ProcessEnvError(var, text, expectation(var, checked=False)) from None


def _accepts(var: Variable, value: object) -> bool:
    if var.choices and value not in var.choices:
        return False
    if var.bound == "positive":
        return value > 0
    return value >= 0 if var.bound == "non-negative" else True


def read(name: str, environ: Mapping[str, str] | None = None, checked: bool = True) -> object:
    """The typed value of `name` in `environ` (default `os.environ`), or its default.

    A Kubernetes service-link value counts as unset (see :func:`is_service_link`).

    Raises:
        ProcessEnvError: the value is not of the declared type, bound or choices.
    """
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or is_service_link(name, raw):
        return variable(name).default
    return parse(name, raw, checked)


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `name` holds a non-blank value that is not a Kubernetes service link."""
    env = os.environ if environ is None else environ
    text = env.get(variable(name).name, "").strip()
    return bool(text) and not is_service_link(name, text)


def encode(values: Mapping[str, object]) -> dict[str, str]:
    """The environment text of declared variables: None -> "", floats as `%g`,
    booleans as 1/0, paths made absolute, lists comma-joined."""
    return {name: _encode(variable(name), value) for name, value in values.items()}


def _encode(var: Variable, value: object) -> str:
    if value is None:
        return ""
    if var.kind == "path":
        return os.path.abspath(str(value)) if value else ""
    if var.kind == "list":
        return ",".join(value) if not isinstance(value, str) else value
    return _show(value)


def launcher_options() -> tuple[Variable, ...]:
    """The variables that back a launcher option, in the manual's order."""
    return tuple(v for v in VARIABLES if v.flag)


def child_variables() -> tuple[Variable, ...]:
    """The variables the launcher writes into every child's environment."""
    return tuple(v for v in VARIABLES if v.child)


# ------------------------------------------------- Kubernetes service links

_LINK_VALUE = re.compile(r"(tcp|udp|sctp)://[^\s/]+:\d+")
_LINK_SIBLING = re.compile(r"(DISTFLOW\w*?)_(PORT_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?"
                           r"|SERVICE_HOST|SERVICE_PORT(_\w+)?)")


def is_service_link(name: str, value: str) -> bool:
    """Whether `name=value` is one kubelet set for a Service (e.g. `DISTFLOW_PORT=tcp://...`).

    kubelet gives every container `<SERVICE>_PORT=tcp://<ip>:<port>` (and the
    siblings `<SERVICE>_PORT_<port>_TCP[_PROTO|_PORT|_ADDR]`, `<SERVICE>_SERVICE_HOST`,
    `<SERVICE>_SERVICE_PORT`) for each Service in the namespace, unless the
    pod spec says `enableServiceLinks: false`.
    """
    if name.endswith("_PORT") and _LINK_VALUE.fullmatch(value.strip()):
        return True
    return name not in _BY_NAME and _LINK_SIBLING.fullmatch(name) is not None


def service_links(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `DISTFLOW_*` variables of `environ` that are Kubernetes service links."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in sorted(env.items())
            if k.startswith("DISTFLOW_") and is_service_link(k, v)}


def service_link_note(environ: Mapping[str, str] | None = None) -> str | None:
    """What happened and the fix, when `environ` holds service links; None otherwise."""
    links = service_links(environ)
    if not links:
        return None
    services = sorted({_service_name(name) for name in links})
    names = ", ".join(repr(s) for s in services)
    which = f"a Service named {names} exists" if len(services) == 1 else \
        f"Services named {names} exist"
    shown = ", ".join(f"{k}={v}" for k, v in links.items())
    return (f"ignoring Kubernetes service-link variables ({shown}): kubelet sets them "
            f"because {which} in this namespace; they are not distflow settings. To be rid "
            f"of them, set `enableServiceLinks: false` in the pod spec, or rename the Service "
            f"so its name does not start with 'distflow'.")


def _service_name(link: str) -> str:
    """`DISTFLOW_PS_SERVICE_HOST` -> "distflow-ps" (kubelet upper-cases, `-` -> `_`)."""
    sibling = _LINK_SIBLING.fullmatch(link)
    prefix = sibling.group(1) if sibling else link.removesuffix("_PORT")
    return prefix.lower().replace("_", "-")


# ---------------------------------------------------------------- the docs


def markdown_table() -> str:
    """README.md's table of every variable (`python -m distflow.process_env`)."""
    rows = ["| variable | launcher flag | type | default | read by | meaning |",
            "|---|---|---|---|---|---|"]
    for var in VARIABLES:
        default = "" if var.default in (None, ()) else f"`{_show(var.default)}`"
        flag = f"`{var.flag}`" if var.flag else ""
        rows.append(f"| `{var.name}` | {flag} | {_type_words(var)} | {default} | "
                    f"{var.read_by} | {var.meaning} |")
    return "\n".join(rows)


def _type_words(var: Variable) -> str:
    if var.choices:
        return " or ".join(f"`{c}`" for c in var.choices)
    if var.kind in ("int", "float"):
        noun = "int" if var.kind == "int" else "number"
        return f"{var.bound} {noun}" if var.bound else noun
    return {"str": "string", "list": "comma-separated list"}.get(var.kind, var.kind)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
