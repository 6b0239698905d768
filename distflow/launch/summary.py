"""A launcher's exit code and its end-of-run summary (one row per process).

Exit codes: 0 the run completed with every worker; 3 (EXIT_WORKERS_LOST) it
completed but workers were lost (0 with --allow-lost-workers); 4
(EXIT_CHECKPOINT_DIR_IN_USE) another run holds --checkpoint-dir; otherwise the
first failure's exit code, or 128+N when the launcher got signal N.
"""

from __future__ import annotations

from distflow.launch.children import Child, describe_exit

__all__ = ["EXIT_WORKERS_LOST", "EXIT_CHECKPOINT_DIR_IN_USE", "exit_code", "summary"]

EXIT_WORKERS_LOST = 3  # the run completed, but workers were lost (see --allow-lost-workers)
EXIT_CHECKPOINT_DIR_IN_USE = 4  # another run holds --checkpoint-dir (launch/lock.py)


def exit_code(children: list[Child], failure_code: int | None, signal_received: int | None,
              allow_lost_workers: bool) -> int:
    """The launcher's exit code (see the module docstring)."""
    if failure_code is not None:
        return failure_code
    if signal_received is not None:
        return 128 + signal_received
    if not allow_lost_workers and any(c.state == "lost" for c in children):
        return EXIT_WORKERS_LOST
    return 0


def summary(children: list[Child], run_id: str, seconds: float, failure: Child | None,
            code: int, lost_early: list[Child] = ()) -> list[str]:
    """The launcher's closing messages: the verdict and table, then the servers' checkpoints.

    `lost_early` are workers lost before their first step (they fail the run).
    """
    verdict = "failed" if code not in (0, EXIT_WORKERS_LOST) else "completed"
    if failure is not None:
        verdict += f" ({failure.name} exited with {describe_exit(failure.exit_code)})"
    elif lost_early:
        verdict += " (" + ", ".join(f"{c.name} lost before its first step"
                                    for c in lost_early) + ")"
    table = "\n".join("  " + line for line in _table(children))
    return [f"run {run_id} {verdict} in {seconds:.1f} s{_lost_note(children, code)} "
            f"(exit code {code})\n" + table, *_checkpoint_notes(children)]


def _table(children: list[Child]) -> list[str]:
    rows = [("process", "host", "state", "exit", "restarts", "wall")]
    for child in children:
        rows.append((child.name, child.spec.host, child.state, describe_exit(child.exit_code),
                     str(child.restarts), f"{child.wall_time():.1f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _lost_note(children: list[Child], code: int) -> str:
    lost = [c for c in children if c.state == "lost"]
    note = (f", {len(lost)} worker(s) lost: " + ", ".join(
        f"{c.name} ({describe_exit(c.exit_code)})" for c in lost)) if lost else ""
    if code == EXIT_WORKERS_LOST:
        note += " (pass --allow-lost-workers to accept losses with exit code 0)"
    return note


def _checkpoint_notes(children: list[Child]) -> list[str]:
    notes = []
    for child in children:
        if child.spec.role != "ps":
            continue
        if child.last_checkpoint:
            notes.append(f"{child.name}'s last checkpoint: {child.last_checkpoint}")
        if child.checkpoint_failure:
            notes.append(f"{child.name}: checkpoints are failing; its last report: "
                         f"{child.checkpoint_failure.split('ERROR', 1)[-1].strip()}")
    return notes
