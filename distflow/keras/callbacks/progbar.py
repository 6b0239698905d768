"""Progress output: `Progbar` (the `keras.utils.Progbar` interface) and `ProgbarLogger`.

On a terminal (`sys.stdout.isatty()`, or under a launcher whose console is one:
`DISTFLOW_TTY=1`), verbose=1 redraws one line in place with
`\\r`: ` 12/938 [>.....] - ETA: 2s - loss: 0.5231`, finished as
`938/938 [======] - 3s 3ms/step - loss: ... - val_loss: ...`. When stdout is
not a terminal (a log file, a pipe, the launcher's prefixed output), and
always with verbose=2, each epoch prints exactly one line at its end:
`Epoch 1/5 - 938 steps - 3s - loss: 0.5231 - accuracy: 0.8123 - val_loss: ...`.
After `keras.utils.disable_interactive_logging()` those lines go to the
"distflow.keras" logger instead of stdout, and nothing is redrawn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

from distflow import process_env
from distflow.keras.callbacks.base import Callback
from distflow.keras.utils import io_utils


class Progbar:
    """A progress bar for a known (or unknown) number of steps.

    Args:
        target: total number of steps, or None when unknown.
        width: width of the bar in characters.
        verbose: 0 silent, 1 a live bar on a terminal (one summary line at the end
            otherwise), 2 one summary line at the end.
        interval: minimum seconds between two redraws of the live bar.
        stateful_metrics: names whose values are shown as given; the others are
            averaged over the steps seen, weighted by the steps each value covers.
        unit_name: what a step is called ("step", "sample").
        prefix: text starting the summary line (e.g. "Epoch 1/5").
    """

    def __init__(self, target: int | None, width: int = 30, verbose: int = 1,
                 interval: float = 0.05, stateful_metrics: Iterable[str] | None = None,
                 unit_name: str = "step", prefix: str | None = None):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stateful_metrics = set(stateful_metrics or ())
        self.unit_name = unit_name
        self.prefix = prefix
        stream = sys.stdout
        # DISTFLOW_TTY: the launcher's console is a terminal and it redraws this line.
        self.dynamic = (bool(getattr(stream, "isatty", None) and stream.isatty()) or
                        process_env.read("DISTFLOW_TTY")) and \
            io_utils.is_interactive_logging_enabled()
        self._values: dict[str, list[float]] = {}
        self._order: list[str] = []
        self._seen = 0
        self._start = time.monotonic()
        self._last_draw = float("-inf")
        self._drawn_width = 0

    def update(self, current: int, values: Iterable[tuple[str, Any]] | None = None,
               finalize: bool | None = None) -> None:
        """Moves the bar to step `current` with `(name, value)` metric pairs.

        Args:
            current: index of the current step (1-based count of steps done).
            values: metric pairs to show.
            finalize: whether this is the last update; by default when `current`
                reaches `target`.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._accumulate(current, values or ())
        self._seen = current
        if self.verbose == 0:
            return
        now = time.monotonic()
        if self.verbose == 1 and self.dynamic:
            if finalize or now - self._last_draw >= self.interval:
                self._draw_bar(current, now, finalize)
                self._last_draw = now
        elif finalize:
            _write(self._summary_line(current, now - self._start) + "\n")

    def add(self, n: int, values: Iterable[tuple[str, Any]] | None = None) -> None:
        """Advances the bar by `n` steps."""
        self.update(self._seen + n, values)

    def _accumulate(self, current: int, values: Iterable[tuple[str, Any]]) -> None:
        steps = max(current - self._seen, 1)
        for name, value in values:
            if name not in self._order:
                self._order.append(name)
            if name in self.stateful_metrics or not _is_number(value):
                self._values[name] = [value, 1]
            elif name in self._values:
                self._values[name][0] += value * steps
                self._values[name][1] += steps
            else:
                self._values[name] = [value * steps, steps]

    def _metrics_text(self) -> str:
        parts = []
        for name in self._order:
            total, count = self._values[name]
            value = total / count if _is_number(total) else total
            parts.append(f" - {name}: {_format_value(value)}")
        return "".join(parts)

    def _draw_bar(self, current: int, now: float, finalize: bool) -> None:
        elapsed = now - self._start
        line = self._bar_text(current)
        per_step = elapsed / current if current else 0.0
        if finalize:
            line += f" - {_format_duration(elapsed)} {_format_per_step(per_step, self.unit_name)}"
        elif self.target is not None:
            line += f" - ETA: {_format_duration(per_step * (self.target - current))}"
        else:
            line += f" - {_format_duration(elapsed)} {_format_per_step(per_step, self.unit_name)}"
        line += self._metrics_text()
        padding = " " * max(self._drawn_width - len(line), 0)
        self._drawn_width = len(line)
        _write("\r" + line + padding + ("\n" if finalize else ""))

    def _bar_text(self, current: int) -> str:
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = len(str(self.target))
        done = int(self.width * min(current, self.target) / self.target) if self.target else 0
        bar = "=" * done
        if current < self.target:
            bar = bar[:-1] + ">" if done else ">"
        return f"{current:{digits}d}/{self.target} [{bar.ljust(self.width, '.')}]"

    def _summary_line(self, current: int, elapsed: float) -> str:
        steps = self.target if self.target is not None else current
        unit = self.unit_name if steps == 1 else self.unit_name + "s"
        head = f"{self.prefix} - " if self.prefix else ""
        return f"{head}{steps} {unit} - {_format_duration(elapsed)}{self._metrics_text()}"


