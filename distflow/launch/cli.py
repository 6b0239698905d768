"""``main(argv)``: parse, plan, then print the plan (``--dry-run``) or run it."""

from __future__ import annotations

import ast
import os
import shlex
import sys
from collections.abc import Mapping, Sequence

from distflow import process_env
from distflow.launch.config import LaunchError, LaunchPlan
from distflow.launch.placement import build_plan

__all__ = ["main", "format_plan", "manual"]


def manual() -> str:
    """The manual: the docstring of ``distflow/launch/__main__.py`` (read, not run)."""
    path = os.path.join(os.path.dirname(__file__), "__main__.py")
    with open(path, encoding="utf-8") as source:
        return ast.get_docstring(ast.parse(source.read())) or ""


def format_plan(plan: LaunchPlan) -> str:
    """Human-readable plan: every process, where it runs, its command and environment."""
    where = f"node {plan.node_rank} of {plan.nnodes}" if plan.nnodes > 1 else "one machine"
    lines = [
        f"distflow launch plan: run {plan.run_id}, engine {plan.engine}, {where}",
        f"  servers: {', '.join(plan.ps_addrs)} (bind {plan.bind})",
    ]
    if plan.control is not None:
        role = "coordinator" if plan.control.is_coordinator else "peer"
        lines.append(f"  launcher channel: {plan.control.host}:{plan.control.port} "
                     f"(this launcher is the {role}; {plan.control.peers} peer(s))")
    for spec in plan.processes:
        here = "starts here" if spec.local else "started elsewhere"
        lines.append(f"[{spec.name}] node {spec.node} ({spec.host}), {here}")
        lines.append(f"    command: {shlex.join(spec.argv)}")
        for key in sorted(spec.env):
            lines.append(f"    {key}={spec.env[key]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Runs the launcher.

    Args:
        argv: arguments after ``python -m distflow.launch`` (default: sys.argv[1:]).
        environ: environment to read (default: ``os.environ``).

    Returns:
        The process exit code: 0 when the run completed, otherwise the first
        failure's exit code (128+N after signal N), 2 for invalid options.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(manual())
        return 0 if args else 2
    note = process_env.service_link_note(environ)
    if note:
        print(f"distflow.launch: warning: {note}", file=sys.stderr)
    try:
        plan = build_plan(args, environ)
    except LaunchError as exc:
        print(f"distflow.launch: error: {exc}", file=sys.stderr)
        return 2
    if plan.options.dry_run:
        print(format_plan(plan))
        return 0
    from distflow.launch.supervisor import Supervisor

    return Supervisor(plan).run()
