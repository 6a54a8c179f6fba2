"""Raw HTTP over a socket, for requests http.client will not send (bytes
that are not HTTP, broken framing). Standard library only."""
import json
import socket
import struct
import time


def exchange(port, data, timeout=10.0, max_bytes=1 << 20):
    """Sends data (bytes) to 127.0.0.1:port, half-closes, reads until the
    server closes or the first response is complete. Returns the raw bytes
    received (b"" when the server closed without a reply)."""
    deadline = time.monotonic() + timeout
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = b""
    closed = False
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading it all
        while len(buf) < max_bytes and time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                closed = True
                break
            buf += chunk
            if response_complete(buf):
                break
    finally:
        if not closed:
            # A reset, not a FIN: a server still waiting for the rest of
            # an incomplete request lets the connection go at once instead
            # of holding it until its timeout.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    return buf


def response_complete(buf):
    """True once buf holds a whole response (by its Content-Length or its
    last chunk), or the headers of an event stream (which never ends)."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-type" and value.startswith(b"text/event-stream"):
            return True
        if name == b"transfer-encoding" and value == b"chunked":
            return body.endswith(b"0\r\n\r\n")
        if name == b"content-length":
            try:
                return len(body) >= int(value)
            except ValueError:
                return False
    return False


def parse(buf):
    """(status, {lower-case header: value}, body bytes) of the first
    response in buf; status None when there is none."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None, {}, b""
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    n = headers.get("content-length")
    if n is not None and n.isdigit():
        body = body[:int(n)]
    return int(parts[1]), headers, body


def json_body(headers, body):
    """The parsed JSON body, or None when the reply is not JSON."""
    if not headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class Flood:
    """n connections to 127.0.0.1:port, each sending raw (a request with
    `Connection: close`) at once; a thread collects every reply as the
    server closes its connection, for at most `timeout` seconds. `replies`
    holds (bytes, time.perf_counter() at the close), in the order they
    ended; `started` is when the last request was sent."""

    def __init__(self, port, raw, n, timeout):
        import selectors
        import threading
        self.replies = []
        self._sel = selectors.DefaultSelector()
        self._pending = {}
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setblocking(False)
            socks.append(s)
        for s in socks:
            s.sendall(raw)  # small: fits the socket buffer at once
            self._sel.register(s, selectors.EVENT_READ)
            self._pending[s] = b""
        self.started = time.perf_counter()
        self._deadline = time.monotonic() + timeout
        self._thread = threading.Thread(target=self._reap)
        self._thread.start()

    def _reap(self):
        while self._pending and time.monotonic() < self._deadline:
            for key, _ in self._sel.select(0.5):
                s = key.fileobj
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionError:
                    chunk = b""
                if chunk:
                    self._pending[s] += chunk
                    continue
                self._sel.unregister(s)
                s.close()
                self.replies.append((self._pending.pop(s), time.perf_counter()))

    def running(self):
        return self._thread.is_alive()

    def join(self, timeout=None):
        self._thread.join(timeout)