class ProgbarLogger(Callback):
    """Prints the progress of `fit`, `evaluate` and `predict` (added by `fit` itself).

    Reads `params["verbose"]` ("auto" means 1), `params["epochs"]` and
    `params["steps"]` (None when the number of steps is unknown). The logs
    `fit` passes are already running averages, so they are shown as given.
    """

    _chief_only = True

    def __init__(self) -> None:
        super().__init__()
        self.verbose = 1
        self.epochs = 1
        self.target: int | None = None
        self.progbar: Progbar | None = None
        self.seen = 0
        self._in_fit = False

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.epochs = params.get("epochs", 1) or 1
        self.target = params.get("steps")

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._in_fit = True

    def on_train_end(self, logs: dict | None = None) -> None:
        self._in_fit = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start_bar(prefix=f"Epoch {epoch + 1}/{self.epochs}")
        if self.verbose == 1 and self.progbar.dynamic and self.epochs > 1:
            _write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._update(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._finish(logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        if not self._in_fit:
            self._start_bar(prefix=None)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self._in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        if not self._in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._start_bar(prefix=None)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._update(batch, None)

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._finish(None)

    def _start_bar(self, prefix: str | None) -> None:
        self.seen = 0
        self.progbar = Progbar(self.target, verbose=self.verbose, unit_name="step",
                               prefix=prefix)

    def _update(self, batch: int, logs: dict | None) -> None:
        if self.progbar is None:
            self._start_bar(prefix=None)
        self.seen = batch + 1
        if self.verbose == 1:
            logs = logs or {}
            self.progbar.stateful_metrics.update(logs)
            self.progbar.update(self.seen, list(logs.items()), finalize=False)

    def _finish(self, logs: dict | None) -> None:
        if self.progbar is None:
            self._start_bar(prefix=None)
        logs = logs or {}
        if self.progbar.target is None:
            self.progbar.target = self.seen
        self.progbar.stateful_metrics.update(logs)
        self.progbar.update(self.progbar.target, list(logs.items()), finalize=True)
        self.progbar = None


def _write(text: str) -> None:
    if io_utils.is_interactive_logging_enabled():
        sys.stdout.write(text)
        sys.stdout.flush()
    elif text.strip("\r\n"):  # `keras.utils.disable_interactive_logging()`: to logging
        io_utils.print_msg(text.strip("\r\n"))


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)


def _format_value(value: Any) -> str:
    if not _is_number(value):
        return str(value)
    value = float(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _format_duration(seconds: float) -> str:
    """`3s`, `2:05` or `1:02:05`; under a second, milliseconds (`412ms`)."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}:{whole % 60:02d}"
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _format_per_step(seconds: float, unit_name: str) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"
