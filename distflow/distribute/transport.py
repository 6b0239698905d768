"""ZeroMQ transport: the only module of distflow that imports zmq.

Servers use a ROUTER socket, clients one DEALER socket per server. Frames of at
least `COPY_THRESHOLD` bytes are sent without copying and every message is
received with `copy=False`, so the protocol layer builds arrays directly on the
received buffers. With a CURVE key directory every socket encrypts, and the
server runs a ZAP authenticator that admits only the client public keys found in
the directory's allow-list (see docs/security.md for the layout).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from distflow.distribute.cache import LRU

log = logging.getLogger("distflow.transport")

COPY_THRESHOLD = 256 * 1024  # below, a copy is cheaper than pyzmq's zero-copy bookkeeping
# Plain ints: combining pyzmq's enum flags costs microseconds on every call of the hot path.
_NOBLOCK, _SNDMORE, _POLLIN = int(zmq.NOBLOCK), int(zmq.SNDMORE), int(zmq.POLLIN)
_EVENTS = int(zmq.EVENTS)
_NOBLOCK_SNDMORE = _NOBLOCK | _SNDMORE
# pyzmq's Cython socket methods, called directly on the hot path: the Python layer above
# them (send_multipart, recv_multipart) spends microseconds a frame on flag enums and
# type checks. Same semantics: a frame below the socket's copy_threshold is still copied.
_send_frame, _recv_frame = zmq.backend.Socket.send, zmq.backend.Socket.recv
SERVER_KEY = "server"
CLIENTS_DIR = "clients"

_HANDSHAKE_FAILURES = {
    getattr(zmq, "EVENT_HANDSHAKE_FAILED_NO_DETAIL", -1): "handshake failed",
    getattr(zmq, "EVENT_HANDSHAKE_FAILED_PROTOCOL", -2): "handshake failed (protocol "
    "mismatch: a client without CURVE keys, or not a distflow peer)",
    getattr(zmq, "EVENT_HANDSHAKE_FAILED_AUTH", -3): "authentication refused (client key "
    "not in the allow-list)",
}


class TransportError(RuntimeError):
    """A socket could not be set up (bind/connect/keys)."""


def context() -> zmq.Context:
    """The process-wide ZeroMQ context."""
    return zmq.Context.instance()


class RateLimitedLog:
    """Log lines of one kind at most once per `interval` seconds, counting the rest.

    A line held back is counted; the next line of its kind says how many were
    held back since the previous one, so a flood costs one line per interval.

    Args:
        logger: where lines go.
        interval: seconds between two lines of one kind.
        clock: monotonic time source (tests pass their own).
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Any = time.monotonic):
        self.logger, self.interval, self.clock = logger, interval, clock
        # kind -> [time of the last line, lines held]; kinds are a few fixed names
        self._kinds: LRU[str, list] = LRU(256)

    def warning(self, kind: str, message: str, *args: Any) -> bool:
        """Logs `message % args` unless a `kind` line went out within the interval;
        returns whether it was logged."""
        return self._log(logging.WARNING, kind, message, *args)

    def error(self, kind: str, message: str, *args: Any) -> bool:
        """As `warning`, at level ERROR."""
        return self._log(logging.ERROR, kind, message, *args)

    def _log(self, level: int, kind: str, message: str, *args: Any) -> bool:
        now = self.clock()
        state = self._kinds.get(kind)
        if state is not None and now - state[0] < self.interval:
            state[1] += 1
            return False
        held = state[1] if state is not None else 0
        if held:
            message += f" ({held} more like this in the last {now - state[0]:.0f} s)"
        self._kinds.put(kind, [now, 0])
        self.logger.log(level, message, *args)
        return True


# ------------------------------------------------------------------ keys

