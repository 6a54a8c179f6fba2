"""A black-box mutation test (API.md §11: every byte a client sends gets a
4xx or a clean close, never a 5xx). Valid requests of every endpoint (the
route table from `usersd routes`, bodies and query values from the OpenAPI
document), with a staff token, a user token, the session cookie and no
credentials, are mutated the way an attacker or a broken client would:
flipped, inserted, deleted and repeated bytes, truncations, huge and odd
headers, bad methods, versions, paths and query strings, bad chunked
framing, bad JSON and forms. A sweep adds, for every route, each query
parameter and body field set to each of a list of hostile values, and a
list of hostile headers. Over 8,000 requests go over raw sockets to the
server under test (the ASan+UBSan build in make test). Asserted: no 5xx,
the process alive, no sanitizer report in its log, /healthz still 200 at
the end; and every 4xx reply is a JSON error (the HTTP library's own
too, since mhd_errors.c). The generator
has a fixed seed and every request is made before any is sent, so the
bytes are the same on every run (their order across the parallel
connections is not)."""
import json
import random
import re
import subprocess
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import openapi_check
import rawhttp
from harness import BIN, ServerTest

SEED = 1307
MUTANTS_PER_ROUTE = 180  # byte-level mutants of each route's requests
STREAM_MUTANTS = 12  # the stream stays open when the mutant is still valid
TIME_BUDGET = 240.0  # seconds; a bound, the run takes far less
WAIT = 2.0  # seconds to wait for a reply (an incomplete request gets none)
WORKERS = 8
SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                       r"SUMMARY: UndefinedBehaviorSanitizer")

DOC = openapi_check.DOC

# Hostile values every query parameter, body field and header is swept with.
QUERY_VALUES = (b"", b"%ff", b"%C3", b"%ED%A0%80", b"a%00b", b"%00", b"-1", b"%2B1", b"0",
                b"2147483647", b"2147483648", b"99999999999999999999", b"1.5", b"1e3", b"0x10",
                b"%C3%A9" * 200, b"%C3%A9" * 201, b"9" * 5000, b"true", b"null", b",", b"1,,2",
                b"%2C1", b"1%2C2", b"%", b"%zz", b"+", b"online%00", b"\xff")
JSON_VALUES = (None, 5, -1, 2 ** 31, 2 ** 63, 1.5, 1e308, True, False, [], {}, [[[]]], "",
               "\u0000", "a\u0000b", "x" * 2000, "\u00e9" * 200, "\u00e9" * 201, "\ud800",
               "online", "2024-01-15T10:30:00Z", "2024-02-30T10:30:00Z", {"a": {"b": {}}})
HEADER_VALUES = ((b"Authorization", b"Token"), (b"Authorization", b"Token " + b"0" * 64),
                 (b"Authorization", b"Bearer \xff"), (b"Authorization", b"Basic Og=="),
                 (b"Cookie", b"usersd_session=\xff"), (b"Content-Type", b"application/xml"),
                 (b"Content-Type", b"application/json; charset=\xff"),
                 (b"Content-Length", b"-1"), (b"Content-Length", b"99999999999999999999"),
                 (b"Content-Length", b"1, 1"), (b"Transfer-Encoding", b"bogus"),
                 (b"Last-Event-ID", b"2147483648"), (b"Last-Event-ID", b"-1"),
                 (b"Last-Event-ID", b"9223372036854775808"), (b"Last-Event-ID", b"\xff"),
                 (b"Origin", b"null"), (b"Referer", b"\xff://"), (b"Host", b"\xff"),
                 (b"X-Forwarded-For", b"\xff, 999.1.1.1, ::zz"), (b"Expect", b"100-continue"),
                 (b"Accept", b"\x00"), (b"User-Agent", b"\xff" * 300))


def is_destructive(route):
    """Routes that revoke or delete what the other requests use (the
    tokens, the users): sent last, aimed at victims."""
    return route["method"] == "DELETE" or "/logout" in route["path"]


def resolve(schema):
    while "$ref" in schema:
        node = DOC
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


