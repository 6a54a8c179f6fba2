"""The presence stream (Server-Sent Events) as an iterator that resumes by
itself: on a drop or a server restart it reconnects with ``Last-Event-ID``,
so the events it missed arrive first, each once."""
import http.client
import json
import random
import socket
import threading
from typing import TYPE_CHECKING, Any, Generator, Iterator, List, Optional, TypedDict

from .errors import UsersdError

if TYPE_CHECKING:  # pragma: no cover
    from .client import UserManagementService


STREAM_PATH = "/api/users/presence/stream/"
_MAX_LINE = 16 * 1024 * 1024  # a snapshot of 1000 users is well under this


class Event(TypedDict):
    """One event of the stream."""
    event: str  #: "presence", "status_message", "dnd", "snapshot", "resync"...
    id: Optional[int]  #: its position (None for snapshot and resync)
    data: Any  #: the parsed JSON of its data (a dict), or the text if not JSON


def _retryable(err: UsersdError) -> bool:
    """Worth another attempt: no reply at all, too many requests, or the
    server (or a proxy before it) failing for now."""
    return err.status == 0 or err.status == 429 or err.status >= 500


class EventStream(Generator[Event, None, None]):
    """A generator of :class:`Event` dicts from ``GET
    /api/users/presence/stream/``; made by
    :meth:`UserManagementService.stream`. Unlike a plain generator it may
    be closed from another thread, and it is a context manager.

    ``last_event_id`` is the position of the last event handed out (or of
    a ``resync``): the place a new stream would resume from.
    """

    def __init__(self, service: "UserManagementService", ids: Optional[List[int]],
                 last_event_id: Optional[str], *, read_timeout: float,
                 retry_initial: Optional[float], retry_max: float,
                 max_retries: Optional[int]) -> None:
        self._svc = service
        self.ids = ids
        self.last_event_id: Optional[int] = None if last_event_id is None else int(last_event_id)
        self._connections = 0
        self._read_timeout = read_timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._max_retries = max_retries
        self._retry_hint: Optional[float] = None  # the server's "retry:", seconds
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._conn: Optional[http.client.HTTPConnection] = None
        self._sock: Optional[socket.socket] = None
        self._gen = self._run()

    def __iter__(self) -> "EventStream":
        return self

    def __next__(self) -> Event:
        return next(self._gen)

    def send(self, value: None) -> Event:
        """As a generator's: the same as next()."""
        return self._gen.send(value)

    def throw(self, *args: Any) -> Event:  # type: ignore[override]
        """As a generator's: raises the exception inside it (which closes
        its connection) and returns what it yields next, if anything."""
        return self._gen.throw(*args)

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def reconnects(self) -> int:
        """How many times it connected again after the first connection."""
        return max(0, self._connections - 1)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed.is_set()

    def close(self) -> None:
        """Ends the stream: the connection is closed and iteration stops.
        Safe from any thread, also while another thread waits for the next
        event (that wait then ends with StopIteration)."""
        self._closed.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv
            except OSError:
                pass
        try:
            self._gen.close()
        except ValueError:
            pass  # iterating in another thread: it stops at its next read

    # ------------------------------------------------------------- internals

    def _delay(self, failures: int, err: UsersdError) -> float:
        base = self._retry_initial
        if base is None:
            base = self._retry_hint if self._retry_hint is not None else 1.0
        delay = min(self._retry_max, base * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
        if err.retry_after:
            delay = max(delay, min(err.retry_after, self._retry_max))
        return delay

    def _run(self) -> Iterator[Event]:
        failures = 0
        err = UsersdError(0, "not connected yet")
        try:
            while not self._closed.is_set():
                if failures:
                    if self._max_retries is not None and failures > self._max_retries:
                        raise err
                    if self._closed.wait(self._delay(failures, err)):
                        return
                try:
                    if self.last_event_id is None and self.ids is None:
                        # Start from a known position, so that a drop before
                        # the first event loses nothing. (With ids the
                        # snapshot is the start, and a reconnect without a
                        # position gets a fresh one.)
                        self.last_event_id = int(self._svc.changes()["next_since"])
                    resp = self._open()
                except UsersdError as e:
                    if self._closed.is_set():
                        return
                    if not _retryable(e):
                        raise
                    failures, err = failures + 1, e
                    continue
                self._connections += 1
                failures = 0
                try:
                    yield from self._events(resp)
                    why = "usersd ended the stream"
                except (OSError, http.client.HTTPException, ValueError) as e:
                    why = "the stream broke: %s" % (str(e) or type(e).__name__)
                finally:
                    self._disconnect()
                failures, err = 1, UsersdError(0, why)
        finally:
            self._disconnect()

    def _open(self) -> http.client.HTTPResponse:
        svc = self._svc
        conn = svc._connection()
        try:
            conn.connect()
            sock = conn.sock
            with self._lock:
                self._conn, self._sock = conn, sock
            if self._closed.is_set():
                raise UsersdError(0, "the stream was closed")
            headers = svc._headers({"Accept": "text/event-stream", "Cache-Control": "no-cache"})
            if self.last_event_id is not None:
                headers["Last-Event-ID"] = str(self.last_event_id)
            query = None if self.ids is None else {"ids": ",".join(map(str, self.ids))}
            conn.request("GET", svc._target(STREAM_PATH, query), headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                payload = resp.read()
                parsed = None
                try:
                    parsed = json.loads(payload) if payload else None
                except ValueError:
                    pass
                raise svc._error(resp, parsed)
            sock.settimeout(self._read_timeout)  # keepalives come every 15 s
            return resp
        except UsersdError:
            self._disconnect()
            raise
        except (OSError, http.client.HTTPException) as e:
            self._disconnect()
            raise UsersdError(0, "could not reach usersd at %s: %s"
                              % (svc.base_url, str(e) or type(e).__name__)) from e

    def _disconnect(self) -> None:
        with self._lock:
            conn, self._conn, self._sock = self._conn, None, None
        if conn is not None:
            conn.close()

    def _events(self, resp: http.client.HTTPResponse) -> Iterator[Event]:
        """Parses the event stream (the WHATWG rules usersd needs: fields
        event, data, id, retry; comments; a blank line dispatches)."""
        kind = ""
        data: List[str] = []
        ev_id: Optional[int] = None
        while not self._closed.is_set():
            raw = resp.readline(_MAX_LINE)
            if self._closed.is_set() or not raw:
                return
            if not raw.endswith(b"\n"):
                raise ValueError("an event line over %d bytes" % _MAX_LINE)
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if not line:
                if data:
                    yield self._dispatch(kind or "message", ev_id, "\n".join(data))
                kind, data, ev_id = "", [], None
                continue
            if line.startswith(":"):
                continue  # a comment: ": connected", ": keepalive"
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "id" and value.isdigit():
                ev_id = int(value)
            elif name == "retry" and value.isdigit():
                self._retry_hint = int(value) / 1000.0

    def _dispatch(self, kind: str, ev_id: Optional[int], text: str) -> Event:
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = text
        if ev_id is not None:
            self.last_event_id = ev_id
        elif kind == "resync" and isinstance(data, dict) and \
                isinstance(data.get("next_since"), int):
            # Gap too long to replay: the server goes on live from here.
            self.last_event_id = data["next_since"]
        return {"event": kind, "id": ev_id, "data": data}