def generate_keys(directory: str | os.PathLike, num_clients: int,
                  overwrite: bool = False) -> list[Path]:
    """Writes a server key pair and `num_clients` client key pairs into `directory`.

    Layout: `server.key` / `server.key_secret`, and `clients/client-<i>.key` /
    `clients/client-<i>.key_secret`. The public `clients/*.key` files are the
    server's allow-list. Secret files are created with mode 0600 (the process
    umask is tightened while writing, so they are never readable by others)
    and the directories with 0700.

    Args:
        directory: created if missing.
        num_clients: client key pairs to make, >= 1.
        overwrite: replace existing keys (running peers then lose access).

    Returns:
        The paths of the files written.

    Raises:
        ValueError: `num_clients` < 1, or keys already present without `overwrite`.
    """
    if not isinstance(num_clients, int) or num_clients < 1:
        raise ValueError(f"`num_clients` must be a positive int. Received: {num_clients!r}")
    root = Path(directory)
    if (root / f"{SERVER_KEY}.key_secret").exists() and not overwrite:
        raise ValueError(f"{root} already holds keys; pass overwrite=True (CLI: --force) to "
                         f"replace them. Running servers and workers would lose access.")
    clients = root / CLIENTS_DIR
    old_umask = os.umask(0o077)
    try:
        clients.mkdir(parents=True, exist_ok=True)
        for folder in (root, clients):
            os.chmod(folder, 0o700)
        written = list(zmq.auth.create_certificates(str(root), SERVER_KEY))
        for i in range(num_clients):
            written.extend(zmq.auth.create_certificates(str(clients), f"client-{i}"))
    finally:
        os.umask(old_umask)
    for path in written:
        os.chmod(path, 0o600 if str(path).endswith("_secret") else 0o644)
    return [Path(p) for p in written]


def describe_keys(directory: str | os.PathLike) -> dict[str, Any]:
    """What a key directory holds: public keys, secret files and their permissions."""
    root = Path(directory)
    info: dict[str, Any] = {"server": None, "clients": [], "loose_secrets": []}
    if (root / f"{SERVER_KEY}.key").is_file():
        info["server"] = server_public_key(root).decode("ascii")
    for path in sorted((root / CLIENTS_DIR).glob("*.key")):
        public, _ = _load(path)
        info["clients"].append({"name": path.stem, "public": public.decode("ascii"),
                                "has_secret": path.with_suffix(".key_secret").is_file()})
    for path in [root / f"{SERVER_KEY}.key_secret", *(root / CLIENTS_DIR).glob("*.key_secret")]:
        if path.is_file() and path.stat().st_mode & 0o077:
            info["loose_secrets"].append(str(path))
    return info


def server_keys(directory: str | os.PathLike) -> tuple[bytes, bytes]:
    """The server's (public, secret) key pair from a key directory."""
    return _load_pair(Path(directory) / f"{SERVER_KEY}.key_secret")


def client_keys(directory: str | os.PathLike, index: int) -> tuple[bytes, bytes]:
    """A client key pair: `client-<index mod count>` from the key directory."""
    clients = sorted((Path(directory) / CLIENTS_DIR).glob("client-*.key_secret"),
                     key=lambda p: int(p.name.split("-")[1].split(".")[0]))
    if not clients:
        raise TransportError(f"No client keys in {Path(directory) / CLIENTS_DIR}. Make a "
                             f"key directory with `python -m distflow.keys generate DIR`.")
    return _load_pair(clients[index % len(clients)])


def server_public_key(directory: str | os.PathLike) -> bytes:
    """The server's public key (all a client needs to know about the server)."""
    path = Path(directory) / f"{SERVER_KEY}.key"
    public, _ = _load(path)
    return public


def allowed_client_keys(directory: str | os.PathLike) -> set[bytes]:
    """The z85 public keys of the allow-list (`clients/*.key`)."""
    path = Path(directory) / CLIENTS_DIR
    if not path.is_dir():
        raise TransportError(f"CURVE key directory {directory} has no `{CLIENTS_DIR}/` "
                             f"allow-list. Make one with `python -m distflow.keys generate DIR`.")
    return set(zmq.auth.load_certificates(str(path)))


def _load_pair(path: Path) -> tuple[bytes, bytes]:
    public, secret = _load(path)
    if not secret:
        raise TransportError(f"Key file {path} holds no secret key.")
    return public, secret


def _load(path: Path) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise TransportError(f"Missing CURVE key file {path}. Make a key directory with "
                             f"`python -m distflow.keys generate DIR`.")
    return zmq.auth.load_certificate(str(path))


# ------------------------------------------------------------------ server side

