"""A small direct client for the hot SQS and SNS calls: SQS's JSON protocol, SNS's query protocol.

aiobotocore spends about a millisecond of CPU on every call in the client alone (the service model,
the serializer and parser, the event hooks, the signer) where the work is a form or a JSON document, a
signature and a POST: 0.2 ms. The bus makes a call or two per event (a publish, a receive, a delete),
so that millisecond is most of its cost over HTTP. `AwsTransport` sends its hot calls (Publish,
PublishBatch, SendMessageBatch, ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibility) through
this client and everything else (provisioning, look-ups) through aiobotocore.

What it keeps of botocore's behaviour: SigV4 signing (real AWS and `scte queue serve --auth strict`
check it); the `standard` retry mode (connection errors, 5xx and throttling retried up to
`max_attempts` in all, with jittered exponential backoff capped at 20 s); error codes as botocore
reports them (an SQS JSON error's `x-amzn-query-error` code first, as botocore does for query-compatible
services, else its `__type`; an SNS XML error's `Code`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

__all__ = ["Credentials", "WireClient", "WireError", "publish_batch_failures", "sns_entry_form"]

Credentials = tuple[str, str, str | None]
"""(access key id, secret access key, session token or None)."""

_THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "TransactionInProgressException",
    }
)
_SNS_VERSION = "2010-03-31"
_FORM = "application/x-www-form-urlencoded; charset=utf-8"
_JSON = "application/x-amz-json-1.0"


class WireError(Exception):
    """The service answered with an error (after the retries): its code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class _Endpoint:
    """One service's URL, the parts SigV4 signs, and the signing keys of the day."""

    def __init__(self, url: str, service: str, region: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.service = service
        self.region = region
        self.host = parts.netloc  # sent as the Host header, so what is signed is what the server sees
        self.path = parts.path or "/"
        self._keys: dict[tuple[str, str], bytes] = {}

    def key(self, secret: str, day: str) -> bytes:
        cached = self._keys.get((secret, day))
        if cached is None:
            k = _hmac(("AWS4" + secret).encode(), day)
            for part in (self.region, self.service, "aws4_request"):
                k = _hmac(k, part)
            self._keys.clear()  # one day, one secret at a time
            cached = self._keys[(secret, day)] = k
        return cached


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class WireClient:
    """POSTs signed SQS JSON and SNS query requests; one aiohttp session, kept alive."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        credentials: Callable[[], Awaitable[Credentials]],
        connect_timeout: float,
        max_attempts: int,
        max_pool_connections: int,
    ) -> None:
        self._sqs = _Endpoint(endpoint_url or f"https://sqs.{region}.amazonaws.com/", "sqs", region)
        self._sns = _Endpoint(endpoint_url or f"https://sns.{region}.amazonaws.com/", "sns", region)
        self._credentials = credentials
        self._max_attempts = max(1, max_attempts)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=30)
        self._limit = max_pool_connections
        self._http: aiohttp.ClientSession | None = None
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- the two protocols -------------------------------------------------------------------------

    async def sqs(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """An SQS action in the JSON protocol; the decoded response (botocore's shapes)."""
        body = json.dumps(params, separators=(",", ":")).encode()
        status, headers, raw = await self._call(self._sqs, body, _JSON, f"AmazonSQS.{action}")
        if status < 400:
            return json.loads(raw) if raw else {}
        raise _sqs_error(status, headers, raw)

    async def sns(self, action: str, form: list[tuple[str, str]]) -> ElementTree.Element:
        """An SNS action in the query protocol; the XML response's root."""
        pairs = [("Action", action), ("Version", _SNS_VERSION), *form]
        status, _headers, raw = await self._call(self._sns, urlencode(pairs).encode(), _FORM, None)
        if status < 400:
            return ElementTree.fromstring(raw)
        raise _sns_error(status, raw)

    # -- one request, with retries -----------------------------------------------------------------

    async def _call(
        self, endpoint: _Endpoint, body: bytes, content_type: str, target: str | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        if self._closed:
            raise WireError("TransportClosed", "the transport is closed", 0)
        attempt = 1
        while True:
            try:
                status, headers, raw = await self._post(endpoint, body, content_type, target)
            except (aiohttp.ClientError, OSError, TimeoutError):
                if attempt >= self._max_attempts:
                    raise
            else:
                if status < 400 or attempt >= self._max_attempts or not _retryable(status, headers, raw, target):
                    return status, headers, raw
            await asyncio.sleep(random.random() * min(20.0, 2.0 ** (attempt - 1)))
            attempt += 1

    async def _post(
        self, endpoint: _Endpoint, body: bytes, content_type: str, target: str | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        http = self._http
        if http is None:
            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300)
            http = self._http = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, skip_auto_headers=("User-Agent",)
            )
        headers = await self._sign(endpoint, body, content_type, target)
        async with http.post(endpoint.url, data=body, headers=headers) as response:
            raw = await response.read()
            return response.status, response.headers, raw

    async def _sign(self, endpoint: _Endpoint, body: bytes, content_type: str, target: str | None) -> dict[str, str]:
        """SigV4 headers for a POST of `body` (no query string)."""
        key_id, secret, token = await self._credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = amz_date[:8]
        headers = {"content-type": content_type, "host": endpoint.host, "x-amz-date": amz_date}
        if target is not None:
            headers["x-amz-target"] = target
        if token:
            headers["x-amz-security-token"] = token
        names = sorted(headers)
        signed = ";".join(names)
        canonical = "\n".join(
            (
                "POST",
                endpoint.path,
                "",
                "".join(f"{name}:{headers[name].strip()}\n" for name in names),
                signed,
                hashlib.sha256(body).hexdigest(),
            )
        )
        scope = f"{day}/{endpoint.region}/{endpoint.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(endpoint.key(secret, day), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return headers


def _retryable(status: int, headers: Mapping[str, str], raw: bytes, target: str | None) -> bool:
    if status >= 500 or status == 429:
        return True
    error = _sqs_error(status, headers, raw) if target is not None else _sns_error(status, raw)
    return error.code in _THROTTLING


def _sqs_error(status: int, headers: Mapping[str, str], raw: bytes) -> WireError:
    try:
        document = json.loads(raw) if raw else {}
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    query_code = headers.get("x-amzn-query-error", "").split(";", 1)[0]
    code = query_code or str(document.get("__type") or "").rsplit("#", 1)[-1] or f"HTTP{status}"
    message = str(document.get("message") or document.get("Message") or "")
    return WireError(code, message, status)


def _sns_error(status: int, raw: bytes) -> WireError:
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError:
        return WireError(f"HTTP{status}", raw[:200].decode("utf-8", "replace"), status)
    return WireError(_text(root, "Code") or f"HTTP{status}", _text(root, "Message"), status)


def _text(element: ElementTree.Element, name: str) -> str:
    found = element.find(f".//{{*}}{name}")
    return (found.text or "") if found is not None else ""


def sns_entry_form(item: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A Publish(Batch) entry (`_provision.entry`'s shape) as query-protocol form fields, as botocore's
    serializer writes them: `MessageAttributes.entry.N.Name` / `.Value.DataType` / `.Value.StringValue`."""
    form = [
        (prefix + key, str(item[key]))
        for key in ("Id", "Message", "MessageGroupId", "MessageDeduplicationId")
        if key in item
    ]
    for n, (name, attribute) in enumerate((item.get("MessageAttributes") or {}).items(), 1):
        at = f"{prefix}MessageAttributes.entry.{n}."
        form.append((at + "Name", name))
        form.append((at + "Value.DataType", attribute["DataType"]))
        form.append((at + "Value.StringValue", attribute["StringValue"]))
    return form


def publish_batch_failures(root: ElementTree.Element) -> list[dict[str, str]]:
    """The `Failed` entries of a PublishBatch response, as botocore returns them."""
    failed = root.find(".//{*}Failed")
    if failed is None:
        return []
    return [
        {"Id": _text(member, "Id"), "Code": _text(member, "Code"), "Message": _text(member, "Message")}
        for member in failed.findall("{*}member")
    ]
