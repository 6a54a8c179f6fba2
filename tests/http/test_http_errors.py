"""Bytes that are not good HTTP (API.md §2, §11): libmicrohttpd's own error
replies come out as usersd's JSON with the right status (never 5xx), and
the log escapes whatever a client sent (text and JSON formats)."""
import json
import socket
import time
import unittest

from harness import Server, ServerTest

JSON_TYPE = "application/json; charset=utf-8"


def exchange(port, data, timeout=5.0):
    """Sends raw bytes; returns all that came back before the server closed
    (a reset after the reply counts as a close). Bounded in time."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    chunks = []
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send: what arrived is still read below
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                raise AssertionError("the server neither replied nor closed: %r" %
                                     b"".join(chunks)[:200])
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    return b"".join(chunks)


def parse(resp):
    """(status, headers, body bytes) of exactly one reply; fails on bytes
    beyond its Content-Length (a second reply glued on, say)."""
    head, sep, rest = resp.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no complete reply: %r" % resp[:300])
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    if len(rest) != n:
        raise AssertionError("body of %d bytes, Content-Length %d: %r" % (len(rest), n, resp[:400]))
    return status, headers, rest


def req(method=b"GET", path=b"/healthz", version=b"HTTP/1.1", headers=(b"Host: x",), body=b""):
    return (method + b" " + path + b" " + version + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
            + b"\r\n" + body)


CHUNKED = (b"Host: x", b"Content-Type: application/json", b"Transfer-Encoding: chunked")

# name, raw request, status, part of the error sentence
CASES = [
    ("header line without a colon", req(headers=(b"Host: x", b"NoColonHere")), 400,
     "not valid HTTP"),
    ("malformed version", req(version=b"HTTP/x.1"), 400, "not valid HTTP"),
    ("no version", b"GET /healthz\r\nHost: x\r\n\r\n", 400, "not valid HTTP"),
    ("HTTP/2.0", req(version=b"HTTP/2.0"), 400, "HTTP/1.1"),
    ("HTTP/0.9", req(version=b"HTTP/0.9"), 400, "HTTP/1.1"),
    ("HTTP/1.1 without Host", req(headers=()), 400, "Host"),
    ("URI too long", req(path=b"/" + b"a" * 20000), 414, "too long"),
    ("one header too large", req(headers=(b"Host: x", b"X-Big: " + b"a" * 20000)), 431,
     "headers are too large"),
    ("too many headers", req(headers=(b"Host: x",) + tuple(b"X-H%d: %s" % (i, b"v" * 40)
                                                             for i in range(600))), 431,
     "headers are too large"),
    # the library fails to store these in the connection's memory after
    # reading them; its error paths then go on using that memory
    ("cookie too large to parse", req(headers=(b"Host: x", b"Cookie: a=" + b"b" * 9000)), 431,
     "headers are too large"),
    ("too many query arguments",
     req(path=b"/healthz?" + b"&".join(b"a%d=b" % i for i in range(300))), 431,
     "headers are too large"),
    ("Content-Length not a number",
     req(b"POST", b"/api/auth/login/", headers=(b"Host: x", b"Content-Length: abc")), 400,
     "Content-Length"),
    ("Content-Length past 2^64",
     req(b"POST", b"/api/auth/login/",
         headers=(b"Host: x", b"Content-Length: 99999999999999999999999999")), 413, "64 KiB"),
    ("chunk size not hex", req(b"POST", b"/api/auth/login/", headers=CHUNKED, body=b"zz\r\n"), 400,
     "chunked"),
    ("chunk size past 2^64",
     req(b"POST", b"/api/auth/login/", headers=CHUNKED, body=b"f" * 40 + b"\r\n"), 413, "64 KiB"),
    ("chunk without its CRLF",
     req(b"POST", b"/api/auth/login/", headers=CHUNKED, body=b"2\r\n{}XX0\r\n\r\n"), 400,
     "chunked"),
]


class LibraryErrors(ServerTest):
    def test_each_is_json_with_its_status(self):
        for name, data, status, part in CASES:
            with self.subTest(name):
                code, headers, body = parse(exchange(self.srv.port, data))
                self.assertEqual(code, status, body)
                self.assertEqual(headers.get("content-type"), JSON_TYPE)
                doc = json.loads(body)
                self.assertEqual(list(doc), ["error"])
                self.assertIn(part, doc["error"])
        code, _, _ = self.req("GET", "/healthz")
        self.assertEqual(code, 200)

    def test_each_has_an_access_line(self):
        exchange(self.srv.port, req(path=b"/" + b"a" * 20000))
        exchange(self.srv.port, req(b"POST", b"/api/auth/login/", headers=CHUNKED, body=b"zz\r\n"))
        deadline = time.monotonic() + 5
        log = ""
        while time.monotonic() < deadline:
            log = self.srv.read_log()
            if "access: - - 414" in log and "access: POST /api/auth/login/ 400" in log:
                break
            time.sleep(0.1)
        self.assertIn('access: - - 414 40 0us user=- error="the request line is too long"', log)
        # the chunked error comes after usersd saw the request: one line, with its route
        self.assertEqual(log.count("the chunked encoding of the request body is malformed"), 1)
        self.assertNotIn("<html>", log)

    def test_http_1_0_needs_no_host(self):
        code, headers, body = parse(exchange(self.srv.port, req(version=b"HTTP/1.0", headers=())))
        self.assertEqual((code, json.loads(body)), (200, {"status": "ok"}))

    def test_error_after_a_good_request_on_the_same_connection(self):
        data = req() + req(headers=(b"Host: x", b"Broken"))  # pipelined
        resp = exchange(self.srv.port, data)
        first, _, second = resp.partition(b'{"status":"ok"}')
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), resp[:300])
        code, headers, body = parse(second)
        self.assertEqual((code, headers["content-type"]), (400, JSON_TYPE))
        self.assertEqual(headers.get("connection"), "close")

    def test_line_that_is_no_request_line_is_closed(self):
        # No space at all: not an HTTP request line (a TLS hello, a port
        # scan); the library closes it without a reply, and that is all.
        self.assertEqual(exchange(self.srv.port, b"GARBAGE\r\n\r\n"), b"")
        code, _, _ = self.req("GET", "/healthz")
        self.assertEqual(code, 200)


# Methods with bytes that have no business in a log line.
NASTY = [b"GE\x01T", b"GE\x1b[31mT", b"GE\xffT", b"GE\xc3\x28T", b"GE\"T", b"GE\\T", b"GE\xc2\x85T"]


def escaped(m):
    out = ""
    for b in m:
        out += chr(b) if 0x20 <= b < 0x7f and b not in b'"\\' else "\\x%02x" % b
    return out


class LogEscaping(unittest.TestCase):
    def run_server(self, args):
        srv = Server(args).start()
        self.addCleanup(srv.cleanup)
        close = b"Connection: close"
        for m in NASTY:
            exchange(srv.port, req(method=m, headers=(b"Host: x", close)))
        exchange(srv.port, req(headers=(b"Host: x", close, b"X-Evil: \x07\x00\x1b\xff")))
        exchange(srv.port, req(path=b"/api/\x01\x1b[2J\xff?q=\x07", headers=(b"Host: x", close)))
        marker = '"type":"access"' if "json" in args else "access:"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and srv.read_log().count(marker) <= len(NASTY) + 1:
            time.sleep(0.1)
        srv.stop()
        with open(srv.log_path, "rb") as f:
            raw = f.read()
        raw.decode("utf-8")  # strict: every byte of the log is valid UTF-8
        for line in raw.split(b"\n"):
            self.assertFalse(any(b < 0x20 or b == 0x7f for b in line), line)
        return raw.decode("utf-8")

    def test_text_log(self):
        log = self.run_server(())
        for m in NASTY:
            self.assertIn("access: %s " % escaped(m), log)

    def test_json_log(self):
        log = self.run_server(("--log-format", "json"))
        methods = []
        for line in log.splitlines():
            if line.strip():
                doc = json.loads(line)  # every line is JSON
                if doc.get("type") == "access":
                    methods.append(doc["method"])
        for m in NASTY:
            self.assertIn(escaped(m), methods)


if __name__ == "__main__":
    unittest.main()
