"""The broker's direct SigV4 canonical request (`auth._quick_signature`, its hot path) signs exactly as botocore's
signer does, so a request it verifies is one botocore would verify, and the fallback stays the exception."""

from __future__ import annotations

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scte.queue.server import auth

KEY, SECRET = "AKIDQUICK", "quick-secret-0123456789"


def signed_request(headers: dict[str, str], body: bytes) -> tuple[list[tuple[bytes, bytes]], AWSRequest]:
    request = AWSRequest(method="POST", url="http://127.0.0.1:9324/", data=body, headers=headers)
    botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "sqs", "eu-west-1").add_auth(request)
    raw = [(b"host", b"127.0.0.1:9324")] + [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    return raw, request


def test_the_quick_signature_is_botocores_and_verify_takes_the_quick_path(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        ({"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"}, b'{"a": 1}'),
        ({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, b"Action=ListQueues&Version=2012-11-05"),
        ({"Content-Type": "  application/x-amz-json-1.0  ", "X-Amz-Meta": "two  spaces\tand a tab"}, b""),
    ]
    fallbacks = []
    original = auth._signature

    def counting(*args: object) -> str:
        fallbacks.append(args)
        return original(*args)  # type: ignore[arg-type]

    verifier = auth.Verifier({KEY: SECRET})
    monkeypatch.setattr(auth, "_signature", counting)
    for headers, body in cases:
        raw, _request = signed_request(headers, body)
        assert verifier.verify("POST", b"/", b"", raw, body) == KEY
    assert fallbacks == []


def test_the_quick_path_refuses_what_botocore_refuses() -> None:
    body = b'{"QueueUrl": "q", "MessageBody": "signed"}'
    raw, _ = signed_request({"Content-Type": "application/x-amz-json-1.0"}, body)
    verifier = auth.Verifier({KEY: SECRET})
    for other in (b'{"QueueUrl": "q", "MessageBody": "forged"}', body + b" "):
        try:
            verifier.verify("POST", b"/", b"", raw, other)
        except auth.WireError as exc:
            assert exc.code == "SignatureDoesNotMatch"
        else:
            raise AssertionError("another body passed the signature")
    assert verifier.verify("POST", b"/", b"", raw, body) == KEY
