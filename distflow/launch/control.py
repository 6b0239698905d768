"""The channel between the launchers of one run spread over several machines.

One launcher is the coordinator (node 0; OpenMPI rank 0; the TF_CONFIG
chief). It listens on a TCP port; every other launcher connects, says
``hello`` (answered ``welcome``), says ``done`` once its workers have
finished (at once if it runs only servers) and then waits for ``stop``. When
every launcher is done the coordinator sends ``stop``, so parameter servers on
any machine are stopped only after every worker everywhere has finished. A
launcher that reports a failure makes the coordinator stop the whole run.

The channel is a ZeroMQ ROUTER (coordinator) / DEALER (other launchers) pair
through :mod:`distflow.distribute.transport`; each message is one JSON object
(never pickle), at most :data:`MAX_MESSAGE_BYTES`. With a CURVE key directory
(``--keys``) it is encrypted and authenticated like the parameter servers'
traffic: the coordinator is a CURVE server with the run's ``server.key_secret``
and admits only the keys of the ``clients/`` allow-list; a launcher uses a
client key pair of the directory. A connection with another key, or without
CURVE, is refused before any message is read; a launcher whose ``hello``
carries another run id is answered ``refused`` (two runs sharing a port must
not stop each other). Refusals arrive as ``refused`` events, at most one per
:data:`REFUSAL_REPORT_INTERVAL` seconds, counting the rest. Without keys the
channel is plain: anyone who can reach the port can end the run
(docs/security.md).

A peer that goes silent for :data:`LIVENESS` seconds (a dead machine, a cut
link) is dropped. Events arrive on ``events`` (a ``queue.Queue``) as
``(kind, node, payload)`` tuples read by the supervisor's main loop.
"""

from __future__ import annotations

import json
import queue
import threading
import time

from distflow.distribute import transport

__all__ = ["Coordinator", "Peer", "ControlError", "LIVENESS", "MAX_MESSAGE_BYTES"]

LIVENESS = 10.0  # seconds of silence after which a launcher's connection is dropped
MAX_MESSAGE_BYTES = 64 * 1024  # a larger frame disconnects its sender before it is read
REFUSAL_REPORT_INTERVAL = 10.0
POLL_MS = 50


class ControlError(RuntimeError):
    """The coordinator could not be reached, could not listen, or has no usable keys."""


def _encode(message: dict) -> list[bytes]:
    return [json.dumps(message).encode()]


def _decode(frames: list) -> dict | None:
    if len(frames) != 1:
        return None
    try:
        message = json.loads(bytes(frames[0]))
    except ValueError:
        return None  # not ours: ignore rather than crash the launcher
    return message if isinstance(message, dict) else None


