"""MD5OfMessageBody / MD5OfMessageAttributes must equal what AWS returns, bit for bit.

botocore has no client-side SQS MD5 check to compare against (the SDKs that verify are Java, Go, .NET,
Ruby...), so the expected values are digests real SQS returned for these inputs (moto's suite asserts the
same ones), an independent implementation written from the AWS SDK's description of the encoding, and
moto's own implementation on generated attributes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scte.queue.checksums import md5_of_body, md5_of_message_attributes, transport_type

# Generating full-range unicode text is slow on a cold cache (CI), and CI machines are small:
# neither is a defect of the code under test.
relaxed = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)

Attrs = dict[str, dict[str, object]]


def reference_md5(attrs: Mapping[str, Mapping[str, object]]) -> str:
    """The encoding as the AWS SDK for Java documents it, written independently of the module."""
    buf = bytearray()
    for name in sorted(attrs, key=lambda n: n.encode("utf-8")):
        attr = attrs[name]
        data_type = str(attr["DataType"])
        for part in (name.encode("utf-8"), data_type.encode("utf-8")):
            buf += struct.pack(">I", len(part)) + part
        if data_type.split(".")[0] == "Binary":
            value = attr["BinaryValue"]
            assert isinstance(value, bytes)
            buf += b"\x02" + struct.pack(">I", len(value)) + value
        else:
            text = str(attr["StringValue"]).encode("utf-8")
            buf += b"\x01" + struct.pack(">I", len(text)) + text
    return hashlib.md5(bytes(buf)).hexdigest()


# (attributes, digest AWS returned)
KNOWN: list[tuple[Attrs, str]] = [
    (
        {"SOME_Valid.attribute-Name": {"StringValue": "1493147359900", "DataType": "Number"}},
        "36655e7e9d7c0e8479fa3f3f42247ae7",
    ),
    (
        {
            "id": {"StringValue": "2018fc74-4f77-1a5a-1be0-c2d037d5052b", "DataType": "String"},
            "contentType": {"StringValue": "application/json", "DataType": "String"},
            "timestamp": {"StringValue": "1602845432024", "DataType": "Number.java.lang.Long"},
        },
        "b12289320bb6e494b18b645ef562b4a9",
    ),
    (
        {
            "id": {"StringValue": "453ae55e-f03b-21a6-a4b1-70c2e2e8fe71", "DataType": "String"},
            "mybin": {"BinaryValue": b"kekchebukek", "DataType": "Binary"},
            "timestamp": {"StringValue": "1603134247654", "DataType": "Number.java.lang.Long"},
            "contentType": {"StringValue": "application/json", "DataType": "String"},
        },
        "049075255ebc53fb95f7f9f3cedf3c50",
    ),
    (
        {"timestamp": {"StringValue": "1493147359900", "DataType": "Number.java.lang.Long"}},
        "2e2e4876d8e0bd6b8c2c8f556831c349",
    ),
    (
        {"timestamp": {"StringValue": "1493147359901", "DataType": "Number.java.lang.Long"}},
        "cfa7c73063c6e2dbf9be34232a1978cf",
    ),
    (
        {"timestamp": {"StringValue": "1493147359900", "DataType": "Number"}},
        "235c5c510d26fb653d073faed50ae77c",
    ),
    (
        {"timestamp": {"StringValue": "1493147359901", "DataType": "Number"}},
        "994258b45346a2cc3f9cbb611aa7af30",
    ),
    (
        {"somevalue": {"StringValue": "somevalue", "DataType": "String.custom"}},
        "9e05cca738e70ff6c6041e82d5e77ef1",
    ),
]


def test_md5_of_body_known_values() -> None:
    assert md5_of_body("derp") == "58fd9edd83341c29f1aebba81c31e257"
    assert md5_of_body("") == "d41d8cd98f00b204e9800998ecf8427e"
    assert md5_of_body("Héllo!😀") == hashlib.md5("Héllo!😀".encode()).hexdigest()


@pytest.mark.parametrize(("attrs", "expected"), KNOWN)
def test_md5_of_message_attributes_matches_aws(attrs: Attrs, expected: str) -> None:
    assert md5_of_message_attributes(attrs) == expected
    assert reference_md5(attrs) == expected


def test_md5_is_independent_of_insertion_order() -> None:
    attrs = KNOWN[2][0]
    reordered = dict(reversed(list(attrs.items())))
    assert md5_of_message_attributes(reordered) == md5_of_message_attributes(attrs)


@pytest.mark.parametrize(
    "attrs",
    [
        {"bin": {"DataType": "Binary.gif", "BinaryValue": bytes(range(256))}},
        {
            "j": {"DataType": "String.json", "StringValue": '{"a": 1}'},
            "n": {"DataType": "Number.int", "StringValue": "-1.5e3"},
        },
        {"uni": {"DataType": "String", "StringValue": "żółć 😀 \u00e9\r\n\t"}},
        {"raw": {"DataType": "Binary", "BinaryValue": bytearray(b"\x00\xff")}},
    ],
)
def test_custom_types_binary_and_unicode_agree_with_reference(attrs: Attrs) -> None:
    normalised = {
        name: {**attr, "BinaryValue": bytes(attr["BinaryValue"])} if "BinaryValue" in attr else attr  # type: ignore[call-overload]
        for name, attr in attrs.items()
    }
    assert md5_of_message_attributes(attrs) == reference_md5(normalised)


def test_binary_and_string_with_same_bytes_differ() -> None:
    as_string = md5_of_message_attributes({"a": {"DataType": "String", "StringValue": "xyz"}})
    as_binary = md5_of_message_attributes({"a": {"DataType": "Binary", "BinaryValue": b"xyz"}})
    assert as_string != as_binary


def test_transport_type() -> None:
    assert transport_type("Binary") == "Binary"
    assert transport_type("Binary.gif") == "Binary"
    assert transport_type("String.json") == "String"
    assert transport_type("Number.int") == "String"
    assert transport_type("BinaryX") == "String"


@pytest.mark.parametrize(
    "attrs",
    [
        {"a": {"StringValue": "x"}},
        {"a": {"DataType": "String"}},
        {"a": {"DataType": "String", "StringValue": b"bytes"}},
        {"a": {"DataType": "Binary", "BinaryValue": "not-bytes"}},
    ],
)
def test_malformed_attribute_raises_type_error(attrs: Attrs) -> None:
    with pytest.raises(TypeError):
        md5_of_message_attributes(attrs)


_names = st.text(alphabet="ABCxyz019_-.", min_size=1, max_size=12)
_string_attr = st.fixed_dictionaries(
    {
        "DataType": st.sampled_from(["String", "Number", "String.json", "Number.float"]),
        "StringValue": st.text(min_size=1, max_size=30),
    }
)
_binary_attr = st.fixed_dictionaries(
    {"DataType": st.sampled_from(["Binary", "Binary.png"]), "BinaryValue": st.binary(min_size=1, max_size=30)}
)


@relaxed
@given(st.dictionaries(_names, st.one_of(_string_attr, _binary_attr), max_size=10))
def test_md5_agrees_with_reference_implementation(attrs: Attrs) -> None:
    assert md5_of_message_attributes(attrs) == reference_md5(attrs)


def _moto_md5(attrs: Attrs) -> str:
    """moto's server-side digest (its suite checks it against digests real SQS returned)."""
    from moto.sqs.models import Message

    message = Message("id", "body")
    message.message_attributes = attrs
    return message.attribute_md5


# botocore (the pinned 1.43) has no client-side MD5 check to compare against; moto's implementation, written
# apart from ours and pinned in the dev extra, is the third opinion beside the reference above.
@relaxed
@given(st.dictionaries(_names, st.one_of(_string_attr, _binary_attr), max_size=10))
def test_md5_agrees_with_moto(attrs: Attrs) -> None:
    assert md5_of_message_attributes(attrs) == _moto_md5(attrs)


def test_known_digests_agree_with_moto() -> None:
    for attrs, expected in KNOWN:
        assert _moto_md5(attrs) == expected
