"""The SQS request rules: each bad input must fail with AWS's error code and a message naming what to fix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scte.queue.errors import SqsError
from scte.queue.validation import (
    DEFAULT_FIFO_ATTRIBUTES,
    DEFAULT_STANDARD_ATTRIBUTES,
    QUEUE_ATTRIBUTE_NAMES,
    READ_ONLY_ATTRIBUTE_NAMES,
    SETTABLE_ATTRIBUTE_NAMES,
    attributes_equal_for_create,
    changed_queue_attributes,
    content_dedup_id,
    message_size,
    new_queue_attributes,
    parse_redrive_policy,
    validate_attribute_names,
    validate_batch_entries,
    validate_dedup_id,
    validate_group_id,
    validate_int_param,
    validate_message_attributes,
    validate_message_body,
    validate_queue_name,
)

# Generating full-range unicode text is slow on a cold cache (CI), and CI machines are small:
# neither is a defect of the code under test.
relaxed = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)

ARN = "arn:aws:sqs:us-east-1:123456789012:dlq"
FIFO_ARN = "arn:aws:sqs:us-east-1:123456789012:dlq.fifo"
NAME_ERROR = "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"


def fails(call: Callable[[], object], code: str, *fragments: str) -> SqsError:
    with pytest.raises(SqsError) as info:
        call()
    err = info.value
    assert err.code == code, err.message
    for fragment in fragments:
        assert fragment in err.message, err.message
    return err


# --------------------------------------------------------------------------------------------- names


def test_attribute_name_sets_match_botocore_model() -> None:
    botocore_model = pytest.importorskip("botocore.loaders").create_loader().load_service_model("sqs", "service-2")
    enum = set(botocore_model["shapes"]["QueueAttributeName"]["enum"])
    assert enum - {"All"} == QUEUE_ATTRIBUTE_NAMES
    assert READ_ONLY_ATTRIBUTE_NAMES | SETTABLE_ATTRIBUTE_NAMES == QUEUE_ATTRIBUTE_NAMES
    assert not READ_ONLY_ATTRIBUTE_NAMES & SETTABLE_ATTRIBUTE_NAMES


@pytest.mark.parametrize("name", ["a", "A-z_0", "x" * 80, "name_with_underscores", "Name-with_all_the_THings"])
def test_valid_standard_queue_names(name: str) -> None:
    validate_queue_name(name, fifo=False)


@pytest.mark.parametrize("name", ["a.fifo", "x" * 75 + ".fifo", "my-queue.fifo"])
def test_valid_fifo_queue_names(name: str) -> None:
    validate_queue_name(name, fifo=True)


@pytest.mark.parametrize(
    "name", ["", "x" * 81, "p" * 85, "/my/test", "!@£$%^&*()queue", "has space", "dot.name", "q.fifo"]
)
def test_invalid_standard_queue_names(name: str) -> None:
    err = fails(lambda: validate_queue_name(name, fifo=False), "InvalidParameterValue")
    assert err.message == NAME_ERROR  # exact: moto's suite compares it


@pytest.mark.parametrize("name", ["plain", ".fifo", "x" * 76 + ".fifo", "bad!.fifo", "q.FIFO", "q.fifo.fifo"])
def test_invalid_fifo_queue_names(name: str) -> None:
    fails(
        lambda: validate_queue_name(name, fifo=True),
        "InvalidParameterValue",
        "FIFO queue",
        ".fifo",
        "1 to 80",
    )


_NAME_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@relaxed
@given(st.text(alphabet=_NAME_CHARS, max_size=90), st.booleans())
def test_queue_name_rule_agrees_with_reference(name: str, fifo: bool) -> None:
    def ok_chars(text: str) -> bool:
        return all(c.isascii() and (c.isalnum() or c in "-_") for c in text)

    if fifo:
        expected = name.endswith(".fifo") and len(name) - 5 >= 1 and len(name) <= 80 and ok_chars(name[:-5])
    else:
        expected = 1 <= len(name) <= 80 and ok_chars(name)
    try:
        validate_queue_name(name, fifo)
    except SqsError as err:
        assert err.code == "InvalidParameterValue"
        assert not expected
    else:
        assert expected


# ------------------------------------------------------------------------------------ new_queue_attributes


def test_defaults_for_new_standard_queue() -> None:
    assert new_queue_attributes("q", {}) == {
        "VisibilityTimeout": "30",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
        "SqsManagedSseEnabled": "true",
    }
    assert new_queue_attributes("q", {}) == dict(DEFAULT_STANDARD_ATTRIBUTES)


def test_defaults_for_new_fifo_queue() -> None:
    attrs = new_queue_attributes("q.fifo", {"FifoQueue": "true"})
    assert attrs == dict(DEFAULT_FIFO_ATTRIBUTES)
    assert attrs["FifoQueue"] == "true"
    assert attrs["ContentBasedDeduplication"] == "false"
    assert attrs["DeduplicationScope"] == "queue"
    assert attrs["FifoThroughputLimit"] == "perQueue"


def test_fifo_queue_value_is_case_insensitive_and_stored_lowercase() -> None:
    assert new_queue_attributes("q.fifo", {"FifoQueue": "True"})["FifoQueue"] == "true"
    attrs = new_queue_attributes("q.fifo", {"FifoQueue": "TRUE", "ContentBasedDeduplication": "TRUE"})
    assert attrs["ContentBasedDeduplication"] == "true"


def test_fifo_false_on_standard_queue_is_refused_as_aws_does() -> None:
    err = fails(lambda: new_queue_attributes("q", {"FifoQueue": "false"}), "InvalidAttributeName")
    assert err.message == "Unknown Attribute FifoQueue."
    assert new_queue_attributes("q", {}) == dict(DEFAULT_STANDARD_ATTRIBUTES)


def test_fifo_queue_needs_fifo_name_and_fifo_name_needs_fifo_queue() -> None:
    fails(lambda: new_queue_attributes("abcdef", {"FifoQueue": "true"}), "InvalidParameterValue", ".fifo")
    fails(lambda: new_queue_attributes("abc.fifo", {}), "InvalidParameterValue", "1 to 80")
    fails(lambda: new_queue_attributes("abc.fifo", {"FifoQueue": "false"}), "InvalidAttributeName")


def test_invalid_queue_name_is_reported_by_new_queue_attributes() -> None:
    err = fails(lambda: new_queue_attributes("/my/test", {}), "InvalidParameterValue")
    assert err.message == NAME_ERROR


def test_settable_values_are_validated_normalised_and_kept() -> None:
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"}]}
    )
    attrs = new_queue_attributes(
        "q",
        {
            "DelaySeconds": "900",
            "MaximumMessageSize": "262144",
            "MessageRetentionPeriod": "1209600",
            "ReceiveMessageWaitTimeSeconds": "20",
            "VisibilityTimeout": "043200",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": "100"}),
            "Policy": policy,
        },
    )
    assert attrs["DelaySeconds"] == "900"
    assert attrs["VisibilityTimeout"] == "43200"
    assert attrs["MaximumMessageSize"] == "262144"
    assert attrs["RedrivePolicy"] == json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": 100})
    assert attrs["Policy"] == policy


def test_padded_attribute_names_are_trimmed() -> None:
    # moto's suite creates queues with {"VisibilityTimeout ": "2"} and expects the 2 s to apply.
    assert new_queue_attributes("q", {"VisibilityTimeout ": "2"})["VisibilityTimeout"] == "2"


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("VisibilityTimeout", 0, 43200),
        ("MessageRetentionPeriod", 60, 1209600),
        ("DelaySeconds", 0, 900),
        ("ReceiveMessageWaitTimeSeconds", 0, 20),
        ("MaximumMessageSize", 1024, 1048576),
        ("KmsDataKeyReusePeriodSeconds", 60, 86400),
    ],
)
def test_integer_attribute_ranges(name: str, low: int, high: int) -> None:
    assert new_queue_attributes("q", {name: str(low)})[name] == str(low)
    assert new_queue_attributes("q", {name: str(high)})[name] == str(high)
    for bad in (str(low - 1), str(high + 1), "abc", "1.5", "", " 5", "0x10"):
        fails(
            partial(new_queue_attributes, "q", {name: bad}),
            "InvalidAttributeValue",
            f"Invalid value for the parameter {name}.",
            f"{low} to {high}",
            f"'{bad}'",
        )


def test_non_string_value_is_refused() -> None:
    fails(lambda: new_queue_attributes("q", {"DelaySeconds": 5}), "InvalidAttributeValue", "DelaySeconds")  # type: ignore[dict-item]


@pytest.mark.parametrize("name", ["FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled"])
def test_boolean_attributes_refuse_other_words(name: str) -> None:
    queue = "q.fifo"
    base = {"FifoQueue": "true"} if name != "FifoQueue" else {}
    fails(
        lambda: new_queue_attributes(queue, {**base, name: "tru"}),
        "InvalidAttributeValue",
        f"parameter {name}",
        "true or false",
        "'tru'",
    )


def test_unknown_attribute_name() -> None:
    err = fails(lambda: new_queue_attributes("q", {"Bogus": "1"}), "InvalidAttributeName")
    assert err.message == "Unknown Attribute Bogus."


@pytest.mark.parametrize("name", sorted(READ_ONLY_ATTRIBUTE_NAMES))
def test_read_only_attributes_cannot_be_given_to_create(name: str) -> None:
    fails(
        lambda: new_queue_attributes("q", {name: "1"}),
        "InvalidAttributeName",
        f"Unknown Attribute {name}.",
        "read-only",
    )


def test_fifo_only_attributes_on_standard_queue() -> None:
    fails(
        lambda: new_queue_attributes("q", {"ContentBasedDeduplication": "true"}),
        "InvalidAttributeName",
        "Unknown Attribute ContentBasedDeduplication.",
        "FIFO",
    )
    for name, value in (("DeduplicationScope", "queue"), ("FifoThroughputLimit", "perQueue")):
        err = fails(partial(new_queue_attributes, "q", {name: value}), "InvalidAttributeName")
        assert err.message == f"You can specify the {name} only when FifoQueue is set to true."


def test_high_throughput_fifo() -> None:
    attrs = new_queue_attributes(
        "q.fifo",
        {
            "FifoQueue": "true",
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
        },
    )
    assert attrs["DeduplicationScope"] == "messageGroup"
    assert attrs["FifoThroughputLimit"] == "perMessageGroupId"


def test_enumerated_fifo_attributes() -> None:
    fails(
        lambda: new_queue_attributes("q.fifo", {"FifoQueue": "true", "DeduplicationScope": "group"}),
        "InvalidAttributeValue",
        "DeduplicationScope",
        "messageGroup or queue",
        "'group'",
    )
    fails(
        lambda: new_queue_attributes("q.fifo", {"FifoQueue": "true", "FifoThroughputLimit": "fast"}),
        "InvalidAttributeValue",
        "FifoThroughputLimit",
        "perQueue or perMessageGroupId",
    )
    fails(
        lambda: new_queue_attributes("q.fifo", {"FifoQueue": "true", "FifoThroughputLimit": "perMessageGroupId"}),
        "InvalidAttributeValue",
        "FifoThroughputLimit",
        "DeduplicationScope is messageGroup",
    )


def test_kms_key_switches_sse_sqs_off_and_defaults_reuse_period() -> None:
    attrs = new_queue_attributes("q", {"KmsMasterKeyId": "master-key-id"})
    assert attrs["KmsMasterKeyId"] == "master-key-id"
    assert attrs["KmsDataKeyReusePeriodSeconds"] == "300"
    assert attrs["SqsManagedSseEnabled"] == "false"
    attrs = new_queue_attributes("q", {"KmsMasterKeyId": "master-key-id", "KmsDataKeyReusePeriodSeconds": "600"})
    assert attrs["KmsDataKeyReusePeriodSeconds"] == "600"


def test_both_encryption_options_are_refused() -> None:
    fails(
        lambda: new_queue_attributes("q", {"KmsMasterKeyId": "k", "SqsManagedSseEnabled": "true"}),
        "InvalidAttributeValue",
        "only one server-side encryption",
    )


def test_sse_sqs_can_be_disabled() -> None:
    assert new_queue_attributes("q", {"SqsManagedSseEnabled": "false"})["SqsManagedSseEnabled"] == "false"


def test_empty_removable_attributes_on_create_are_not_stored() -> None:
    attrs = new_queue_attributes("q", {"Policy": "", "RedrivePolicy": "", "KmsMasterKeyId": ""})
    assert attrs == dict(DEFAULT_STANDARD_ATTRIBUTES)


@pytest.mark.parametrize("policy", ["not json", "[1, 2]", '"text"'])
def test_policy_must_be_a_json_object(policy: str) -> None:
    fails(
        lambda: new_queue_attributes("q", {"Policy": policy}),
        "InvalidAttributeValue",
        "parameter Policy",
        "JSON",
    )


def test_redrive_allow_policy() -> None:
    by_queue = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [ARN]})
    assert json.loads(new_queue_attributes("q", {"RedriveAllowPolicy": by_queue})["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [ARN],
    }
    for permission in ("allowAll", "denyAll"):
        stored = new_queue_attributes("q", {"RedriveAllowPolicy": json.dumps({"redrivePermission": permission})})
        assert json.loads(stored["RedriveAllowPolicy"]) == {"redrivePermission": permission}
    bad = {
        "nope": "not a valid JSON object",
        json.dumps({"redrivePermission": "some"}): "allowAll, denyAll or byQueue",
        json.dumps({"redrivePermission": "byQueue"}): "1 to 10",
        json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": []}): "1 to 10",
        json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [ARN] * 11}): "1 to 10",
        json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": ["arn:aws:sns:x"]}): "not an SQS queue ARN",
        json.dumps(
            {"redrivePermission": "allowAll", "sourceQueueArns": [ARN]}
        ): "only when redrivePermission is byQueue",
    }
    for value, reason in bad.items():
        fails(
            partial(new_queue_attributes, "q", {"RedriveAllowPolicy": value}),
            "InvalidParameterValue",
            f"Value {value} for parameter RedriveAllowPolicy is invalid. Reason: ",
            reason,
        )


# ----------------------------------------------------------------------------------------- redrive policy


def test_parse_redrive_policy() -> None:
    assert parse_redrive_policy(json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": 5})) == (ARN, 5)
    assert parse_redrive_policy(json.dumps({"deadLetterTargetArn": FIFO_ARN, "maxReceiveCount": "1000"})) == (
        FIFO_ARN,
        1000,
    )
    assert parse_redrive_policy(
        json.dumps({"deadLetterTargetArn": "arn:aws-cn:sqs:cn-north-1:000000000000:q", "maxReceiveCount": 1})
    ) == ("arn:aws-cn:sqs:cn-north-1:000000000000:q", 1)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{", "not a valid JSON object"),
        ("[]", "not a valid JSON object"),
        ("{}", "mandatory attribute: deadLetterTargetArn"),
        (json.dumps({"deadLetterTargetArn": ARN}), "mandatory attribute: maxReceiveCount"),
        (json.dumps({"maxReceiveCount": 1}), "mandatory attribute: deadLetterTargetArn"),
        (
            json.dumps({"deadLetterTargetArn": "nope", "maxReceiveCount": 1}),
            "Invalid value for deadLetterTargetArn: nope",
        ),
        (
            json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1234:q", "maxReceiveCount": 1}),
            "deadLetterTargetArn",
        ),
        (json.dumps({"deadLetterTargetArn": ARN + "!", "maxReceiveCount": 1}), "deadLetterTargetArn"),
        (json.dumps({"deadLetterTargetArn": 5, "maxReceiveCount": 1}), "deadLetterTargetArn"),
        (
            json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": 0}),
            "maxReceiveCount: 0, valid values are from 1 to 1000",
        ),
        (json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": 1001}), "from 1 to 1000 both inclusive"),
        (json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": "x"}), "maxReceiveCount: x"),
        (json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": 2.5}), "maxReceiveCount: 2.5"),
        (json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": True}), "maxReceiveCount: True"),
    ],
)
def test_bad_redrive_policies(document: str, reason: str) -> None:
    fails(
        lambda: parse_redrive_policy(document),
        "InvalidParameterValue",
        f"Value {document} for parameter RedrivePolicy is invalid. Reason: ",
        reason,
    )


def test_redrive_policy_errors_surface_from_create_and_set() -> None:
    bad = json.dumps({"deadLetterTargetArn": ARN})
    fails(lambda: new_queue_attributes("q", {"RedrivePolicy": bad}), "InvalidParameterValue", "maxReceiveCount")
    current = new_queue_attributes("q", {})
    fails(lambda: changed_queue_attributes(current, False, {"RedrivePolicy": bad}), "InvalidParameterValue")


# -------------------------------------------------------------------------------- changed_queue_attributes


def test_set_attributes_returns_new_full_set() -> None:
    current = new_queue_attributes("q", {"VisibilityTimeout": "3"})
    new = changed_queue_attributes(current, False, {"VisibilityTimeout": "45", "DelaySeconds": "5"})
    assert new == {**current, "VisibilityTimeout": "45", "DelaySeconds": "5"}
    assert current["VisibilityTimeout"] == "3"  # the input is not mutated


def test_set_empty_removes_policies() -> None:
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"}]}
    )
    current = new_queue_attributes(
        "q",
        {
            "Policy": policy,
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": 5}),
            "RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"}),
        },
    )
    new = changed_queue_attributes(current, False, {"Policy": "", "RedrivePolicy": "", "RedriveAllowPolicy": ""})
    assert new == dict(DEFAULT_STANDARD_ATTRIBUTES)
    assert changed_queue_attributes(new, False, {"Policy": ""}) == new  # removing an absent one is fine


def test_set_refuses_read_only_and_unknown_names() -> None:
    current = new_queue_attributes("q", {})
    for name in READ_ONLY_ATTRIBUTE_NAMES:
        fails(
            partial(changed_queue_attributes, current, False, {name: "1"}),
            "InvalidAttributeName",
            name,
        )
    err = fails(lambda: changed_queue_attributes(current, False, {"Nope": "1"}), "InvalidAttributeName")
    assert err.message == "Unknown Attribute Nope."


def test_fifo_queue_cannot_be_changed() -> None:
    standard = new_queue_attributes("q", {})
    fails(
        lambda: changed_queue_attributes(standard, False, {"FifoQueue": "true"}),
        "InvalidAttributeName",
        "FifoQueue",
    )
    fails(
        lambda: changed_queue_attributes(standard, False, {"FifoQueue": "false"}),
        "InvalidAttributeName",
        "FifoQueue",
    )
    fifo = new_queue_attributes("q.fifo", {"FifoQueue": "true"})
    fails(
        lambda: changed_queue_attributes(fifo, True, {"FifoQueue": "false"}),
        "InvalidAttributeValue",
        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.",
    )
    fails(
        lambda: changed_queue_attributes(fifo, True, {"FifoQueue": "maybe"}),
        "InvalidAttributeValue",
        "FifoQueue",
    )
    assert changed_queue_attributes(fifo, True, {"FifoQueue": "true"}) == fifo


def test_set_fifo_only_attributes() -> None:
    fifo = new_queue_attributes("q.fifo", {"FifoQueue": "true"})
    new = changed_queue_attributes(
        fifo,
        True,
        {
            "ContentBasedDeduplication": "True",
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
        },
    )
    assert new["ContentBasedDeduplication"] == "true"
    assert new["FifoThroughputLimit"] == "perMessageGroupId"
    fails(
        lambda: changed_queue_attributes(new, True, {"DeduplicationScope": "queue"}),
        "InvalidAttributeValue",
        "perMessageGroupId is allowed only when DeduplicationScope is messageGroup",
    )
    standard = new_queue_attributes("q", {})
    fails(
        lambda: changed_queue_attributes(standard, False, {"ContentBasedDeduplication": "true"}),
        "InvalidAttributeName",
    )
    fails(
        lambda: changed_queue_attributes(standard, False, {"DeduplicationScope": "queue"}),
        "InvalidAttributeName",
        "only when FifoQueue",
    )


def test_set_validates_every_value_before_applying_any() -> None:
    current = new_queue_attributes("q", {})
    fails(
        lambda: changed_queue_attributes(current, False, {"VisibilityTimeout": "10", "DelaySeconds": "901"}),
        "InvalidAttributeValue",
        "DelaySeconds",
    )
    assert current == dict(DEFAULT_STANDARD_ATTRIBUTES)


def test_set_encryption() -> None:
    current = new_queue_attributes("q", {})
    kms = changed_queue_attributes(current, False, {"KmsMasterKeyId": "alias/aws/sqs"})
    assert kms["SqsManagedSseEnabled"] == "false"
    assert kms["KmsDataKeyReusePeriodSeconds"] == "300"
    fails(
        lambda: changed_queue_attributes(kms, False, {"SqsManagedSseEnabled": "true"}),
        "InvalidAttributeValue",
        'KmsMasterKeyId to ""',
    )
    back = changed_queue_attributes(kms, False, {"SqsManagedSseEnabled": "true", "KmsMasterKeyId": ""})
    assert back == dict(DEFAULT_STANDARD_ATTRIBUTES)
    plain = changed_queue_attributes(kms, False, {"KmsMasterKeyId": ""})
    assert "KmsMasterKeyId" not in plain
    assert "KmsDataKeyReusePeriodSeconds" not in plain
    assert plain["SqsManagedSseEnabled"] == "false"


def test_set_with_no_changes_returns_a_copy() -> None:
    current = new_queue_attributes("q", {})
    new = changed_queue_attributes(current, False, {})
    assert new == current
    assert new is not current


# ------------------------------------------------------------------------------ attributes_equal_for_create


def test_create_idempotency_compares_requested_attributes_only() -> None:
    requested = {
        "DelaySeconds": "900",
        "MaximumMessageSize": "262144",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": ARN, "maxReceiveCount": 100}),
        "VisibilityTimeout": "43200",
    }
    existing = new_queue_attributes("q", requested)
    assert attributes_equal_for_create(existing, requested)
    assert attributes_equal_for_create(existing, {})
    assert attributes_equal_for_create(existing, {"VisibilityTimeout": "043200"})
    assert attributes_equal_for_create(
        existing, {"RedrivePolicy": json.dumps({"maxReceiveCount": "100", "deadLetterTargetArn": ARN})}
    )
    assert not attributes_equal_for_create(existing, {"VisibilityTimeout": "60"})
    assert attributes_equal_for_create(existing, {"ReceiveMessageWaitTimeSeconds": "0"})  # default
    assert not attributes_equal_for_create(
        existing,
        {"Policy": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"}]})},
    )
    assert attributes_equal_for_create(existing, {"Policy": ""})
    assert attributes_equal_for_create(existing, {"FifoQueue": "false"})
    assert not attributes_equal_for_create(existing, {"FifoQueue": "true"})


def test_create_idempotency_for_fifo_queue() -> None:
    existing = new_queue_attributes("q.fifo", {"FifoQueue": "true"})
    changed = changed_queue_attributes(existing, True, {"VisibilityTimeout": "60"})
    assert attributes_equal_for_create(changed, {"FifoQueue": "True"})
    assert attributes_equal_for_create(changed, {"FifoQueue": "true", "ContentBasedDeduplication": "false"})
    assert not attributes_equal_for_create(changed, {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    assert not attributes_equal_for_create(changed, {})


def test_create_idempotency_still_validates() -> None:
    existing = new_queue_attributes("q", {})
    fails(lambda: attributes_equal_for_create(existing, {"VisibilityTimeout": "-1"}), "InvalidAttributeValue")
    fails(lambda: attributes_equal_for_create(existing, {"QueueArn": "x"}), "InvalidAttributeName")
    fails(lambda: attributes_equal_for_create(existing, {"FifoQueue": "tru"}), "InvalidAttributeValue")


# ------------------------------------------------------------------------------- validate_attribute_names


def test_validate_attribute_names() -> None:
    assert validate_attribute_names(["VisibilityTimeout", "QueueArn", "VisibilityTimeout"]) == [
        "VisibilityTimeout",
        "QueueArn",
    ]
    assert validate_attribute_names(["All"]) == sorted(QUEUE_ATTRIBUTE_NAMES)
    assert validate_attribute_names(["QueueArn", "All"]) == sorted(QUEUE_ATTRIBUTE_NAMES)
    assert validate_attribute_names([]) == []
    err = fails(
        lambda: validate_attribute_names(["QueueArn", "not-existing", "VisibilityTimeout"]),
        "InvalidAttributeName",
    )
    assert err.message == "Unknown Attribute not-existing."
    err = fails(lambda: validate_attribute_names([""]), "InvalidAttributeName")
    assert err.message == "Unknown Attribute ."
    fails(lambda: validate_attribute_names(["all"]), "InvalidAttributeName", "Unknown Attribute all.")


# ------------------------------------------------------------------------------------------ message body


def test_valid_bodies() -> None:
    for body in (
        "x",
        "Héllo!😀",
        "\t\n\r",
        "\ud7ff\ue000\ufffd\U00010000\U0010ffff",
        "< & >",
        "a" * 1_048_576,
    ):
        validate_message_body(body)


def test_empty_body_is_missing_parameter() -> None:
    err = fails(lambda: validate_message_body(""), "MissingParameter")
    assert err.message == "The request must contain the parameter MessageBody."


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("\x00", "U+0000 at position 0"),
        ("ok\x08", "U+0008 at position 2"),
        ("\x1f", "U+001F"),
        ("\ufffe", "U+FFFE"),
        ("\uffff", "U+FFFF"),
        ("a\ud800b", "U+D800 at position 1"),
        ("\udfff", "U+DFFF"),
    ],
)
def test_invalid_body_characters(body: str, where: str) -> None:
    fails(
        lambda: validate_message_body(body),
        "InvalidMessageContents",
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | "
        "#xE000 to #xFFFD | #x10000 to #x10FFFF",
        where,
    )


def _allowed(c: str) -> bool:
    cp = ord(c)
    return cp in (0x9, 0xA, 0xD) or 0x20 <= cp <= 0xD7FF or 0xE000 <= cp <= 0xFFFD or 0x10000 <= cp <= 0x10FFFF


_ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
_EDGE_CHAR = st.sampled_from(
    [
        chr(c)
        for c in (
            0,
            8,
            9,
            10,
            11,
            13,
            14,
            0x1F,
            0x20,
            0xD7FF,
            0xD800,
            0xDFFF,
            0xE000,
            0xFFFD,
            0xFFFE,
            0xFFFF,
            0x10000,
            0x10FFFF,
        )
    ]
)


@relaxed
@given(st.text(alphabet=st.one_of(_ANY_CHAR, _EDGE_CHAR), min_size=1, max_size=40))
def test_body_rule_agrees_with_reference_predicate(body: str) -> None:
    expected = all(_allowed(c) for c in body)
    try:
        validate_message_body(body)
    except SqsError as err:
        assert err.code == "InvalidMessageContents"
        assert not expected
    else:
        assert expected


# ------------------------------------------------------------------------------------ message attributes


def s(value: str, data_type: str = "String") -> dict[str, object]:
    return {"DataType": data_type, "StringValue": value}


def b(value: bytes, data_type: str = "Binary") -> dict[str, object]:
    return {"DataType": data_type, "BinaryValue": value}


def test_valid_message_attributes() -> None:
    validate_message_attributes({})
    validate_message_attributes(
        {
            "SOME_Valid.attribute-Name": s("1493147359900", "Number"),
            "timestamp": s("1602845432024", "Number.java.lang.Long"),
            "json": s('{"a": "ü😀"}', "String.json"),
            "bin": b(b"\x00\x01", "Binary.gif"),
            "raw": b(b"x"),
            "n1": s("-1.5e3", "Number"),
            "n2": s(".5", "Number"),
            "n3": s("0", "Number"),
            "n4": s("1" * 38 + "000", "Number"),
            "a" * 256: s("x"),
        }
    )
    validate_message_attributes({"n": s("1e126", "Number"), "m": s("-1e-128", "Number"), "o": s("+7.", "Number")})


@pytest.mark.parametrize("name", ["öther_encodings", "attr.1øßä", "名前"])
def test_attribute_names_may_hold_unicode_letters_and_digits(name: str) -> None:
    validate_message_attributes({name: s("x")})  # AWS: "alphanumeric characters", not only ASCII ones


def test_too_many_message_attributes() -> None:
    attrs = {f"a{i}": s("x") for i in range(11)}
    fails(lambda: validate_message_attributes(attrs), "InvalidParameterValue", "[11]", "maximum [10]")


@pytest.mark.parametrize("name", ["has space", "a/b", "x:y", "ö!"])
def test_attribute_name_characters(name: str) -> None:
    err = fails(lambda: validate_message_attributes({name: s("x")}), "MessageAttributesInvalid")
    assert err.message == (
        f"The message attribute name '{name}' is invalid. Attribute name can contain A-Z, a-z, 0-9, "
        "underscore (_), hyphen (-), and period (.) characters."
    )


@pytest.mark.parametrize("name", ["AWS.x", "aws.trace", "Amazon.y", "AMAZON.z", ".lead", "trail."])
def test_reserved_and_dotted_attribute_names(name: str) -> None:
    fails(
        lambda: validate_message_attributes({name: s("x")}),
        "InvalidParameterValue",
        name,
        "'AWS.' or 'Amazon.'",
        "'.'",
    )


def test_more_attribute_name_rules() -> None:
    fails(
        lambda: validate_message_attributes({"a..b": s("x")}),
        "InvalidParameterValue",
        "a..b",
        "consecutive periods",
    )
    fails(lambda: validate_message_attributes({"": s("x")}), "InvalidParameterValue", "must not be empty")
    fails(lambda: validate_message_attributes({"a" * 257: s("x")}), "InvalidParameterValue", "257", "256")
    validate_message_attributes({"AWSx": s("x"), "Amazonia.y": s("x"), "a.b.c": s("x")})


def test_data_type_rules() -> None:
    err = fails(
        lambda: validate_message_attributes({"timestamp": s("149314735990a", "InvalidNumber")}),
        "MessageAttributesInvalid",
    )
    assert err.message == (
        "The message attribute 'timestamp' has an invalid message attribute type, the set of supported type "
        "prefixes is Binary, Number, and String."
    )
    for bad in ("string", "StringX", "String.", "Number. x", "Binary.é"):
        fails(partial(validate_message_attributes, {"a": s("1", bad)}), "MessageAttributesInvalid", "'a'")
    fails(
        lambda: validate_message_attributes({"a": {"StringValue": "x"}}),
        "InvalidParameterValue",
        "'a'",
        "DataType",
    )
    fails(lambda: validate_message_attributes({"a": s("x", "")}), "InvalidParameterValue", "DataType")
    fails(
        lambda: validate_message_attributes({"a": s("x", "String." + "l" * 250)}),
        "InvalidParameterValue",
        "257",
        "256",
    )


def test_value_rules() -> None:
    fails(
        lambda: validate_message_attributes({"a": s("")}),
        "InvalidParameterValue",
        "'a'",
        "non-empty value of type 'String'",
    )
    fails(
        lambda: validate_message_attributes({"a": {"DataType": "String"}}),
        "InvalidParameterValue",
        "StringValue",
    )
    fails(
        lambda: validate_message_attributes({"a": {"DataType": "Number.x"}}),
        "InvalidParameterValue",
        "'Number'",
    )
    fails(lambda: validate_message_attributes({"a": b(b"")}), "InvalidParameterValue", "'Binary'", "BinaryValue")
    fails(
        lambda: validate_message_attributes({"a": {"DataType": "Binary", "StringValue": "x"}}),
        "InvalidParameterValue",
        "BinaryValue",
    )
    fails(
        lambda: validate_message_attributes({"a": {"DataType": "Binary", "BinaryValue": "text"}}),
        "InvalidParameterValue",
        "BinaryValue",
    )
    fails(lambda: validate_message_attributes({"a": "flat"}), "InvalidParameterValue", "'a'")  # type: ignore[dict-item]
    fails(
        lambda: validate_message_attributes({"a": s("bad\x00")}),
        "InvalidParameterValue",
        "'a'",
        "Invalid characters found",
        "U+0000",
    )


@pytest.mark.parametrize("field", ["StringListValues", "BinaryListValues"])
def test_list_values_are_not_implemented(field: str) -> None:
    attr = {"DataType": "String", "StringValue": "x", field: ["x"]}
    fails(lambda: validate_message_attributes({"a": attr}), "InvalidParameterValue", field, "not implement")
    validate_message_attributes({"a": {**attr, field: []}})  # empty lists are what SDKs send by default


@pytest.mark.parametrize(
    "value", ["abc", "1,5", "0x10", "1e", "--1", "NaN", "Infinity", "1_000", " 1", "\u0661"]
)  # the last: ARABIC-INDIC DIGIT ONE
def test_number_must_parse(value: str) -> None:
    fails(
        lambda: validate_message_attributes({"n": s(value, "Number")}),
        "InvalidParameterValue",
        "Can't cast",
        "'n'",
        "to a number",
    )


@pytest.mark.parametrize("value", ["1" * 39, "1.00000000000000000000000000000000000001", "1e127", "-2e126", "1e-129"])
def test_number_range_and_precision(value: str) -> None:
    fails(
        lambda: validate_message_attributes({"n": s(value, "Number")}),
        "InvalidParameterValue",
        value,
        "38 digits",
        "10^-128",
        "10^+126",
    )


# ---------------------------------------------------------------------------------------------- sizes


def test_message_size() -> None:
    assert message_size("abc", {}) == 3
    assert message_size("é", {}) == 2
    attrs = {"name": s("vé"), "bin": b(b"\x00\x01\x02", "Binary.x")}
    assert message_size("😀", attrs) == 4 + (4 + 6 + 3) + (3 + 8 + 3)


@relaxed
@given(
    st.text(max_size=50),
    st.dictionaries(
        st.text(alphabet="abcXYZ_", min_size=1, max_size=8),
        st.one_of(st.builds(s, st.text(min_size=1, max_size=20)), st.builds(b, st.binary(min_size=1, max_size=20))),
        max_size=10,
    ),
)
def test_message_size_counts_utf8_bytes(body: str, attrs: Mapping[str, Mapping[str, object]]) -> None:
    expected = len(body.encode())
    for name, attr in attrs.items():
        value = attr.get("BinaryValue", attr.get("StringValue"))
        raw = value if isinstance(value, bytes) else str(value).encode()
        expected += len(name.encode()) + len(str(attr["DataType"]).encode()) + len(raw)
    assert message_size(body, attrs) == expected


# ------------------------------------------------------------------------------------------------ batches


def entries(*ids: object) -> list[dict[str, object]]:
    return [{"Id": i, "MessageBody": "x"} for i in ids]


def test_valid_batches() -> None:
    validate_batch_entries(entries("a"))
    validate_batch_entries(entries(*(f"id_{i}" for i in range(10))))
    validate_batch_entries(entries("A-z_9", "x" * 80))


def test_empty_batch() -> None:
    err = fails(lambda: validate_batch_entries([]), "EmptyBatchRequest")
    assert err.message == "There should be at least one SendMessageBatchRequestEntry in the request."
    err = fails(lambda: validate_batch_entries([], action="DeleteMessage"), "EmptyBatchRequest")
    assert err.message == "There should be at least one DeleteMessageBatchRequestEntry in the request."
    assert err.query_code == "AWS.SimpleQueueService.EmptyBatchRequest"


def test_too_many_entries() -> None:
    err = fails(
        lambda: validate_batch_entries(entries(*(f"id_{i}" for i in range(11)))),
        "TooManyEntriesInBatchRequest",
    )
    assert err.message == "Maximum number of entries per request are 10. You have sent 11."


def test_missing_id() -> None:
    fails(
        lambda: validate_batch_entries([{"Id": "a"}, {"MessageBody": "x"}]),
        "MissingParameter",
        "SendMessageBatchRequestEntry.2.Id",
    )
    fails(
        lambda: validate_batch_entries([{"Id": None}], action="ChangeMessageVisibility"),
        "MissingParameter",
        "ChangeMessageVisibilityBatchRequestEntry.1.Id",
    )


@pytest.mark.parametrize("bad", ["", ".!@#$%^&*()+=", "i" * 81, "with space", "é", 5])
def test_invalid_entry_ids(bad: object) -> None:
    err = fails(lambda: validate_batch_entries(entries("ok", bad)), "InvalidBatchEntryId")
    assert err.message == (
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
        "It can be at most 80 letters long."
    )


def test_duplicate_ids_report_the_first_repeat() -> None:
    err = fails(lambda: validate_batch_entries(entries("id_1", "id_2", "id_2", "id_1")), "BatchEntryIdsNotDistinct")
    assert err.message == "Id id_2 repeated."
    # a malformed id anywhere is reported before a repeat
    fails(lambda: validate_batch_entries(entries("a", "a", "bad!")), "InvalidBatchEntryId")


# ---------------------------------------------------------------------------------------------- FIFO ids


@pytest.mark.parametrize(
    ("validate", "parameter"),
    [(validate_dedup_id, "MessageDeduplicationId"), (validate_group_id, "MessageGroupId")],
)
def test_fifo_ids(validate: Callable[[str], None], parameter: str) -> None:
    for good in ("1", "x" * 128, "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "group_id_1"):
        validate(good)
    for bad in ("", "x" * 129, "has space", "é", "tab\t"):
        fails(
            partial(validate, bad),
            "InvalidParameterValue",
            f"Value {bad} for parameter {parameter} is invalid. "
            f"Reason: {parameter} can only include alphanumeric "
            "and punctuation characters. 1 to 128 in length.",
        )


@relaxed
@given(st.text(max_size=130))
def test_group_id_rule_agrees_with_reference(value: str) -> None:
    expected = 1 <= len(value) <= 128 and all("!" <= c <= "~" for c in value)
    try:
        validate_group_id(value)
    except SqsError:
        assert not expected
    else:
        assert expected


# ------------------------------------------------------------------------------------------ int params


def test_int_params_accept_ints_and_decimal_text() -> None:
    assert validate_int_param("MaxNumberOfMessages", 10, 1, 10) == 10
    assert validate_int_param("MaxNumberOfMessages", "3", 1, 10) == 3
    assert validate_int_param("DelaySeconds", 0, 0, 900) == 0
    assert validate_int_param("VisibilityTimeout", 43200.0, 0, 43200) == 43200


@pytest.mark.parametrize(
    ("name", "value", "low", "high", "message"),
    [
        (
            "MaxNumberOfMessages",
            11,
            1,
            10,
            "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        ),
        (
            "MaxNumberOfMessages",
            0,
            1,
            10,
            "Value 0 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        ),
        (
            "WaitTimeSeconds",
            21,
            0,
            20,
            "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
        ),
        (
            "WaitTimeSeconds",
            -1,
            0,
            20,
            "Value -1 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
        ),
        (
            "DelaySeconds",
            "1800",
            0,
            900,
            "Value 1800 for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.",
        ),
        (
            "VisibilityTimeout",
            43201,
            0,
            43200,
            "Value 43201 for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.",
        ),
    ],
)
def test_int_params_out_of_range(name: str, value: object, low: int, high: int, message: str) -> None:
    err = fails(lambda: validate_int_param(name, value, low, high), "InvalidParameterValue")
    assert err.message == message


@pytest.mark.parametrize("value", ["abc", "1.5", 1.5, True, None, "", [1]])
def test_int_params_must_be_integers(value: object) -> None:
    fails(
        lambda: validate_int_param("MaxNumberOfMessages", value, 1, 10),
        "InvalidParameterValue",
        f"Value {value} for parameter MaxNumberOfMessages is invalid.",
        "must be an integer from 1 to 10",
    )


@relaxed
@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_int_params_range_property(value: int) -> None:
    try:
        assert validate_int_param("DelaySeconds", value, 0, 900) == value
    except SqsError:
        assert not 0 <= value <= 900
    else:
        assert 0 <= value <= 900


# ------------------------------------------------------------------------------------- content dedup id


def test_content_dedup_id() -> None:
    assert content_dedup_id("first") == hashlib.sha256(b"first").hexdigest()
    assert content_dedup_id("😀") == hashlib.sha256("😀".encode()).hexdigest()
    assert len(content_dedup_id("")) == 64
