"""Malformed requests of every kind get a 4xx in the request's protocol format, never a 500 or a dead server.

Hypothesis builds bad JSON, members of the wrong type, unknown actions and targets, missing parameters,
wrong content types, invalid UTF-8 and oversize bodies, for both protocols, and posts them to a running
`scte queue serve`. JSON-protocol requests (`X-Amz-Target`) must answer with a JSON `__type` body and the
`x-amzn-query-error` header; query-protocol requests with an XML `<ErrorResponse>`. `/health` must answer
after every example.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_harness import Server

from scte.queue.server.actions import ACTIONS
from scte.queue.server.app import MAX_BODY_BYTES

JSON_TYPE = "application/x-amz-json-1.0"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
QUEUE = "fuzzed"
QUEUE_PATH = f"/123456789012/{QUEUE}"
SETTINGS = settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@dataclass
class Bad:
    protocol: str  # json | query
    body: bytes
    headers: dict[str, str]
    path: str = "/"


@pytest.fixture(scope="module")
def queue_url(server: Server, sqs: Any) -> str:
    return str(sqs.create_queue(QueueName=QUEUE)["QueueUrl"])


def post(server: Server, bad: Bad) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", bad.path, body=bad.body, headers=bad.headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def healthy(server: Server) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    finally:
        conn.close()


def check(server: Server, bad: Bad) -> None:
    status, headers, body = post(server, bad)
    assert 400 <= status < 500, (status, bad, body[:500])
    if bad.protocol == "json":
        assert headers["content-type"] == JSON_TYPE, headers
        error = json.loads(body)
        assert isinstance(error["__type"], str) and "#" in error["__type"] and isinstance(error["message"], str)
        code, _, fault = headers["x-amzn-query-error"].partition(";")
        assert code and fault in ("Sender", "Receiver")
    else:
        assert headers["content-type"] == "text/xml", headers
        assert body.startswith(b'<?xml version="1.0"?><ErrorResponse'), body[:300]
        assert b"<Code>" in body and b"<Message>" in body and b"<RequestId>" in body
    assert healthy(server)


# -- strategies --------------------------------------------------------------------------------------------

junk_text = st.text(st.characters(codec="utf-8"), max_size=40)
action_names = st.sampled_from(sorted(ACTIONS))
unknown_names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30).filter(
    lambda n: n not in ACTIONS and n.isprintable()
)
invalid_utf8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])


def json_request(action: str, body: bytes, content_type: str = JSON_TYPE) -> Bad:
    return Bad("json", body, {"Content-Type": content_type, "X-Amz-Target": f"AmazonSQS.{action}"})


def form_request(fields: list[tuple[str, str]] | bytes, content_type: str = FORM_TYPE) -> Bad:
    body = fields if isinstance(fields, bytes) else "&".join(f"{quote(k)}={quote(v)}" for k, v in fields).encode()
    return Bad("query", body, {"Content-Type": content_type})


@st.composite
def bad_json(draw: st.DrawFn) -> Bad:
    action = draw(action_names)
    body = draw(
        st.one_of(
            st.binary(max_size=60).filter(lambda b: not _is_json_object(b)),
            st.sampled_from([b"{", b"[]", b"null", b"42", b'"x"', b"{'a': 1}", b'{"QueueUrl": }', b"\x00{}"]),
            st.builds(lambda j: json.dumps(j).encode(), st.lists(st.integers()) | st.text() | st.floats()),
        )
    )
    return json_request(action, body)


def _is_json_object(body: bytes) -> bool:
    if not body.strip():
        return True  # an empty body is an empty request
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def wrong_value(kind: str) -> st.SearchStrategy[Any]:
    scalars = st.integers() | st.booleans() | st.floats(allow_nan=False) | junk_text
    if kind == "str":
        return (
            st.integers() | st.booleans() | st.floats(allow_nan=False) | st.lists(junk_text, min_size=1) | st.just({})
        )
    if kind == "int":
        return (
            junk_text | st.booleans() | st.floats(allow_nan=False).filter(lambda f: True) | st.just([1]) | st.just({})
        )
    if kind == "strlist":
        return scalars | st.just({}) | st.lists(st.integers() | st.just({}), min_size=1)
    if kind == "strmap":
        return scalars | st.lists(junk_text) | st.dictionaries(junk_text, st.integers() | st.just([]), min_size=1)
    if kind == "attrmap":
        return (
            scalars
            | st.lists(junk_text)
            | st.dictionaries(junk_text, scalars, min_size=1)
            | st.just({"a": {"DataType": 5}})
            | st.just({"a": {"DataType": "Binary", "BinaryValue": "not base64!"}})
            | st.just({"a": {"DataType": "String", "StringListValues": [1]}})
        )
    return scalars | st.just({}) | st.lists(scalars, min_size=1)  # entries


@st.composite
def wrong_types(draw: st.DrawFn, queue_url: str) -> Bad:
    action = ACTIONS[draw(action_names)]
    member = draw(st.sampled_from(sorted(action.schema)))
    spec = action.schema[member]
    value = draw(wrong_value(spec.kind))
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        value += 0.5
    body: dict[str, Any] = {"QueueUrl": queue_url} if "QueueUrl" in action.schema else {}
    body[member] = value
    return json_request(action.name, json.dumps(body).encode())


@st.composite
def unknown_actions(draw: st.DrawFn) -> Bad:
    name = draw(unknown_names)
    if draw(st.booleans()):
        target = draw(st.sampled_from([f"AmazonSQS.{name}", name, f"AmazonSNS.{name}", f"{name}.SendMessage"]))
        return Bad("json", b"{}", {"Content-Type": JSON_TYPE, "X-Amz-Target": target})
    return form_request([("Action", name), ("Version", "2012-11-05")])


# Actions with no required member answer 200 to an empty request.
NEEDS_PARAMS = sorted(set(ACTIONS) - {"ListQueues"})


@st.composite
def missing_parameters(draw: st.DrawFn) -> Bad:
    action = draw(st.sampled_from(NEEDS_PARAMS))
    if draw(st.booleans()):
        return json_request(action, draw(st.sampled_from([b"", b"{}", b'{"Unrelated": 1}'])))
    fields = [("Action", action), *draw(st.sampled_from([[], [("Version", "2012-11-05")], [("Junk", "1")]]))]
    return form_request(fields)


@st.composite
def wrong_content_types(draw: st.DrawFn, queue_url: str) -> Bad:
    content_type = draw(st.sampled_from(["text/plain", "application/xml", "multipart/form-data", "image/png", "x/y"]))
    if draw(st.booleans()):
        body = json.dumps({"QueueUrl": queue_url, "MessageBody": "x"}).encode()
        return json_request("SendMessage", body, content_type)
    return form_request([("Action", "SendMessage"), ("QueueUrl", queue_url), ("MessageBody", "x")], content_type)


@st.composite
def bad_utf8(draw: st.DrawFn, queue_url: str) -> Bad:
    bad = draw(invalid_utf8)
    where = draw(st.sampled_from(["json", "form-raw", "form-escaped"]))
    if where == "json":
        return json_request(
            "SendMessage", b'{"QueueUrl": "' + queue_url.encode() + b'", "MessageBody": "' + bad + b'"}'
        )
    value = bad if where == "form-raw" else "".join(f"%{b:02X}" for b in bad).encode()
    return form_request(
        b"Action=SendMessage&Version=2012-11-05&QueueUrl=" + quote(queue_url).encode() + b"&MessageBody=" + value
    )


def fuzz_cases(queue_url: str) -> st.SearchStrategy[Bad]:
    return st.one_of(
        bad_json(),
        wrong_types(queue_url),
        unknown_actions(),
        missing_parameters(),
        wrong_content_types(queue_url),
        bad_utf8(queue_url),
    )


# -- tests -------------------------------------------------------------------------------------------------


def test_malformed_requests(server: Server, queue_url: str) -> None:
    @SETTINGS
    @given(fuzz_cases(queue_url))
    def run(bad: Bad) -> None:
        check(server, bad)

    run()


def test_oversize_bodies(server: Server, queue_url: str) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    check(server, json_request("SendMessage", b'{"MessageBody": "' + big + b'"}'))
    check(server, form_request(b"Action=SendMessage&MessageBody=" + big))
    # A 1 MiB message is not oversize for the HTTP layer: the SQS error for a too-long message.
    status, headers, _ = post(
        server,
        json_request("SendMessage", json.dumps({"QueueUrl": queue_url, "MessageBody": "y" * 1_048_577}).encode()),
    )
    assert status == 400 and headers["x-amzn-query-error"].startswith("InvalidParameterValue")
    # A declared length over the cap is refused before the body is read.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", "/")
    conn.putheader("Content-Type", JSON_TYPE)
    conn.putheader("X-Amz-Target", "AmazonSQS.SendMessage")
    conn.putheader("Content-Length", str(MAX_BODY_BYTES * 10))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["__type"].endswith("RequestEntityTooLargeException")
    conn.close()
    assert healthy(server)


def test_queue_named_in_path_with_bad_members(server: Server, queue_url: str) -> None:
    """The request path names the queue; the members are still checked."""
    bad = Bad("query", b"Action=ReceiveMessage&MaxNumberOfMessages=abc", {"Content-Type": FORM_TYPE}, QUEUE_PATH)
    check(server, bad)
