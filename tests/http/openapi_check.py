"""Checks real responses against docs/openapi.json: every JSON reply the
tests receive must match the schema the document gives for its operation
and status. A small validator of the subset of JSON Schema the document
uses ($ref, type, nullable, enum, required, properties,
additionalProperties, items, pattern, lengths, bounds, date-time)."""
import json
import os
import re

DOC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                        "openapi.json")
DOC = json.load(open(DOC_PATH))
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        parts = node["$ref"].lstrip("#/").split("/")
        node = DOC
        for p in parts:
            node = node[p]
    return node


def validate(value, schema, where="$"):
    """Raises AssertionError naming the first place value breaks schema."""
    s = _resolve(schema)
    if value is None:
        assert s.get("nullable"), "%s: null where %s is not nullable" % (where, s.get("type"))
        return
    t = s.get("type")
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t in kinds:
        assert isinstance(value, kinds[t]), "%s: expected %s, got %r" % (where, t, value)
    elif t == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), \
            "%s: expected integer, got %r" % (where, value)
    elif t == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), \
            "%s: expected number, got %r" % (where, value)
    if "enum" in s:
        assert value in s["enum"], "%s: %r not in %r" % (where, value, s["enum"])
    if t == "string":
        if "pattern" in s:
            assert re.search(s["pattern"], value), "%s: %r does not match %s" % (
                where, value, s["pattern"])
        if s.get("format") == "date-time":
            assert DATE_TIME.match(value), "%s: %r is not RFC 3339 with µs and Z" % (where, value)
        assert len(value) <= s.get("maxLength", len(value)), "%s: too long" % where
    if t in ("integer", "number"):
        assert value >= s.get("minimum", value), "%s: below minimum" % where
    if t == "object":
        for k in s.get("required", []):
            assert k in value, "%s: missing required %r" % (where, k)
        props = s.get("properties", {})
        extra = s.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                validate(v, props[k], where + "." + k)
            elif extra is False:
                raise AssertionError("%s: unexpected property %r" % (where, k))
            elif isinstance(extra, dict):
                validate(v, extra, where + "." + k)
    if t == "array":
        for i, v in enumerate(value):
            validate(v, s.get("items", {}), "%s[%d]" % (where, i))


def _template_re(template):
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", r"[0-9]+", re.escape(template.rstrip("/")))
                      + "/?$")


OPERATIONS = [(_template_re(p), p, m.upper(), op)
              for p, item in DOC["paths"].items() for m, op in item.items()]


def operation(method, path):
    path = path.split("?", 1)[0]
    for rx, template, m, op in OPERATIONS:
        if m == method and rx.match(path):
            return template, op
    return None, None


def check_response(method, path, status, content_type, body):
    """Validates one reply; silently passes what the document cannot know
    (unknown paths, 405, HEAD)."""
    if method == "HEAD" or status == 405:
        return
    template, op = operation(method, path)
    if op is None:
        return
    responses = op["responses"]
    assert str(status) in responses, "%s %s: status %d is not documented" % (method, template,
                                                                             status)
    resp = _resolve(responses[str(status)])
    content = resp.get("content")
    if not content:
        assert body is None, "%s %s %d: documented without a body" % (method, template, status)
        return
    if "application/json" in content and content_type.startswith("application/json"):
        validate(body, content["application/json"]["schema"], "%s %s %d" % (method, template,
                                                                           status))
