"""The distflow launcher: ``python -m distflow.launch [options] script.py [args]``.

The manual is the docstring of ``distflow/launch/__main__.py`` (also printed
by ``python -m distflow.launch --help``). Public API:

- :func:`main` - run the launcher with an argv list; returns the exit code.
- :func:`build_plan` - argv and environment to a :class:`LaunchPlan`, no spawning.
"""

from distflow.launch.cli import format_plan, main
from distflow.launch.config import LaunchError, LaunchPlan, ProcessSpec
from distflow.launch.placement import build_plan

__all__ = ["main", "build_plan", "format_plan", "LaunchPlan", "LaunchError", "ProcessSpec"]