class _AllowList:
    """ZAP credentials provider: admits listed keys, counts every refusal and logs them
    at most once per 10 s (a refused client retries about 10 times a second)."""

    def __init__(self, allowed: set[bytes], address: str = ""):
        self.allowed = allowed
        self.address = address
        self.refused = 0
        self.refused_keys: set[bytes] = set()  # distinct refused keys (at most 1024 kept)
        self._log = RateLimitedLog(log)

    def callback(self, domain: str, key: bytes) -> bool:
        ok = key in self.allowed
        if not ok:
            self.refused += 1
            if len(self.refused_keys) < 1024:
                self.refused_keys.add(key)
            self._log.warning("curve", "Refused a CURVE client on %s: public key %s is not in "
                              "the allow-list (%d refusals from %d keys so far)",
                              self.address or domain, key.decode("ascii", "replace"),
                              self.refused, len(self.refused_keys))
        return ok


class _Authenticator:
    """One ZAP handler per process, shared by every CURVE server socket in it.

    libzmq allows a single ZAP endpoint per context, so servers running in one
    process (tests, a node hosting two shards) each get their own ZAP domain and
    allow-list on the shared handler, which starts with the first CURVE server
    socket and is never stopped.
    """

    _lock = threading.Lock()
    _thread: ThreadAuthenticator | None = None
    _users = 0
    _next_domain = 0

    @classmethod
    def register(cls, provider: _AllowList) -> str:
        with cls._lock:
            if cls._thread is None:
                cls._thread = ThreadAuthenticator(context(), log=logging.getLogger("distflow.zap"))
                cls._thread.start()
            cls._users += 1
            cls._next_domain += 1
            domain = f"distflow-{os.getpid()}-{cls._next_domain}"
            cls._thread.configure_curve_callback(domain, provider)
            return domain

    @classmethod
    def unregister(cls, domain: str) -> None:
        """Forgets `domain`'s allow-list. The handler itself (a daemon thread) stays for
        the process's life: libzmq releases its endpoint asynchronously, so a handler
        started again right after a stop could not bind it."""
        with cls._lock:
            if cls._thread is None:
                return
            cls._thread.credentials_providers.pop(domain, None)
            cls._users -= 1


