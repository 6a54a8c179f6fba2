"""A small Server-Sent Events client over a raw socket, for the tests: it
reads with deadlines so no test can hang."""
import json
import select
import socket
import time


class Stream:
    def __init__(self, port, token, last_event_id=None, rcvbuf=None, path=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        headers = "Authorization: Token %s\r\nAccept: text/event-stream\r\n" % token
        if last_event_id is not None:
            headers += "Last-Event-ID: %s\r\n" % last_event_id
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (
            path or "/api/users/presence/stream/", port, headers)
        self.sock.sendall(req.encode())
        self.buf = b""
        self.status = None
        self.headers = {}
        self.closed = False

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        p = select.poll()  # not select(): tests open thousands of sockets
        p.register(self.sock, select.POLLIN)
        if not p.poll(remaining * 1000):
            return False
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def read_headers(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise TimeoutError("no response headers")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in
                        (line.split(":", 1) for line in lines[1:])}
        self.body = b""
        return self.status

    def _dechunk(self):
        """Moves complete chunks from buf to body."""
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                return
            size = int(self.buf[:i].split(b";")[0], 16)
            if len(self.buf) < i + 2 + size + 2:
                return
            self.body += self.buf[i + 2:i + 2 + size]
            self.buf = self.buf[i + 2 + size + 2:]
            if size == 0:
                self.closed = True
                return

    def events(self, count, timeout=10, kinds=("presence",), user_id=None):
        """Reads until `count` events of the given kinds (about user_id, when
        given) arrived, or the deadline; returns all blocks read as dicts
        (comments included)."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            self._dechunk()
            while b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                ev = {"comments": []}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        ev["comments"].append(line[1:].strip())
                    elif ":" in line:
                        k, v = line.split(":", 1)
                        ev[k] = v[1:] if v.startswith(" ") else v
                if "data" in ev:
                    ev["json"] = json.loads(ev["data"])
                out.append(ev)
            if sum(1 for e in out if e.get("event") in kinds and
                   (user_id is None or e["json"].get("user_id") == user_id)) >= count:
                return out
            if self.closed or not self._fill(deadline):
                return out

    def close(self):
        self.sock.close()


def presence(events):
    return [e for e in events if e.get("event") == "presence"]