class Values:
    """Valid values for a schema, the ones this test knows better first."""

    def __init__(self, known):
        self.known = known
        self.n = 0

    def value(self, name, schema):
        if name in self.known:
            return self.known[name]
        schema = resolve(schema)
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "boolean":
            return True
        if kind in ("integer", "number"):
            return max(1, schema.get("minimum", 1))
        if kind == "object":  # the required members: optional ones may exclude each other
            props = schema.get("properties", {})
            return {k: self.value(k, props.get(k, {})) for k in schema.get("required", [])}
        if kind == "array":
            return [self.value(name, schema.get("items", {}))]
        self.n += 1
        if schema.get("format") == "date-time":
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        if schema.get("format") == "email":
            return "m%d@example.com" % self.n
        return ("m%d" % self.n).ljust(max(schema.get("minLength", 0), 1), "x")


def form_encode(obj):
    return "&".join("%s=%s" % (quote(k, safe=""), quote(str(v).lower() if isinstance(v, bool)
                                                         else str(v), safe=""))
                    for k, v in obj.items())


def serialise(method, target, headers, body=b"", version=b"HTTP/1.1"):
    head = method + b" " + target + b" " + version + b"\r\n"
    head += b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return head + b"\r\n" + body


class Mutation(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv = cls.srv
        cls.user = srv.create_user(cls.admin, username="plain", email="plain@example.com",
                                   password="password-123")
        # Victims for the destructive routes: ids without the digit of the
        # admin's id, so one mutated byte cannot aim them at the admin.
        victims = [srv.create_user(cls.admin, username="victim%d" % i) for i in range(24)]
        cls.victim = victims[-1]  # deleted, logged out
        cls.patchee = victims[-2]  # patched: deactivated, its password changed
        cls.user_token = srv.login("plain", "password-123")
        cls.victim_tokens = [srv.login("victim%d" % 23, "password-123") for _ in range(4)]
        p = subprocess.run([BIN, "routes"], capture_output=True, text=True, timeout=30)
        cls.routes = json.loads(p.stdout)
        cls.rng = random.Random(SEED)
        cls.sent = 0
        cls.answered = {}

    # ---- building valid requests ----------------------------------------

    def base_requests(self, route):
        """[(method, target, headers, body)] valid for route, one per kind of
        credentials and body encoding."""
        method, pattern = route["method"], route["path"]
        destructive = is_destructive(route)
        uid = (self.victim if destructive else self.patchee if method == "PATCH" else
               self.user)["id"]
        path = pattern.replace("{id}", str(uid))
        op = DOC["paths"].get(pattern, {}).get(method.lower(), {})
        now = time.time()
        values = Values({"username": "plain", "password": "password-123", "ids": "1,2,%d" % uid,
                         "search": "pla", "since": 0, "limit": 5, "last_event_id": 0,
                         "Last-Event-ID": 0, "page": 1, "per_page": 5,
                         "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 7200)),
                         "to": time.strftime("%Y-%m-%dT%H:%M:%S.5+01:00", time.gmtime(now))})
        query, extra = {}, []
        for p in op.get("parameters", []):
            p = resolve(p)
            v = values.value(p["name"], p.get("schema", {}))
            if p["in"] == "query":
                query[p["name"]] = v
            elif p["in"] == "header":
                extra.append((p["name"].encode(), str(v).encode()))
        if "Last-Event-ID" in dict((k.decode(), v) for k, v in extra):
            query.pop("last_event_id", None)
        target = path + ("?" + form_encode(query) if query else "")
        bodies = [(None, b"")]
        rb = op.get("requestBody")
        if rb:
            bodies = []
            for ctype, media in rb.get("content", {}).items():
                obj = values.value("", media.get("schema", {}))
                if pattern.endswith("/management/users/") and method == "POST":
                    obj.update(username="made%d" % self.rng.randrange(10 ** 6), email="")
                if method == "PATCH":
                    obj = {"first_name": "Pat", "is_staff": False, "last_name": "Ch"}
                data = (json.dumps(obj) if "json" in ctype else form_encode(obj)).encode()
                bodies.append((ctype.encode(), data))
        if destructive and "/logout" in pattern:
            tokens = [("header", t) for t in self.victim_tokens]
        else:
            tokens = [("header", self.admin), ("header", self.user_token), ("cookie", self.admin),
                      ("none", None)]
        out = []
        for who, tok in tokens:
            for ctype, data in bodies:
                h = [(b"Host", b"127.0.0.1:%d" % self.srv.port), (b"User-Agent", b"mutation")]
                if who == "header":
                    h.append((b"Authorization", b"Token " + tok.encode()))
                elif who == "cookie":
                    h.append((b"Cookie", b"usersd_session=" + tok.encode()))
                    h.append((b"Origin", b"http://127.0.0.1:%d" % self.srv.port))
                if ctype:
                    h.append((b"Content-Type", ctype))
                    h.append((b"Content-Length", str(len(data)).encode()))
                out.append((method.encode(), target.encode(), h + extra, data))
        return out

    # ---- mutating them ----------------------------------------------------

    def mutate_bytes(self, raw):
        rng = self.rng
        raw = bytearray(raw)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            if not raw:
                break
            i = rng.randrange(len(raw))
            kind = rng.randrange(8)
            if kind == 0:
                raw[i] ^= 1 << rng.randrange(8)
            elif kind == 1:
                raw[i] = rng.randrange(256)
            elif kind == 2:
                raw[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif kind == 3:
                del raw[i:i + rng.randint(1, 16)]
            elif kind == 4:
                raw = raw[:i]  # truncated: the server sees the end of input
            elif kind == 5:
                j = rng.randint(i, min(len(raw), i + 32))
                raw[i:i] = raw[i:j] * rng.randint(2, 8)
            elif kind == 6:
                raw[i:i] = rng.choice((b"\r\n", b"\n", b"\r", b"\x00", b"%", b"%00", b"%ff",
                                       b"\xff", b"\xc3", b":", b" ", b"\t", b"\r\n\r\n", b"\\",
                                       b'"', b"{", b"[", b"}", b"&", b"=", b","))
            else:
                magic = rng.choice((b"0", b"-1", b"2147483648", b"99999999999999999999", b"",
                                    b"null", b"true", b"1e999", b"\xff\xfe", b"%C3%A9" * 201))
                j = rng.randint(i, min(len(raw), i + 8))
                raw[i:j] = magic
        return bytes(raw)

    def mutate_structure(self, base):
        """One structural mutant of a valid request (method, target, headers,
        body): the request line, headers, framing or body."""
        rng = self.rng
        method, target, headers, body = base
        version = b"HTTP/1.1"
        headers = list(headers)
        kind = rng.randrange(16)
        if kind == 0:
            method = rng.choice((b"GE\xffT", b"G T", b"", b"get", b"PUT", b"OPTIONS", b"TRACE",
                                 b"CONNECT", b"PRI", b"M" * 300, b"POST\x00", b"\xc3\xa9",
                                 b"HEAD", b"PATCH", b"DELET", b"BREW"))  # no DELETE: it
            # would aim this route's path (the plain user) instead of a victim
        elif kind == 1:
            target = rng.choice((b"*", b"//", b"/../../etc/passwd", b"/%00", b"/%ff/%",
                                 b"http://evil.example" + target, b"/" + b"a" * 9000, b"",
                                 target + b"/" * 50, target.replace(b"/", b"//"),
                                 target + b"#frag", target + b"%2F", target.upper(),
                                 target + b"?" + b"&" * 500, target + b"?=&=&a"))
        elif kind == 2:
            q = rng.choice((b"page=", b"page=%", b"page=0x10", b"per_page=2147483648", b"ids=%2C",
                            b"ids=" + b",".join(b"%d" % i for i in range(1500)),
                            b"since=-0", b"limit=%00", b"search=%ff%fe", b"search=" + b"%C3%A9" * 200,
                            b"search=" + b"%C3%A9" * 201, b"ordering=-", b"is_active=TRUE",
                            b"online_status=%00online", b"last_event_id=1e5", b"a[]=1&a[]=2",
                            b"%=%", b"&&&", b"page=1&page=2", b"per_page=" + b"9" * 400))
            target = target.split(b"?")[0] + b"?" + q
        elif kind == 3:
            version = rng.choice((b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/9.9", b"http/1.1",
                                  b"", b"HTTP/1.", b"HTTP/01.01", b"HTTP/1.1 extra"))
        elif kind == 4:
            headers.append((b"X-Big", b"a" * rng.choice((1000, 8000, 20000, 100000))))
        elif kind == 5:
            headers += [(b"X-H%d" % i, b"v") for i in range(rng.choice((50, 200, 2000)))]
        elif kind == 6:
            headers.append(rng.choice(((b"NoColon", b""), (b"", b"empty-name"), (b"Bad Name", b"x"),
                                       (b"X-Nul", b"a\x00b"), (b"X-Ctl", b"\x01\x7f"),
                                       (b"X-Fold", b"a\r\n folded"), (b"X-Utf", b"\xff\xfe"),
                                       (b"Host", b"other.example"), (b"Host", b""),
                                       (b"Expect", b"100-continue"), (b"Expect", b"nonsense"),
                                       (b"Connection", b"close, Upgrade"), (b"Upgrade", b"h2c"))))
        elif kind == 7:
            value = rng.choice((b"-1", b"abc", b"1, 2", b"99999999999999999999", b"", b"0x10",
                                b"65537", b"%d" % (len(body) + 10), b"%d" % max(0, len(body) - 1)))
            headers = [h for h in headers if h[0] != b"Content-Length"]
            headers.append((b"Content-Length", value))
            if rng.random() < 0.5:
                headers.append((b"Content-Length", b"%d" % len(body)))
        elif kind == 8:  # chunked, well or badly framed
            headers = [h for h in headers if h[0] != b"Content-Length"]
            headers.append((b"Transfer-Encoding", rng.choice((b"chunked", b"gzip, chunked",
                                                              b"identity", b"chunked, chunked"))))
            half = len(body) // 2
            body = rng.choice((
                b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half,
                                                        body[half:]),
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) + 5, body),
                b"zz\r\n" + body + b"\r\n0\r\n\r\n",
                b"ffffffffffffffff\r\n" + body + b"\r\n0\r\n\r\n",
                b"%x;ext=1\r\n%s\r\n0\r\nTrailer: x\r\n\r\n" % (len(body), body),
                b"%x\r\n%s" % (len(body), body),
                b"-1\r\n" + body,
                b"%x\n%s\n0\n\n" % (len(body), body),
                b"10001\r\n" + b"x" * 65537 + b"\r\n0\r\n\r\n",
            ))
            if rng.random() < 0.2:
                headers.append((b"Content-Length", b"%d" % len(body)))
        elif kind == 9:  # the body: wrong JSON
            body = rng.choice((b"{", b"[]", b"null", b"5", b'"s"', b"{" * 5000 + b"}" * 5000,
                               b'{"a":' * 40 + b"1" + b"}" * 40, b'{"status":"online","status":1}',
                               b'{"status":"\\u0000"}', b'{"status":"\xff"}', b'{"status":null}',
                               b'{"username":5,"password":[]}', b'{"is_staff":"yes"}',
                               b'{"status":"online"}' * 3, b"\xef\xbb\xbf{}", b'{"":""}',
                               b'{"status":"' + b"\\ud800" + b'"}', b'{"a":1e999999}',
                               b'{"a":-0.0e-999}', b'{"a":12345678901234567890123}',
                               b"x" * (64 * 1024 + 1)))
            headers = [h for h in headers if h[0] != b"Content-Length"]
            headers += [(b"Content-Type", b"application/json"),
                        (b"Content-Length", b"%d" % len(body))]
        elif kind == 10:  # the body: wrong forms
            body = rng.choice((b"status=%", b"status=%zz", b"=x", b"&&&&", b"a=%00", b"%ff=1",
                               b"status=online&status=%zz", b"status" + b"=" * 100,
                               b"username=a&username=b&password=" + b"p" * 2000))
            headers = [h for h in headers if h[0] not in (b"Content-Length", b"Content-Type")]
            headers += [(b"Content-Type", b"application/x-www-form-urlencoded"),
                        (b"Content-Length", b"%d" % len(body))]
        elif kind == 11:  # the content type
            headers = [h for h in headers if h[0] != b"Content-Type"]
            headers.append((b"Content-Type", rng.choice((
                b"text/plain", b"application/json; charset=latin1", b"APPLICATION/JSON",
                b"application/json\x00", b"", b"multipart/form-data; boundary=x",
                b"application/x-www-form-urlencoded; charset=\xff", b"application/jsonx"))))
        elif kind == 12:  # credentials
            headers = [h for h in headers if h[0] not in (b"Authorization", b"Cookie")]
            headers.append(rng.choice((
                (b"Authorization", b"Token"), (b"Authorization", b"Token " + b"0" * 64),
                (b"Authorization", b"Bearer " + b"A" * 64), (b"Authorization", b"Basic Og=="),
                (b"Authorization", b"Token " + b"\xff" * 64), (b"Authorization", b"Token  " * 100),
                (b"Cookie", b"usersd_session="), (b"Cookie", b"usersd_session=" + b"a" * 5000),
                (b"Cookie", b"usersd_session=" + self.admin.encode() + b"; usersd_session=x"),
                (b"Cookie", b";;;=;=="), (b"Cookie", b"usersd_session=\"" + self.admin.encode()),
            )))
        elif kind == 13:  # origins of a cookie-authenticated request
            headers = [h for h in headers if h[0] not in (b"Authorization", b"Origin")]
            headers.append((b"Cookie", b"usersd_session=" + self.admin.encode()))
            headers.append(rng.choice((
                (b"Origin", b"null"), (b"Origin", b"http://evil.example"),
                (b"Origin", b"http://127.0.0.1:%d@evil.example" % self.srv.port),
                (b"Origin", b"HTTP://127.0.0.1:%d" % self.srv.port), (b"Origin", b"\xff"),
                (b"Origin", b"http://[::1"), (b"Origin", b"http://127.0.0.1:99999999999999"),
                (b"Referer", b"http://127.0.0.1:%d/page?x#y" % self.srv.port),
                (b"Origin", b"http://" + b"a" * 5000))))
        elif kind == 14:  # bytes before the request or two requests in one
            if rng.random() < 0.5:
                return rng.choice((b"\r\n\r\n", b"\x16\x03\x01\x02\x00", b" ", b"\x00")) + \
                    serialise(method, target, headers, body, version)
            return serialise(method, target, headers, body, version) * 2
        else:  # bare LF line ends
            return serialise(method, target, headers, body, version).replace(b"\r\n", b"\n")
        return serialise(method, target, headers, body, version)

    def sweep(self, route):
        """Not random: every query parameter and body field of the route's
        first valid request, each given every hostile value in turn."""
        method, target, headers, body = self.base_requests(route)[0]
        path, _, query = target.partition(b"?")
        params = [kv.split(b"=", 1)[0] for kv in query.split(b"&") if kv]
        params.append(b"unknown")
        out = []
        for name in params:
            for value in QUERY_VALUES:
                q = [kv for kv in query.split(b"&") if kv and kv.split(b"=", 1)[0] != name]
                q.append(name + b"=" + value)
                out.append(serialise(method, path + b"?" + b"&".join(q), headers, body))
        ctype = dict(headers).get(b"Content-Type", b"")
        if b"json" in ctype:
            obj = json.loads(body)
            op = DOC["paths"].get(route["path"], {}).get(route["method"].lower(), {})
            schema = resolve(op["requestBody"]["content"]["application/json"]["schema"])
            for name in sorted(set(obj) | set(schema.get("properties", {}))) + ["unknown"]:
                for value in JSON_VALUES:
                    data = json.dumps(dict(obj, **{name: value})).encode()
                    h = [x for x in headers if x[0] != b"Content-Length"]
                    out.append(serialise(method, target, h + [(b"Content-Length", b"%d" % len(data))],
                                         data))
        for name, value in HEADER_VALUES:
            h = [x for x in headers if x[0].lower() != name.lower()]
            out.append(serialise(method, target, h + [(name, value)], body))
        return out

    # ---- sending ------------------------------------------------------------

    def exchange(self, data):
        """Sends one request; returns (data, raw reply, None) or (data, None,
        why) when the server refused the connection."""
        try:
            return data, rawhttp.exchange(self.srv.port, data, timeout=WAIT), None
        except OSError as e:
            return data, None, repr(e)

    def check(self, data, raw):
        """The verdict on one reply: None when fine, else why not."""
        status, headers, body = rawhttp.parse(raw)
        if status is None:
            self.answered[None] = self.answered.get(None, 0) + 1
            return None  # no reply: a clean close, or a request still incomplete
        self.answered[status] = self.answered.get(status, 0) + 1
        if status >= 500:
            return "a %d for a client's bytes:\n%r\n->\n%r" % (status, data[:2000], raw[:2000])
        # Every error reply is a JSON error: usersd's own, and the HTTP
        # library's (src/server/mhd_errors.c turns those into JSON too).
        if (400 <= status < 500 and not data.startswith(b"HEAD ") and
                len(body) == int(headers.get("content-length", "-1"))):
            reply = rawhttp.json_body(headers, body)
            if not isinstance(reply, dict) or not isinstance(reply.get("error"), str):
                return "a %d that is not a JSON error:\n%r\n->\n%r" % (status, data[:500],
                                                                         raw[:500])
        return None

    def run_batch(self, batch, deadline):
        """Sends batch from WORKERS connections at once (a request the
        server still waits on costs WAIT seconds; in parallel those
        overlap) and checks every reply."""
        with ThreadPoolExecutor(WORKERS) as pool:
            for data, raw, refused in pool.map(self.exchange, batch):
                self.assertLess(time.monotonic(), deadline, "over the time budget")
                type(self).sent += 1
                self.assertIsNone(refused, "connection refused after %r" % data[:300])
                verdict = self.check(data, raw)
                self.assertIsNone(verdict, verdict)
        self.assertIsNone(self.srv.proc.poll(), "the server died during this batch")

    def test_mutated_requests_of_every_endpoint(self):
        deadline = time.monotonic() + TIME_BUDGET
        self.assertGreater(len(self.routes), 15)
        # Every request is made first, from the seeded generator, so the
        # bytes sent are the same on every run. Destructive routes go last:
        # they revoke and delete what the others use.
        batches = [[], []]
        for route in self.routes:
            bases = self.base_requests(route)
            stream = route["path"].endswith("/stream/")
            destructive = is_destructive(route)
            if not stream:
                batches[destructive] += self.sweep(route)
            for i in range(STREAM_MUTANTS if stream else MUTANTS_PER_ROUTE):
                base = bases[i % len(bases)]
                if i % 3 == 2:
                    data = self.mutate_structure(base)
                else:
                    data = self.mutate_bytes(serialise(*base))
                batches[destructive].append(data)
        self.run_batch(batches[0], deadline)
        # The credentials the mutants carried still work: the run reached
        # the handlers behind authentication all along.
        for token in (self.admin, self.user_token):
            self.assertEqual(self.req("GET", "/api/users/me/", token=token)[0], 200)
        self.run_batch(batches[1], deadline)
        log = self.srv.read_log()
        self.assertIsNone(SANITIZER.search(log), "a sanitizer report:\n" + log[-5000:])
        status, _, body = self.req("GET", "/healthz")
        self.assertEqual((status, body), (200, {"status": "ok"}))
        # The run is only worth its name if requests got through: some
        # mutants must still have been served, and many refused.
        served = sum(n for s, n in self.answered.items() if s and s < 300)
        refused = sum(n for s, n in self.answered.items() if s and 400 <= s < 500)
        self.assertGreater(served, 100, self.answered)
        self.assertGreater(refused, 500, self.answered)
        print("mutation: %d requests, replies by status (None: no reply) %s" %
              (self.sent, sorted(self.answered.items(), key=lambda kv: kv[0] or 0)))


if __name__ == "__main__":
    unittest.main()