class ServerSocket:
    """A bound ROUTER socket, optionally CURVE-encrypted with a client allow-list.

    Args:
        address: `tcp://host:port`; port 0 (or `*`) binds a free port.
        keys_dir: CURVE key directory, or None for plain TCP.
        max_frame_bytes: libzmq MAXMSGSIZE: a peer sending a larger frame is
            disconnected before the frame is buffered (memory protection).
        max_queued: replies queued in libzmq for one peer (SNDHWM). Replies
            beyond wait in this object (`flush` sends them as the peer reads),
            up to `max_deferred_bytes` per peer; more are dropped and counted
            (`events`), so a peer that never reads cannot grow the server.
        max_deferred_bytes: bytes of replies waiting here for one peer.
        liveness: seconds of silence after which a connection is dropped (ZMTP
            heartbeats); with it, `lost` lists the connections that ended (see
            `recv_with_source`). None: neither.
    """

    def __init__(self, address: str, keys_dir: str | None = None,
                 max_frame_bytes: int = -1, max_queued: int = 1000,
                 max_deferred_bytes: int = 256 * 1024**2, liveness: float | None = None):
        self.socket = context().socket(zmq.ROUTER)
        self.socket.copy_threshold = COPY_THRESHOLD
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.lost: deque | None = None  # file descriptors of ended connections
        if liveness is not None:
            _heartbeats(self.socket, liveness)
            self.lost = deque(maxlen=1024)
        _ipv6_if_needed(self.socket, address)
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes)
        self.socket.setsockopt(zmq.SNDHWM, max_queued)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full queue raises: counted
        self.events: Counter = Counter()  # connection events seen by the monitor
        self._log = RateLimitedLog(log)
        self.max_deferred_bytes = max_deferred_bytes
        self._deferred: dict[bytes, deque] = {}  # peer -> replies its full queue refused
        self._deferred_bytes: dict[bytes, int] = {}
        self._zap_domain: str | None = None
        self.allow_list: _AllowList | None = None
        if keys_dir:
            self._setup_curve(keys_dir)
        self.monitor = self.socket.get_monitor_socket()
        self.address = self._bind(address)
        if self.allow_list is not None:
            self.allow_list.address = self.address
        self.poller = zmq.Poller()
        self.poller.register(self.socket, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    def _setup_curve(self, keys_dir: str) -> None:
        try:
            public, secret = server_keys(keys_dir)
            self.allow_list = _AllowList(allowed_client_keys(keys_dir))
        except TransportError:
            self.socket.close(linger=0)
            raise
        self._zap_domain = _Authenticator.register(self.allow_list)
        self.socket.zap_domain = self._zap_domain.encode()
        self.socket.curve_secretkey = secret
        self.socket.curve_publickey = public
        self.socket.curve_server = True

    def _bind(self, address: str) -> str:
        host, _, port = address.rpartition(":")
        try:
            if port in ("0", "*"):
                chosen = self.socket.bind_to_random_port(host)
                return f"{host}:{chosen}"
            self.socket.bind(address)
        except zmq.ZMQError as exc:
            self.close()
            raise TransportError(f"Cannot bind the parameter server to {address}: {exc}. "
                                 f"Is another process using the port?") from None
        return address

    def poll(self, timeout_ms: int) -> bool:
        """Waits up to `timeout_ms` for a message; handles monitor events. True if one waits."""
        ready = False
        for sock, _ in self.poller.poll(timeout_ms):
            if sock is self.monitor:
                self._drain_monitor()
            else:
                ready = True
        return ready

    def _drain_monitor(self) -> None:
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)
            what = _HANDSHAKE_FAILURES.get(event["event"])
            if what:
                self.events["refused"] += 1
                self._log.warning(what, "Refused a connection on %s: %s (endpoint %s; %d "
                                  "refused so far)", self.address, what,
                                  event.get("endpoint", b"").decode("utf-8", "replace"),
                                  self.events["refused"])
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                # Also what a peer sending a frame above MAXMSGSIZE gets.
                self.events["disconnected"] += 1
                if self.lost is not None:
                    self.lost.append(event["value"])
            elif event["event"] == zmq.EVENT_ACCEPTED:
                self.events["accepted"] += 1

    def recv(self, max_frames: int | None = None,
             polled: bool = False) -> tuple[bytes, list[Any], int] | None:
        """One message without blocking: (peer identity, frames, frames dropped), or None.

        Frames beyond `max_frames` are read and dropped at once, so a message of
        millions of tiny frames cannot pile up Python objects. `polled`: `poll`
        just said a message waits (no need to ask the socket again).
        """
        if not polled and not self.socket.getsockopt(_EVENTS) & _POLLIN:
            return None  # cheaper than the exception of an empty NOBLOCK receive
        # The identity frame comes first: one more frame than the message's own.
        received = _recv_message(self.socket, None if max_frames is None else max_frames + 1)
        if received is None:
            return None
        frames, dropped = received
        return bytes(frames[0]), frames[1:], dropped

    def recv_with_source(self, max_frames: int) -> tuple[bytes, list[Any], int] | None:
        """As `recv`, but the third item is the file descriptor of the connection the
        message came on: the number that `lost` holds once that connection ends."""
        try:
            first = _recv_frame(self.socket, _NOBLOCK, False)
        except zmq.Again:
            return None
        source = first.get(zmq.SRCFD)
        frames = _recv_message(self.socket, max_frames)[0] if first.more else []
        return bytes(first.buffer), frames, source

    def send(self, identity: bytes, frames: Sequence[Any], track: bool = False):
        """Sends a reply to `identity`; with `track`, returns a `Release` for its big frames.

        Never blocks: a reply to a peer whose libzmq queue is full (`max_queued`
        unsent replies) waits here, behind the others waiting for that peer,
        until `flush` can send it; past `max_deferred_bytes` waiting, or to a
        peer that is gone, it is dropped, counted in `events` and logged at most
        once per 10 s.
        """
        if identity in self._deferred:
            self._defer(identity, frames)  # (behind the replies waiting already)
        elif not self._send_now(identity, frames):
            return None
        return Release(frames) if track else None

    def _send_now(self, identity: bytes, frames: Sequence[Any]) -> bool:
        """Sends at once or defers; False when the reply was dropped."""
        try:
            _send_frame(self.socket, identity, _NOBLOCK_SNDMORE, True, False)
            _send_all(self.socket, frames, _NOBLOCK)
        except zmq.Again:
            return self._defer(identity, frames)
        except zmq.ZMQError:  # EHOSTUNREACH: the peer disconnected
            self._dropped("replies_unroutable", "it is gone")
            return False
        return True

    def _defer(self, identity: bytes, frames: Sequence[Any]) -> bool:
        size = sum(memoryview(f).nbytes for f in frames)
        waiting = self._deferred_bytes.get(identity, 0)
        if waiting + size > self.max_deferred_bytes:
            self._dropped("replies_dropped", f"{waiting} bytes of replies wait for it already "
                          f"(it does not read them)")
            return False
        self._deferred.setdefault(identity, deque()).append(frames)
        self._deferred_bytes[identity] = waiting + size
        self.events["replies_deferred"] += 1
        return True

    def flush(self) -> None:
        """Sends the deferred replies that the peers' queues now take, oldest first."""
        for identity in list(self._deferred):
            queue = self._deferred[identity]
            try:
                while queue:
                    _send_frame(self.socket, identity, _NOBLOCK_SNDMORE, True, False)
                    _send_all(self.socket, queue[0], _NOBLOCK)
                    self._deferred_bytes[identity] -= sum(memoryview(f).nbytes
                                                          for f in queue.popleft())
            except zmq.Again:
                continue  # still full: the rest waits
            except zmq.ZMQError:  # gone: its replies can never be delivered
                self.events["replies_unroutable"] += len(queue)
                queue.clear()
            del self._deferred[identity], self._deferred_bytes[identity]

    def _dropped(self, kind: str, why: str) -> None:
        self.events[kind] += 1
        self._log.warning(kind, "Dropped a reply to a peer of %s: %s (%d %s so far)",
                          self.address, why, self.events[kind], kind.replace("_", " "))

    def close(self, linger: float = 0.0) -> None:
        """Closes the socket (after up to `linger` seconds of sending what is queued)
        and stops the authenticator."""
        if getattr(self, "monitor", None) is not None:
            self.socket.disable_monitor()
            self.monitor.close(linger=0)
            self.monitor = None
        self.socket.close(linger=int(linger * 1000))
        if self._zap_domain is not None:
            _Authenticator.unregister(self._zap_domain)
            self._zap_domain = None