def _address(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


class Coordinator:
    """Listens for the other launchers and tells them when to stop.

    Args:
        bind: address to listen on.
        port: TCP port to listen on.
        peers: how many other launchers to expect.
        run_id: launchers announcing another run id are refused.
        keys_dir: the run's CURVE key directory (``--keys``), or None for a plain channel.

    Raises:
        ControlError: the port cannot be bound, or ``keys_dir`` lacks the server
            key pair or the ``clients/`` allow-list.
    """

    def __init__(self, bind: str, port: int, peers: int, run_id: str,
                 keys_dir: str | None = None) -> None:
        self.events: queue.Queue = queue.Queue()
        self.run_id = run_id
        self.expected = peers
        self.status: dict[int, str] = {}  # node -> connected | done | failed | dropped
        self._where = f"{bind}:{port}"
        self._members: dict[bytes, int] = {}  # connection identity -> node
        self._sources: dict[int, bytes] = {}  # connection (file descriptor) -> identity
        self._lock = threading.Lock()
        self._outbox: queue.Queue = queue.Queue()
        self._closing = threading.Event()
        self._refusals = _RefusalReport(self.events, self._where, keys_dir)
        try:
            self._socket = transport.ServerSocket(_address(bind, port), keys_dir,
                                                  max_frame_bytes=MAX_MESSAGE_BYTES,
                                                  liveness=LIVENESS)
        except transport.TransportError as exc:
            raise ControlError(_listen_error(bind, port, keys_dir, exc)) from None
        self._thread = threading.Thread(target=self._loop, daemon=True, name="control")
        self._thread.start()

    def _loop(self) -> None:
        sock = self._socket
        while not self._closing.is_set():
            if sock.poll(POLL_MS):
                while (received := sock.recv_with_source(max_frames=2)) is not None:
                    self._on_message(*received)
            while sock.lost:
                identity = self._sources.pop(sock.lost.popleft(), None)
                if identity is None:
                    self._refusals.anonymous += 1  # ended before a valid hello
                else:
                    self._on_disconnect(identity)
            self._refusals.check(sock)
            self._send_outbox()
        self._send_outbox()
        sock.close(linger=1.0)

    def _send_outbox(self) -> None:
        while True:
            try:
                message = self._outbox.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                members = list(self._members)
            for identity in members:
                self._socket.send(identity, _encode(message))

    def _on_message(self, identity: bytes, frames: list, source: int) -> None:
        message = _decode(frames)
        node = message.get("node") if message else None
        if not isinstance(node, int) or isinstance(node, bool):
            return
        if message.get("type") == "hello":
            return self._on_hello(identity, node, message, source)
        with self._lock:
            if self._members.get(identity) != node:
                return  # nothing is accepted before a valid hello
            if message.get("type") == "done":
                self.status[node] = "done" if message.get("ok") else "failed"
        self.events.put((message.get("type"), node, message))

    def _on_hello(self, identity: bytes, node: int, message: dict, source: int) -> None:
        if message.get("run_id") != self.run_id:
            self._socket.send(identity, _encode({"type": "refused", "error": (
                f"the launcher coordinator at {self._where} runs another run "
                f"({self.run_id!r}, this launcher has {message.get('run_id')!r}); is "
                "another run using the same --port?")}))
            self.events.put(("rejected", node, message))
            return
        with self._lock:
            self._members[identity] = node
            self._sources[source] = identity
            self.status[node] = "connected"
        self._socket.send(identity, _encode({"type": "welcome"}))
        self.events.put(("hello", node, message))

    def _on_disconnect(self, identity: bytes) -> None:
        with self._lock:
            node = self._members.pop(identity, None)
            if node is None or self.status.get(node) != "connected":
                return
            self.status[node] = "dropped"
        self.events.put(("dropped", node, {}))

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
        self._outbox.put({"type": "stop", "ok": ok, "exit_code": exit_code})

    def close(self) -> None:
        """Sends what is queued (``stop``), then closes the channel."""
        self._closing.set()
        self._thread.join(timeout=5.0)


def _listen_error(bind: str, port: int, keys_dir: str | None, exc: Exception) -> str:
    if keys_dir and "bind" not in str(exc).lower():
        return (f"the launcher coordinator cannot use the CURVE keys of --keys {keys_dir}: "
                f"{exc} (it needs server.key_secret and the clients/ allow-list, like a "
                "parameter server)")
    return f"launcher coordinator cannot listen on {bind}:{port}: {exc}"


class _RefusalReport:
    """Turns the socket's refused handshakes into ``refused`` events, one per interval."""

    def __init__(self, events: queue.Queue, where: str, keys_dir: str | None) -> None:
        self.events, self.where, self.keys_dir = events, where, keys_dir
        self.seen = self.reported = self.anonymous = 0
        self.last = float("-inf")

    def check(self, sock: transport.ServerSocket) -> None:
        keys = sock.allow_list.refused if sock.allow_list is not None else 0
        self.seen = max(sock.events["refused"], keys, self.anonymous)
        now = time.monotonic()
        if self.seen == self.reported or now - self.last < REFUSAL_REPORT_INTERVAL:
            return
        held = self.seen - self.reported - 1
        more = f" ({held} more since the last report)" if held > 0 else ""
        self.last, self.reported = now, self.seen
        self.events.put(("refused", -1, {"count": self.seen, "error": (
            f"refused a connection to the launcher coordinator at {self.where}: "
            f"{self._why(keys)}{more}; {self.seen} refused so far")}))

    def _why(self, key_refusals: int) -> str:
        if key_refusals:
            return (f"its CURVE key is not in the allow-list of --keys {self.keys_dir} "
                    "(clients/*.key)")
        if self.keys_dir:
            return ("it did not complete the CURVE handshake (a plain connection, or a "
                    "launcher without the run's --keys)")
        return "it never said a valid hello (not a distflow launcher of this run?)"


def _client_keys(keys_dir: str, node: int) -> tuple[bytes, bytes, bytes]:
    try:
        return transport.client_curve_keys(keys_dir, node)
    except transport.TransportError as exc:
        raise ControlError(f"this launcher cannot use the CURVE keys of --keys {keys_dir} "
                           f"for the launcher channel: {exc}") from None


class Peer:
    """Connects to the coordinator, reports ``done`` and waits for ``stop``.

    Args:
        host: the coordinator's address.
        port: the coordinator's port.
        node: this launcher's node (or task) index.
        timeout: seconds to wait for the coordinator's ``welcome``.
        run_id: announced in ``hello``; the coordinator checks it.
        keys_dir: the run's CURVE key directory (``--keys``), or None for a plain
            channel; this launcher uses client key ``node`` of it (modulo the keys present).

    Raises:
        ControlError: ``keys_dir`` holds no client key pair or no ``server.key``.
    """

    def __init__(self, host: str, port: int, node: int, timeout: float, run_id: str,
                 keys_dir: str | None = None) -> None:
        self.events: queue.Queue = queue.Queue()
        self.run_id = run_id
        self.node = node
        self._host, self._port, self._timeout = host, port, timeout
        self._keys_dir = keys_dir
        self._keys = _client_keys(keys_dir, node) if keys_dir else None
        self._outbox: queue.Queue = queue.Queue()
        self._welcomed = threading.Event()
        self._closing = threading.Event()
        self._stopped = False  # a `stop` came: the coordinator hangs up next, not a loss
        self._thread = threading.Thread(target=self._run, daemon=True, name="control-peer")
        self._thread.start()

    def _run(self) -> None:
        try:
            sock = transport.ClientSocket(_address(self._host, self._port), self._keys,
                                          liveness=LIVENESS)
        except transport.TransportError as exc:
            self._end("unreachable", f"cannot reach the launcher coordinator: {exc}")
            return
        sock.send(_encode({"type": "hello", "node": self.node, "run_id": self.run_id}))
        deadline = time.monotonic() + self._timeout
        try:
            while not self._closing.is_set() and self._step(sock, deadline):
                pass
            self._flush(sock)
        finally:
            sock.close()

    def _step(self, sock: transport.ClientSocket, deadline: float) -> bool:
        """One turn of the loop; False once the channel is over."""
        self._flush(sock)
        if transport.poll_clients([sock], POLL_MS):
            while (frames := sock.recv()) is not None:
                if not self._on_message(_decode(frames) or {}):
                    return False
        for event in sock.connection_events():
            if not self._on_connection(event):
                return False
        if not self._welcomed.is_set() and time.monotonic() > deadline:
            return self._end("unreachable", (
                f"could not reach the launcher coordinator at {self._host}:{self._port} "
                f"(connect) within {self._timeout:g} s: no answer. Is the launcher of node "
                "0 running, with the same --master-addr/--port and --keys?"))
        return True

    def _flush(self, sock: transport.ClientSocket) -> None:
        while self._welcomed.is_set() and not self._outbox.empty():
            sock.send(_encode(self._outbox.get_nowait()))

    def _on_message(self, message: dict) -> bool:
        kind = message.get("type")
        if kind == "welcome":
            self._welcomed.set()
            self.events.put(("connected", -1, {}))
        elif kind == "refused":
            return self._end("unreachable", str(message.get("error")))
        elif kind is not None:
            self._stopped = self._stopped or kind == "stop"
            self.events.put((kind, -1, message))
        return True

    def _on_connection(self, event: str) -> bool:
        where = f"the launcher coordinator at {self._host}:{self._port}"
        if event == "refused":
            return self._end("unreachable", (
                f"{where} refused this launcher's CURVE key (--keys {self._keys_dir}): its "
                "client key is not in the coordinator's clients/ allow-list. Give every "
                "launcher the run's key directory."))
        if event == "protocol":
            return self._end("unreachable", (
                f"{where} does not speak this launcher's protocol: one launcher has --keys "
                "and the other not (or another program listens on that port)"))
        if event == "disconnected" and self._welcomed.is_set() and not self._stopped:
            return self._end("coordinator_lost", (
                f"lost the connection to {where} (the node 0 launcher died or the network "
                "between the nodes failed); stopping this node"))
        return True

    def _end(self, kind: str, error: str) -> bool:
        if not self._closing.is_set():
            self.events.put((kind, -1, {"error": error}))
        return False

    def send_done(self, ok: bool, exit_code: int) -> bool:
        """Reports that this launcher's workers have finished; False before ``welcome``."""
        if not self._welcomed.is_set():
            return False
        self._outbox.put({"type": "done", "node": self.node, "ok": ok, "exit_code": exit_code})
        return True

    def close(self) -> None:
        """Sends what is queued, then closes the connection."""
        self._closing.set()
        self._thread.join(timeout=5.0)
