"""Helpers of the chaos suite: a parameter server as a real process, raw requests, RSS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class ServerProcess:
    """`python -m distflow.distribute.server` on a free port, its log in `log_path`."""

    def __init__(self, log_path: Path, *flags: str, env: dict | None = None):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # a file: the server never blocks on its log
        environ = {**os.environ, "PYTHONPATH": str(REPO), "DISTFLOW_LOG_LEVEL": "INFO",
                   **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "distflow.distribute.server",
             "--address", "tcp://127.0.0.1:0", "--stats-interval", "0", *flags],
            stdout=self._log, stderr=subprocess.STDOUT, env=environ)
        self.address = self._wait_for_address(20.0)

    def _wait_for_address(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"listening on (tcp://[\d.]+:\d+)", self.log())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"the server did not log its address within {timeout} s:\n"
                           f"{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_bytes(self) -> int:
        """The server's resident set size, from /proc."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM; the exit code (raises if it has not exited within `timeout`)."""
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