def _heartbeats(sock: zmq.Socket, liveness: float) -> None:
    """ZMTP heartbeats: a connection silent for `liveness` seconds is dropped."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, max(int(liveness * 1000) // 5, 100))
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(liveness * 1000))
    sock.setsockopt(zmq.HEARTBEAT_TTL, int(liveness * 1000))


def _ipv6_if_needed(sock: zmq.Socket, address: str) -> None:
    if ":" in address.rpartition(":")[0].removeprefix("tcp://"):
        sock.setsockopt(zmq.IPV6, 1)


class Release:
    """Tells when libzmq has let go of the zero-copy frames of a sent message.

    pyzmq keeps each frame object sent with `copy=False` alive until libzmq
    has written it, so a weak reference to each large memoryview frame dies
    exactly then. This costs a few weak references, where pyzmq's own
    `track=True` costs hundreds of microseconds per message.
    """

    __slots__ = ("_refs",)

    def __init__(self, frames: Sequence[Any]):
        self._refs = [weakref.ref(f) for f in frames
                      if isinstance(f, memoryview) and f.nbytes >= COPY_THRESHOLD]

    @property
    def done(self) -> bool:
        return all(ref() is None for ref in self._refs)


def tracker_done(tracker: Any) -> bool:
    """True when a zero-copy send no longer references its buffers."""
    return tracker is None or tracker.done


# ------------------------------------------------------------------ client side

class ClientSocket:
    """A DEALER socket connected to one server.

    Args:
        address: the server's `tcp://host:port`.
        keys: (server public key, client public key, client secret key) for
            CURVE, or None.
        liveness: seconds of silence after which the connection is dropped
            (ZMTP heartbeats; `connection_events` then says "disconnected").
    """

    def __init__(self, address: str, keys: tuple[bytes, bytes, bytes] | None = None,
                 liveness: float | None = None):
        self.address = address
        self.socket = context().socket(zmq.DEALER)
        self.socket.copy_threshold = COPY_THRESHOLD
        self.socket.setsockopt(zmq.LINGER, 0)
        if liveness is not None:
            _heartbeats(self.socket, liveness)
        _ipv6_if_needed(self.socket, address)
        if keys is not None:
            server_public, public, secret = keys
            self.socket.curve_serverkey = server_public
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
        try:
            self.socket.connect(address)
        except zmq.ZMQError as exc:
            self.socket.close(linger=0)
            raise TransportError(f"Cannot connect to parameter server {address!r}: {exc}. "
                                 f"Addresses look like tcp://127.0.0.1:5555.") from None
        self._poller = zmq.Poller()  # kept: pyzmq's Socket.poll builds one per call
        self._poller.register(self.socket, zmq.POLLIN)
        # Connection events: a server that went away and came back (`reconnected`).
        self._monitor = self.socket.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED |
            zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        self._lost = False

    def connection_events(self) -> list[str]:
        """What happened to the connection since the last call, oldest first:
        "connected", "handshake_succeeded", "disconnected", "refused" (the server
        refused our CURVE key) or "protocol" (one side has CURVE keys, the other not).
        (Not to be mixed with `reconnected`: both read the same events.)"""
        names = {zmq.EVENT_CONNECTED: "connected", zmq.EVENT_DISCONNECTED: "disconnected",
                 zmq.EVENT_HANDSHAKE_SUCCEEDED: "handshake_succeeded",
                 zmq.EVENT_HANDSHAKE_FAILED_AUTH: "refused",
                 zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol"}
        events = []
        while self._monitor.poll(0):
            events.append(names[recv_monitor_message(self._monitor)["event"]])
        return events

    def reconnected(self) -> bool:
        """True once after the connection dropped and was made again (a restarted server):
        requests sent before may have been lost with it and should be sent again."""
        again = False
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self._lost = True
            elif event == zmq.EVENT_CONNECTED and self._lost:
                self._lost, again = False, True
        return again

    def send(self, frames: Sequence[Any]) -> bool:
        """Queues a message (large frames are not copied); False when it cannot be queued.

        Never blocks: a socket with no usable connection (e.g. its CURVE handshake
        was refused) would block a plain send forever. The caller's timeout and
        retries then decide, as for a lost message.
        """
        try:
            _send_all(self.socket, frames, _NOBLOCK)
        except zmq.Again:
            return False
        return True

    def recv(self) -> list[Any] | None:
        """One message without blocking (frame buffers), or None."""
        received = _recv_message(self.socket, None)
        return None if received is None else received[0]

    def close(self) -> None:
        self.socket.disable_monitor()
        self._monitor.close(linger=0)
        self.socket.close(linger=0)


def _recv_message(sock: zmq.Socket, max_frames: int | None) -> tuple[list[Any], int] | None:
    """One message without blocking: (frame buffers, frames dropped past `max_frames`),
    or None (`Socket.recv_multipart` without its Python layer)."""
    try:
        frame = _recv_frame(sock, _NOBLOCK, False)
    except zmq.Again:
        return None
    frames, dropped = [frame.buffer], 0
    limit = float("inf") if max_frames is None else max_frames
    while frame.more:
        frame = _recv_frame(sock, 0, False)  # the rest of a message is already here
        if len(frames) < limit:
            frames.append(frame.buffer)
        else:
            dropped += 1
    return frames, dropped


def _send_all(sock: zmq.Socket, frames: Sequence[Any], flags: int) -> None:
    """Sends `frames` as one message: all but the last with SNDMORE; zero-copy from
    the socket's copy_threshold up (`Socket.send_multipart` without its Python layer)."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        _send_frame(sock, frame, flags if i == last else flags | _SNDMORE, False, False)


def poll_clients(sockets: Sequence[ClientSocket], timeout_ms: int) -> list[ClientSocket]:
    """Waits up to `timeout_ms` for any socket to be readable; returns the readable ones."""
    if len(sockets) == 1:  # the common case: one server, its own Poller
        return list(sockets) if sockets[0]._poller.poll(timeout_ms) else []
    poller = zmq.Poller()
    for sock in sockets:
        poller.register(sock.socket, zmq.POLLIN)
    ready = dict(poller.poll(timeout_ms))
    return [s for s in sockets if s.socket in ready]


def client_curve_keys(keys_dir: str, index: int) -> tuple[bytes, bytes, bytes]:
    """(server public, client public, client secret) for client `index` of `keys_dir`."""
    public, secret = client_keys(keys_dir, index)
    return server_public_key(keys_dir), public, secret
