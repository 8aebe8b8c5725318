"""The broker's strict-mode caches never outlive what they were derived from: the signing key and its HMAC
pads are keyed by the secret (a rotated key takes effect on the next request), and a policy decision by the
policy text (a changed policy takes effect on the next request)."""

from __future__ import annotations

import hashlib
import json

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scte.queue.policy import Principal
from scte.queue.server import auth
from scte.queue.server.authorize import _queue_allows

KEY = "AKIDROTATED"
OLD, NEW = "old-secret-0123456789", "new-secret-0123456789"
ACCOUNT = "123456789012"
BODY = b'{"QueueUrl": "http://127.0.0.1:9324/123456789012/q", "MessageBody": "x"}'


def signed(secret: str, headers: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:9324/",
        data=BODY,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS.SendMessage",
            **(headers or {}),
        },
    )
    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(BODY).hexdigest()
    botocore.auth.SigV4Auth(Credentials(KEY, secret), "sqs", "us-east-1").add_auth(request)
    return [(b"host", b"127.0.0.1:9324")] + [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]


def refused(verifier: auth.Verifier, headers: list[tuple[bytes, bytes]], body: bytes = BODY) -> str:
    with pytest.raises(auth.WireError) as caught:
        verifier.verify("POST", b"/", b"", headers, body)
    return caught.value.code


def test_a_rotated_secret_takes_effect_on_the_next_request() -> None:
    keys = {KEY: OLD}
    verifier = auth.Verifier(keys)
    with_old = signed(OLD)
    assert verifier.verify("POST", b"/", b"", with_old, BODY) == KEY  # the old secret's key and pads now cached
    keys[KEY] = NEW  # rotated
    assert refused(verifier, with_old) == "SignatureDoesNotMatch"
    assert refused(verifier, signed(OLD)) == "SignatureDoesNotMatch"
    assert verifier.verify("POST", b"/", b"", signed(NEW), BODY) == KEY
    del keys[KEY]  # revoked
    assert refused(verifier, signed(NEW)) == "InvalidClientTokenId"


def test_the_quick_path_refuses_what_the_general_path_refuses() -> None:
    verifier = auth.Verifier({KEY: OLD})
    good = signed(OLD)
    assert refused(verifier, good, BODY + b" ") == "SignatureDoesNotMatch"  # another body
    unsigned = [(n, b"UNSIGNED-PAYLOAD" if n == b"x-amz-content-sha256" else v) for n, v in good]
    assert refused(verifier, unsigned) == "SignatureDoesNotMatch"
    tampered = [(n, b"AmazonSQS.DeleteQueue" if n == b"x-amz-target" else v) for n, v in good]
    assert refused(verifier, tampered) == "SignatureDoesNotMatch"  # a signed header changed
    # values the canonical request trims (botocore's str.split() whitespace) are verified, not refused
    for value in ("two  spaces", " leading", "trailing ", "tab\there"):
        assert verifier.verify("POST", b"/", b"", signed(OLD, {"X-Amz-Meta": value}), BODY) == KEY


def test_a_changed_policy_takes_effect_on_the_next_request() -> None:
    service = Principal(f"arn:aws:iam::{ACCOUNT}:role/scte-certification", ACCOUNT)
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"

    def policy(effect: str) -> str:
        statement = {"Effect": effect, "Principal": {"AWS": service.arn}, "Action": "sqs:SendMessage", "Resource": arn}
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

    assert _queue_allows(policy("Allow"), service, "SendMessageBatch", "us-east-1", ACCOUNT, "q")
    assert _queue_allows(policy("Allow"), service, "SendMessageBatch", "us-east-1", ACCOUNT, "q")  # cached
    assert not _queue_allows(policy("Deny"), service, "SendMessageBatch", "us-east-1", ACCOUNT, "q")
    assert not _queue_allows(None, service, "SendMessageBatch", "us-east-1", ACCOUNT, "q")  # policy removed
