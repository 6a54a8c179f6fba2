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
    # API.md §11: what RFC 9112 says a server must reject (request smuggling)
    ("one-word request line", b"GARBAGE\r\nHost: x\r\n\r\n", 400, "request line"),
    ("request line starting with a space", b" /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400,
     "request line"),
    ("tabs for spaces in the request line", b"GET\t/healthz\tHTTP/1.1\r\nHost: x\r\n\r\n", 400,
     "request line"),
    ("four parts", req(path=b"/healthz extra"), 400, "request line"),
    ("two spaces after the method", req(method=b"GET ", path=b"/healthz"), 400, "request line"),
    ("two spaces before the version", req(path=b"/healthz "), 400, "request line"),
    ("control byte in the target", req(path=b"/heal\x01thz"), 400, "control"),
    ("DEL in the target", req(path=b"/healthz?a=\x7f"), 400, "control"),
    ("whitespace before a header's colon", req(headers=(b"Host: x", b"X-Acc : 1")), 400,
     "header name"),
    ("a tab before a header's colon", req(headers=(b"Host: x", b"X-Acc\t: 1")), 400,
     "header name"),
    ("header name not a token", req(headers=(b"Host: x", b"X(A): 1")), 400, "header name"),
    ("two Host headers", req(headers=(b"Host: x", b"Host: y")), 400, "one Host"),
    ("two equal Host headers", req(headers=(b"Host: x", b"Host: x")), 400, "one Host"),
    ("HTTP/1.0 with two Host headers", req(version=b"HTTP/1.0", headers=(b"Host: x", b"Host: y")),
     400, "one Host"),
    # the smuggled request after the body must never be answered: one reply, then the close
    ("Transfer-Encoding beside Content-Length",
     req(b"POST", b"/api/auth/login/",
         headers=(b"Host: x", b"Content-Type: application/json", b"Content-Length: 5",
                  b"Transfer-Encoding: chunked"),
         body=b"0\r\n\r\n" + req()), 400, "both Transfer-Encoding and Content-Length"),
    ("two different Content-Lengths",
     req(b"POST", b"/api/auth/login/",
         headers=(b"Host: x", b"Content-Type: application/json", b"Content-Length: 2",
                  b"Content-Length: 40"),
         body=b"{}" + req()), 400, "conflicting Content-Length"),
    ("a Transfer-Encoding other than chunked",
     req(b"POST", b"/api/auth/login/",
         headers=(b"Host: x", b"Content-Type: application/json", b"Transfer-Encoding: gzip"),
         body=b"{}"), 400, "chunked"),
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

    def log_with(self, *parts):
        """The server's log once it holds every part (access lines are
        buffered for up to 100 ms), or as it is after 5 s."""
        deadline = time.monotonic() + 5
        log = self.srv.read_log()
        while time.monotonic() < deadline and not all(p in log for p in parts):
            time.sleep(0.1)
            log = self.srv.read_log()
        return log

    def test_each_has_an_access_line(self):
        exchange(self.srv.port, req(path=b"/" + b"a" * 20000))
        exchange(self.srv.port, req(b"POST", b"/api/auth/login/", headers=CHUNKED, body=b"zz\r\n"))
        log = self.log_with("access: - - 414", "access: POST /api/auth/login/ 400")
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

    def test_line_that_is_no_request_line_gets_400_then_close(self):
        # No space at all (a port scan, a stray protocol): the library
        # would close it without a word; the reply is §2's JSON, once.
        for data in (b"GARBAGE\r\n\r\n", b"GARBAGE\n", b"\r\n\r\nGARBAGE\r\nHost: x\r\n\r\n"):
            with self.subTest(data):
                code, headers, body = parse(exchange(self.srv.port, data))
                self.assertEqual((code, headers.get("connection")), (400, "close"))
                self.assertIn("request line", json.loads(body)["error"])
        code, _, _ = self.req("GET", "/healthz")
        self.assertEqual(code, 200)

    def test_a_good_request_still_keeps_its_connection(self):
        # the request-line watch must not touch good requests: two on one
        # connection, both answered
        resp = exchange(self.srv.port, req() + req(headers=(b"Host: x", b"Connection: close")))
        self.assertEqual(resp.count(b"HTTP/1.1 200 OK"), 2, resp[:400])

    def test_smuggling_cases_are_logged_with_their_sentence(self):
        exchange(self.srv.port, req(headers=(b"Host: x", b"Host: y")))
        exchange(self.srv.port, b"GARBAGE\r\n\r\n")
        log = self.log_with("only one Host", "request line is not valid")
        # refused before routing: no route in the line, the method as sent
        self.assertIn('access: GET - 400 51 ', log)
        self.assertIn('error="a request may have only one Host header"', log)
        self.assertRegex(log, r'access: - - 400 \d+ 0us user=- error="the request line is not valid')


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
