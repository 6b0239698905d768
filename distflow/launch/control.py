"""The channel between the launchers of one run spread over several machines.

One launcher is the coordinator (node 0; OpenMPI rank 0; the TF_CONFIG
chief). It listens on a TCP port; every other launcher connects, says
``hello``, says ``done`` once its workers have finished (at once if it runs
only servers) and then waits for ``stop``. When every launcher is done the
coordinator sends ``stop``, so parameter servers on any machine are stopped
only after every worker everywhere has finished. A launcher that reports a
failure makes the coordinator stop the whole run.

Messages are JSON objects, one per line; nothing but small status records
crosses this channel. A launcher whose ``hello`` carries another run id is
ignored (two runs sharing a port must not stop each other). The channel is
not authenticated: someone who can reach the port can end a run early, but
no parameter or gradient crosses it. Events arrive on ``events`` (a ``queue.Queue``) as
``(kind, node, payload)`` tuples read by the supervisor's main loop.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time

__all__ = ["Coordinator", "Peer", "ControlError"]

_KEEPALIVE = (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3))


class ControlError(RuntimeError):
    """The coordinator could not be reached or could not listen."""


def _keepalive(sock: socket.socket) -> None:
    """Detect a vanished peer (e.g. a cut link) within about 11 seconds."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in _KEEPALIVE:
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _send(sock: socket.socket, lock: threading.Lock, message: dict) -> bool:
    data = (json.dumps(message) + "\n").encode()
    with lock:
        try:
            sock.sendall(data)
            return True
        except OSError:
            return False


def _close(sock: socket.socket) -> None:
    """Shut down first: a reader's makefile() would otherwise keep the fd open."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _read_lines(sock: socket.socket, on_message, on_close) -> None:
    reader = sock.makefile("rb")
    try:
        for line in reader:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not ours: ignore rather than crash the launcher
            if isinstance(message, dict):
                on_message(message)
    except (OSError, ValueError):  # ValueError: the socket was closed under us
        pass
    finally:
        on_close()


class Coordinator:
    """Listens for the other launchers and tells them when to stop.

    Args:
        bind: address to listen on.
        port: TCP port to listen on.
        peers: how many other launchers to expect.
        run_id: launchers announcing another run id are ignored.
    """

    def __init__(self, bind: str, port: int, peers: int, run_id: str) -> None:
        self.events: queue.Queue = queue.Queue()
        self.run_id = run_id
        self.expected = peers
        self.status: dict[int, str] = {}  # node -> connected | done | failed | dropped
        self._conns: dict[int, tuple[socket.socket, threading.Lock]] = {}
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._server.bind((bind, port))
        except OSError as exc:
            self._server.close()
            raise ControlError(f"launcher coordinator cannot listen on {bind}:{port}: "
                               f"{exc.strerror}") from None
        self._server.listen(max(peers, 1) + 4)
        threading.Thread(target=self._accept_loop, daemon=True, name="control-accept").start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            _keepalive(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        node_box: list[int] = []

        def on_message(message: dict) -> None:
            node, kind = message.get("node"), message.get("type")
            if not isinstance(node, int):
                return
            if kind == "hello" and message.get("run_id") != self.run_id:
                self.events.put(("rejected", node, message))
                _close(conn)
                return
            if kind == "hello":
                node_box.append(node)
            elif not node_box:
                return  # nothing is accepted before a valid hello
            with self._lock:
                if kind == "hello":
                    self._conns[node] = (conn, threading.Lock())
                    self.status[node] = "connected"
                elif kind == "done":
                    self.status[node] = "done" if message.get("ok") else "failed"
            self.events.put((kind, node, message))

        def on_close() -> None:
            with self._lock:
                for node in node_box:
                    if self.status.get(node) in ("connected", None):
                        self.status[node] = "dropped"
                        self.events.put(("dropped", node, {}))
                    self._conns.pop(node, None)

        _read_lines(conn, on_message, on_close)

    def all_done(self, deadline: float) -> bool:
        """True when every peer is done, failed or gone (or never came by ``deadline``)."""
        with self._lock:
            settled = sum(s in ("done", "failed", "dropped") for s in self.status.values())
            waiting = sum(s == "connected" for s in self.status.values())
        if waiting:
            return False
        return settled >= self.expected or time.monotonic() > deadline

    def missing(self) -> int:
        """How many expected peers never connected."""
        with self._lock:
            return max(self.expected - len(self.status), 0)

    def broadcast_stop(self, ok: bool, exit_code: int) -> None:
        """Tells every connected launcher to stop its processes and exit."""
        with self._lock:
            conns = list(self._conns.values())
        for conn, lock in conns:
            _send(conn, lock, {"type": "stop", "ok": ok, "exit_code": exit_code})

    def close(self) -> None:
        _close(self._server)
        with self._lock:
            for conn, _ in self._conns.values():
                _close(conn)


class Peer:
    """Connects to the coordinator, reports ``done`` and waits for ``stop``.

    Args:
        host: the coordinator's address.
        port: the coordinator's port.
        node: this launcher's node (or task) index.
        timeout: seconds to keep retrying the first connection.
        run_id: announced in ``hello``; the coordinator checks it.
    """

    def __init__(self, host: str, port: int, node: int, timeout: float, run_id: str) -> None:
        self.events: queue.Queue = queue.Queue()
        self.run_id = run_id
        self.node = node
        self._host, self._port, self._timeout = host, port, timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._closing = False
        threading.Thread(target=self._run, daemon=True, name="control-peer").start()

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + self._timeout
        delay = 0.1
        while True:
            try:
                sock = socket.create_connection((self._host, self._port), timeout=5)
                sock.settimeout(None)
                _keepalive(sock)
                return sock
            except OSError as exc:
                if time.monotonic() + delay > deadline:
                    raise ControlError(
                        f"could not reach the launcher coordinator at {self._host}:"
                        f"{self._port} (connect) within {self._timeout:g} s: {exc}. Is the "
                        "launcher of node 0 running, and --master-addr/--port the same?"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _run(self) -> None:
        try:
            sock = self._connect()
        except ControlError as exc:
            self.events.put(("unreachable", -1, {"error": str(exc)}))
            return
        self._sock = sock
        _send(sock, self._lock, {"type": "hello", "node": self.node, "run_id": self.run_id})
        self.events.put(("connected", -1, {}))

        def on_message(message: dict) -> None:
            if message.get("type") == "stop":
                self._closing = True  # the coordinator hangs up next: not a loss
            self.events.put((message.get("type"), -1, message))

        def on_close() -> None:
            if not self._closing:
                self.events.put(("coordinator_lost", -1, {
                    "error": f"lost the connection to the launcher coordinator at "
                             f"{self._host}:{self._port} (the node 0 launcher died or the "
                             "network between the nodes failed); stopping this node"}))

        _read_lines(sock, on_message, on_close)

    def send_done(self, ok: bool, exit_code: int) -> bool:
        """Reports that this launcher's workers have finished."""
        if self._sock is None:
            return False
        message = {"type": "done", "node": self.node, "ok": ok, "exit_code": exit_code}
        return _send(self._sock, self._lock, message)

    def close(self) -> None:
        self._closing = True
        if self._sock is not None:
            _close(self._sock)
