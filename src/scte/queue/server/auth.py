"""AWS Signature Version 4: the request's region, and (with `--auth strict`) verification.

The region of a request is the one in its SigV4 credential scope
(`Credential=AKID/20240101/us-west-2/sqs/aws4_request`, in the `Authorization` header or, for presigned
URLs, the `X-Amz-Credential` query parameter); the broker serves one engine per region.

Verification recomputes the signature with botocore's own signer (`SigV4Auth`: canonical request, string
to sign, signing key) over exactly the headers the request lists in `SignedHeaders`, and compares in
constant time. It answers as AWS does, HTTP 403:

- no `Authorization` header and no presigned query -> `MissingAuthenticationToken`
- an `Authorization` header that is not SigV4 or lacks a part, a bad date -> `IncompleteSignature`
- an access key that is not configured -> `InvalidClientTokenId`
- `X-Amz-Date` more than 15 minutes from now (presigned: past `X-Amz-Expires`) -> `RequestExpired`
- anything else that does not match (secret, body, headers, scope) -> `SignatureDoesNotMatch`
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from scte.queue.server.errors import WireError

SCHEME = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

Headers = Iterable[tuple[bytes, bytes]]


def missing_authentication_token() -> WireError:
    return WireError(
        "MissingAuthenticationToken",
        "Request is missing Authentication Token",
        status=403,
        json_type="com.amazon.coral.service#MissingAuthenticationTokenException",
    )


def incomplete_signature(message: str) -> WireError:
    return WireError(
        "IncompleteSignature",
        message,
        status=403,
        json_type="com.amazon.coral.service#IncompleteSignatureException",
    )


def invalid_client_token_id() -> WireError:
    return WireError(
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        status=403,
        json_type="com.amazon.coral.service#UnrecognizedClientException",
    )


def signature_does_not_match() -> WireError:
    return WireError(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
        "Access Key and signing method. Consult the service documentation for details.",
        status=403,
        json_type="com.amazon.coral.service#InvalidSignatureException",
    )


def unsigned_payload() -> WireError:
    return WireError(
        "SignatureDoesNotMatch",
        "X-Amz-Content-SHA256: UNSIGNED-PAYLOAD is not accepted: SQS and SNS requests must sign their body.",
        status=403,
        json_type="com.amazon.coral.service#InvalidSignatureException",
    )


def access_denied(message: str) -> WireError:
    """SQS's answer to a request the resource's policy does not allow (nothing is changed)."""
    return WireError("AccessDenied", message, status=403, json_type="com.amazonaws.sqs#AccessDeniedException")


def request_expired(message: str) -> WireError:
    return WireError(
        "RequestExpired", message, status=403, json_type="com.amazon.coral.service#RequestExpiredException"
    )


# -- the region -------------------------------------------------------------------------------------------


def region_from_authorization(value: bytes) -> str | None:
    """The region in `Credential=AKID/date/REGION/service/aws4_request`, without validating anything else."""
    start = value.find(b"Credential=")
    if start < 0:
        return None
    end = value.find(b",", start)
    parts = value[start + 11 : end if end >= 0 else len(value)].split(b"/")
    if len(parts) != 5:
        return None
    return parts[2].decode("latin-1")


def region_from_query(query_string: bytes) -> str | None:
    """The region of a presigned URL's `X-Amz-Credential`."""
    start = query_string.find(b"X-Amz-Credential=")
    if start < 0:
        return None
    end = query_string.find(b"&", start)
    raw = query_string[start + 17 : end if end >= 0 else len(query_string)]
    parts = raw.replace(b"%2F", b"/").replace(b"%2f", b"/").split(b"/")
    if len(parts) != 5:
        return None
    return parts[2].decode("latin-1")


# -- verification -----------------------------------------------------------------------------------------


class Signed(NamedTuple):
    """The signature parts of a request, from its header or its presigned query (a tuple: built on every
    request, and a frozen dataclass's constructor costs several times as much)."""

    access_key: str
    date: str  # yyyymmdd of the credential scope
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    timestamp: str  # X-Amz-Date, yyyymmddThhmmssZ
    expires: int | None  # presigned only
    query: str  # the canonical-request query string as sent (without X-Amz-Signature when presigned)


def _credential(value: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise incomplete_signature(
            f"Credential should be scoped to a valid region. Malformed credential: '{value}'"
            if len(parts) == 5
            else f"Authorization header requires 'Credential' parameter. Authorization={value}"
        )
    return parts[0], parts[1], parts[2], parts[3]


# What every SDK sends, matched in one call; anything else is parsed (and refused) field by field below.
_USUAL_HEADER_BYTES = re.compile(
    rb"AWS4-HMAC-SHA256 Credential=([A-Za-z0-9_-]+)/([0-9]{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request, ?"
    rb"SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})"
)
# Whitespace to botocore's trimming (str.split() on latin-1) other than the space and the newline: a header
# value holding one is canonicalised by the general path; so is one with a run of spaces or an outer space.
_WHITESPACE = b"\t\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0"
_USUAL_HEADER = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([A-Za-z0-9_-]+)/([0-9]{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request, ?"
    r"SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})"
)


def _parse_header(authorization: str, headers: Mapping[str, list[str]], query: str) -> Signed:
    usual = _USUAL_HEADER.fullmatch(authorization)
    if usual is not None:
        timestamp = (headers.get("x-amz-date") or [""])[0]
        if timestamp:
            key, date, region, service, signed_headers, signature = usual.groups()
            return Signed(key, date, region, service, signed_headers.split(";"), signature, timestamp, None, query)
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme != SCHEME:
        raise incomplete_signature(f"Authorization header requires a {SCHEME} signature. Authorization={scheme}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            fields[key] = value
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(required):
            raise incomplete_signature(
                f"Authorization header requires '{required}' parameter. Authorization={authorization}"
            )
    access_key, date, region, service = _credential(fields["Credential"])
    timestamp = (headers.get("x-amz-date") or [""])[0]
    if not timestamp:
        raise incomplete_signature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    return Signed(
        access_key,
        date,
        region,
        service,
        fields["SignedHeaders"].split(";"),
        fields["Signature"],
        timestamp,
        None,
        query,
    )


def _parse_presigned(query: str) -> Signed:
    pairs = parse_qsl(query, keep_blank_values=True)
    values = dict(pairs)
    for required in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if not values.get(required):
            raise incomplete_signature(f"AWS query-string parameters must include '{required}'.")
    if values.get("X-Amz-Algorithm") != SCHEME:
        raise incomplete_signature(f"X-Amz-Algorithm only supports '{SCHEME}'.")
    access_key, date, region, service = _credential(values["X-Amz-Credential"])
    try:
        expires = int(values.get("X-Amz-Expires", "900"))
    except ValueError:
        raise incomplete_signature("X-Amz-Expires should be a number.") from None
    if not 0 < expires <= MAX_PRESIGNED_EXPIRES:
        raise incomplete_signature(f"X-Amz-Expires must be between 1 and {MAX_PRESIGNED_EXPIRES} seconds.")
    unsigned = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    return Signed(
        access_key,
        date,
        region,
        service,
        values["X-Amz-SignedHeaders"].split(";"),
        values["X-Amz-Signature"],
        values["X-Amz-Date"],
        expires,
        unsigned,
    )


@functools.lru_cache(maxsize=256)  # a second's requests share their X-Amz-Date
def _epoch(timestamp: str) -> int:
    try:
        return calendar.timegm(time.strptime(timestamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise incomplete_signature(
            f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def _format(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


class Verifier:
    """Checks SigV4 signatures against the configured access keys (`--auth strict`)."""

    def __init__(self, keys: Mapping[str, str], clock: Callable[[], float] = time.time) -> None:
        self.keys = keys  # kept as given: a `KeyStore` re-reads its file when it changes
        self.clock = clock

    def verify(self, method: str, raw_path: bytes, query_string: bytes, headers: Headers, body: bytes) -> str:
        """The access key that signed the request, if it is a configured key and the signature, the time and
        the body hash all hold; otherwise raise the `WireError` AWS answers."""
        by_name: dict[bytes, list[bytes]] = {}
        repeated = False
        for name, value in headers:
            name = name.lower()  # they arrive lower-cased (ASGI, our protocol): to be sure, at little cost
            values = by_name.get(name)
            if values is None:
                by_name[name] = [value]
            else:
                values.append(value)
                repeated = True
        payload_hash = hashlib.sha256(body).hexdigest()  # once: the quick path and the full one share it
        if raw_path == b"/" and not query_string and not repeated:
            key = self._verify_usual(method, by_name, payload_hash)
            if key is not None:
                return key
        return self._verify(method, raw_path, query_string, by_name, body, payload_hash)

    def _verify_usual(self, method: str, headers: Mapping[bytes, list[bytes]], payload_hash: str) -> str | None:
        """An SDK's `POST /` with the usual `Authorization` header, checked on the bytes as they came: the
        access key when every check holds (the same checks as `_verify`, which a None sends the request to,
        to be answered with the right error or accepted by the general path)."""
        authorization = headers.get(b"authorization")
        timestamps = headers.get(b"x-amz-date")
        if authorization is None or timestamps is None:
            return None
        usual = _USUAL_HEADER_BYTES.fullmatch(authorization[0])
        if usual is None:
            return None
        access_key, date, region, service, signed_headers, signature = usual.groups()
        timestamp = timestamps[0]
        if timestamp[:8] != date:
            return None
        key = access_key.decode("ascii")
        secret = self.keys.get(key)
        if secret is None:
            return None
        try:
            when = _epoch(timestamp.decode("latin-1"))
        except WireError:
            return None
        if abs(self.clock() - when) > MAX_SKEW_SECONDS:
            return None
        payload = payload_hash.encode()
        content_sha = headers.get(b"x-amz-content-sha256")
        if content_sha is not None and content_sha[0] != payload:
            return None  # UNSIGNED-PAYLOAD or a hash that is not the body's: `_verify` says which
        names, joined = _signed_names(signed_headers)
        try:
            block = b"\n".join([name + b":" + headers[name][0] for name in names])
        except KeyError:
            return None  # a signed header that is absent: `_verify` canonicalises it
        if (
            len(block.translate(None, _WHITESPACE)) != len(block)
            or block.count(b"\n") != len(names) - 1
            or (b" " in block and (b"  " in block or b": " in block or b" \n" in block or block.endswith(b" ")))
        ):
            return None  # a value to trim (SigV4's Trimall, as str.split() sees whitespace): `_verify` does it
        canonical = hashlib.sha256(
            b"%b\n/\n\n%b\n\n%b\n%b" % (method.upper().encode(), block, joined, payload)
        ).hexdigest()
        to_sign = b"AWS4-HMAC-SHA256\n%b\n%b/%b/%b/aws4_request\n%b" % (
            timestamp,
            date,
            region,
            service,
            canonical.encode(),
        )
        inner, outer = _hmac_pads(secret, date, region, service)
        digest = inner.copy()
        digest.update(to_sign)
        mac = outer.copy()
        mac.update(digest.digest())
        if hmac.compare_digest(mac.hexdigest().encode(), signature):
            return key
        return None

    def _verify(
        self,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        by_name: Mapping[bytes, list[bytes]],
        body: bytes,
        payload_hash: str,
    ) -> str:
        header_map = {
            name.decode("latin-1"): [value.decode("latin-1") for value in values] for name, values in by_name.items()
        }
        query = query_string.decode("latin-1")
        authorization = header_map.get("authorization")
        if authorization:
            signed = _parse_header(authorization[0], header_map, query)
        elif "X-Amz-Signature=" in query or "X-Amz-Credential=" in query:
            signed = _parse_presigned(query)
        else:
            raise missing_authentication_token()
        if signed.timestamp[:8] != signed.date:
            raise signature_does_not_match()
        secret = self.keys.get(signed.access_key)
        if secret is None:
            raise invalid_client_token_id()
        when = _epoch(signed.timestamp)
        now = self.clock()
        if signed.expires is not None:
            if now > when + signed.expires:
                raise request_expired(f"Request has expired. X-Amz-Date={signed.timestamp}")
            if when - now > MAX_SKEW_SECONDS:
                raise signature_does_not_match()
        elif abs(now - when) > MAX_SKEW_SECONDS:
            bound = "earlier" if when < now else "later"
            sign = "-" if when < now else "+"
            raise request_expired(
                f"Signature expired: {signed.timestamp} is now {bound} than "
                f"{_format(now - MAX_SKEW_SECONDS if when < now else now + MAX_SKEW_SECONDS)} "
                f"({_format(now)} {sign} 15 min.)"
            )
        content_sha = header_map.get("x-amz-content-sha256")
        if content_sha:
            # The signature covers this header's value instead of the body: UNSIGNED-PAYLOAD would leave the
            # body unsigned (SQS and SNS refuse it), and a hash that is not the body's would sign another body.
            if content_sha[0] == UNSIGNED_PAYLOAD:
                raise unsigned_payload()
            if content_sha[0] != payload_hash:
                raise signature_does_not_match()
        if raw_path == b"/" and not signed.query and signed.expires is None:
            # Every SDK's POST to `/`: the canonical request built here directly (botocore's signer builds
            # request objects first, several times the cost); anything else, or a mismatch, goes to botocore.
            expected = _quick_signature(method, signed, header_map, payload_hash, secret)
            if hmac.compare_digest(expected, signed.signature):
                return signed.access_key
        expected = _signature(method, raw_path, signed, header_map, body, secret)
        if not hmac.compare_digest(expected, signed.signature):
            raise signature_does_not_match()
        return signed.access_key


@functools.lru_cache(maxsize=256)  # a client's requests list the same headers
def _signed_names(signed_headers: bytes) -> tuple[tuple[bytes, ...], bytes]:
    """The `SignedHeaders` names as the canonical request lists them (sorted, once each), and joined."""
    names = tuple(sorted(set(signed_headers.split(b";"))))
    return names, b";".join(names)


@functools.lru_cache(maxsize=1024)
def _hmac_pads(secret: str, date: bytes, region: bytes, service: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) with the day's signing key, its inner and outer hashes keyed once: a request
    copies both (the pads are the same for the key's every request of the day; `hmac.digest` would hash
    them again each time). Keyed by the secret: a rotated secret gets its own pads at once."""
    key = _signing_key(secret, date.decode("ascii"), region.decode("ascii"), service.decode("ascii"))
    block = key.ljust(64, b"\0")  # SHA-256's block; the derived key is 32 bytes
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


@functools.lru_cache(maxsize=1024)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key (four HMACs), the same for a key's every request of the day."""
    key = hmac.digest(("AWS4" + secret).encode(), date.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def _quick_signature(
    method: str, signed: Signed, headers: Mapping[str, list[str]], payload_hash: str, secret: str
) -> str:
    """The signature of a request to `/` without a query, as botocore's signer computes it."""
    names = sorted(set(signed.signed_headers))
    lines = [method.upper(), "/", ""]
    for name in names:
        lines.append(f"{name}:{_canonical_value(headers.get(name, ()))}")
    lines += ["", ";".join(names), payload_hash]
    canonical = "\n".join(lines)
    scope = f"{signed.date}/{signed.region}/{signed.service}/aws4_request"
    to_sign = f"{SCHEME}\n{signed.timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = _signing_key(secret, signed.date, signed.region, signed.service)
    return hmac.digest(key, to_sign.encode(), "sha256").hex()  # one C call (hmac.new builds Python objects)


def _canonical_value(values: list[str] | tuple[()]) -> str:
    """SigV4's Trimall of a header's values (joined by commas): spaces trimmed and runs of them made one."""
    if len(values) == 1:
        value = values[0]
        if "  " not in value and "\t" not in value and value == value.strip():
            return value  # the usual header: nothing to trim
    return ",".join(" ".join(v.split()) for v in values)


@functools.cache
def _signer_class() -> Any:
    """botocore's SigV4 signer, signing exactly the headers the client listed (botocore drops e.g. user-agent)."""
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]

    class Signer(SigV4Auth):  # type: ignore[misc]
        def headers_to_sign(self, request: Any) -> Any:
            return request.context["signed_headers"]

    return Signer


def _signature(
    method: str, raw_path: bytes, signed: Signed, headers: Mapping[str, list[str]], body: bytes, secret: str
) -> str:
    """The signature botocore's SigV4 signer computes for this request with this secret."""
    from botocore.awsrequest import AWSRequest, HTTPHeaders  # type: ignore[import-untyped]
    from botocore.credentials import Credentials  # type: ignore[import-untyped]

    to_sign = HTTPHeaders()
    for name in signed.signed_headers:
        for value in headers.get(name, ()):
            to_sign[name] = value
    host = (headers.get("host") or ["localhost"])[0]
    url = f"http://{host}{raw_path.decode('latin-1') or '/'}"
    if signed.query:
        url += "?" + signed.query
    request = AWSRequest(method=method, url=url, data=body)
    if "x-amz-content-sha256" in headers:
        request.headers["X-Amz-Content-SHA256"] = headers["x-amz-content-sha256"][0]
    request.context["timestamp"] = signed.timestamp
    request.context["signed_headers"] = to_sign
    signer = _signer_class()(Credentials(signed.access_key, secret), signed.service, signed.region)
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    return str(signer.signature(string_to_sign, request))
