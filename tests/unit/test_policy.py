"""Resource policies (`scte.queue.policy`): documents read and refused, and evaluated the AWS way."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scte.queue.policy import SNS_SERVICE, PolicyError, Principal, Request, allows, grants, parse

ACCOUNT = "123456789012"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:certification.fifo"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:learning.fifo"
OTHER_TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:members.fifo"
CERTIFICATION = Principal(f"arn:aws:iam::{ACCOUNT}:role/scte-certification", ACCOUNT)
LEARNING = Principal(f"arn:aws:iam::{ACCOUNT}:role/scte-learning", ACCOUNT)
ADMIN = Principal.root(ACCOUNT)
SNS = Principal(SNS_SERVICE, ACCOUNT, service=SNS_SERVICE)


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


QUEUE_POLICY = document(
    {
        "Sid": "consumer",
        "Effect": "Allow",
        "Principal": {"AWS": CERTIFICATION.arn},
        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
        "Resource": QUEUE,
    },
    {
        "Sid": "sns",
        "Effect": "Allow",
        "Principal": {"Service": SNS_SERVICE},
        "Action": "sqs:SendMessage",
        "Resource": QUEUE,
        "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC}},
    },
)


def test_the_subscriber_reads_its_queue_and_others_do_not() -> None:
    assert grants(QUEUE_POLICY, Request(CERTIFICATION, "sqs:ReceiveMessage", QUEUE))
    assert grants(QUEUE_POLICY, Request(CERTIFICATION, "SQS:DeleteMessage", QUEUE))  # actions ignore case
    assert not grants(QUEUE_POLICY, Request(LEARNING, "sqs:ReceiveMessage", QUEUE))
    assert not grants(QUEUE_POLICY, Request(CERTIFICATION, "sqs:SendMessage", QUEUE))  # not granted: default deny
    assert not grants(QUEUE_POLICY, Request(CERTIFICATION, "sqs:ReceiveMessage", QUEUE + "-dlq"))


def test_sns_delivers_only_from_the_topic_the_condition_names() -> None:
    assert grants(QUEUE_POLICY, Request(SNS, "sqs:SendMessage", QUEUE, source_arn=TOPIC))
    assert not grants(QUEUE_POLICY, Request(SNS, "sqs:SendMessage", QUEUE, source_arn=OTHER_TOPIC))
    assert not grants(QUEUE_POLICY, Request(SNS, "sqs:SendMessage", QUEUE))  # no SourceArn: condition fails
    # {"AWS": "*"} is everyone, as "*" is (the classic SNS-to-SQS policy relies on it); an IAM ARN is not SNS
    assert grants(
        document({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sqs:*"}),
        Request(SNS, "sqs:SendMessage", QUEUE, source_arn=TOPIC),
    )
    assert not grants(
        document({"Effect": "Allow", "Principal": {"AWS": CERTIFICATION.arn}, "Action": "sqs:*"}),
        Request(SNS, "sqs:SendMessage", QUEUE, source_arn=TOPIC),
    )


def test_explicit_deny_wins_even_over_the_owner() -> None:
    policy = document(
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": LEARNING.arn}, "Action": "sqs:Send*", "Resource": QUEUE},
    )
    assert grants(policy, Request(CERTIFICATION, "sqs:SendMessage", QUEUE))
    assert not grants(policy, Request(LEARNING, "sqs:SendMessage", QUEUE))
    assert grants(policy, Request(LEARNING, "sqs:ReceiveMessage", QUEUE))
    deny_all = document({"Effect": "Deny", "Principal": "*", "Action": "sqs:PurgeQueue"})
    assert not grants(deny_all, Request(ADMIN, "sqs:PurgeQueue", QUEUE))
    assert grants(deny_all, Request(ADMIN, "sqs:DeleteQueue", QUEUE))


def test_the_owner_needs_no_grant_and_a_service_gets_nothing_without_one() -> None:
    assert allows(None, Request(ADMIN, "sns:Publish", TOPIC))
    assert not allows(None, Request(LEARNING, "sns:Publish", TOPIC))
    assert not allows("{not json", Request(LEARNING, "sns:Publish", TOPIC))  # a broken stored policy grants nothing


def test_account_principals_mean_the_account_owner() -> None:
    policy = document({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sns:Publish"})
    assert grants(policy, Request(ADMIN, "sns:Publish", TOPIC))
    assert not grants(policy, Request(LEARNING, "sns:Publish", TOPIC))


def test_not_action_not_resource_not_principal_and_wildcards() -> None:
    policy = document(
        {"Effect": "Allow", "NotPrincipal": {"AWS": LEARNING.arn}, "NotAction": "sns:DeleteTopic", "Resource": "*"}
    )
    assert grants(policy, Request(CERTIFICATION, "sns:Publish", TOPIC))
    assert not grants(policy, Request(CERTIFICATION, "sns:DeleteTopic", TOPIC))
    assert not grants(policy, Request(LEARNING, "sns:Publish", TOPIC))
    like = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/scte-*"},
            "Action": "sns:Pub?ish",
            "NotResource": OTHER_TOPIC,
        }
    )
    assert grants(like, Request(LEARNING, "sns:Publish", TOPIC))
    assert not grants(like, Request(LEARNING, "sns:Publish", OTHER_TOPIC))


def test_condition_operators_and_missing_keys() -> None:
    def with_condition(condition: dict[str, Any]) -> dict[str, Any]:
        return document({"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Condition": condition})

    like = with_condition({"ArnLike": {"aws:SourceArn": f"arn:aws:sns:*:{ACCOUNT}:learning*"}})
    assert grants(like, Request(SNS, "sqs:SendMessage", QUEUE, source_arn=TOPIC))
    assert not grants(like, Request(SNS, "sqs:SendMessage", QUEUE, source_arn=OTHER_TOPIC))
    not_like = with_condition({"ArnNotLike": {"aws:SourceArn": OTHER_TOPIC}})
    assert grants(not_like, Request(LEARNING, "sqs:SendMessage", QUEUE))  # absent key: a negated operator holds
    if_exists = with_condition({"ArnEqualsIfExists": {"aws:SourceArn": TOPIC}})
    assert grants(if_exists, Request(LEARNING, "sqs:SendMessage", QUEUE))
    assert not grants(if_exists, Request(SNS, "sqs:SendMessage", QUEUE, source_arn=OTHER_TOPIC))
    account = with_condition({"StringEquals": {"AWS:SourceOwner": ACCOUNT}})
    assert grants(account, Request(LEARNING, "sqs:SendMessage", QUEUE))
    assert not grants(account, Request(Principal("arn:aws:iam::999999999999:root", "999999999999"), "sqs:X", QUEUE))
    null = with_condition({"Null": {"aws:SourceArn": "true"}})
    assert grants(null, Request(LEARNING, "sqs:SendMessage", QUEUE))
    assert not grants(null, Request(SNS, "sqs:SendMessage", QUEUE, source_arn=TOPIC))


def test_a_single_statement_object_and_the_2008_version_are_read() -> None:
    policy = parse(
        json.dumps(
            {"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "SNS:Publish"}}
        )
    )
    assert policy.decide(Request(LEARNING, "sns:Publish", TOPIC)) == "Allow"


BAD_DOCUMENTS: list[tuple[str, str]] = [
    ("[]", "JSON object"),
    ("{not json", "not valid JSON"),
    ('{"Version": "2012-10-17"}', "Statement"),
    ('{"Version": "2012-10-17", "Statement": []}', "Statement"),
    ('{"Version": "2019-01-01", "Statement": [{}]}', "Version"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*"}], "Extra": 1}', "unknown element"),
    ('{"Statement": [{"Effect": "Permit", "Principal": "*", "Action": "sqs:*"}]}', "Effect"),
    ('{"Statement": [{"Effect": "Allow", "Action": "sqs:*"}]}', "Principal"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*"}]}', "Action"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "SendMessage"}]}', "invalid action"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": []}]}', "must not be empty"),
    ('{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "sqs:*"}]}', "invalid principal"),
    ('{"Statement": [{"Effect": "Allow", "Principal": {"Group": "x"}, "Action": "sqs:*"}]}', "principal type"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": "queue"}]}', "resource"),
    (
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", '
        '"Condition": {"ArnMatches": {"aws:SourceArn": "x"}}}]}',
        "operator",
    ),
    (
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", '
        '"Condition": {"ArnEquals": {"aws:RequestTag": "x"}}}]}',
        "condition key",
    ),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Sid": 3}]}', "Sid"),
]


@pytest.mark.parametrize(("text", "says"), BAD_DOCUMENTS)
def test_bad_documents_are_refused_with_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(PolicyError, match=says) as info:
        parse(text)
    assert info.value.code == "MalformedPolicyDocument"


def test_a_document_over_the_size_limit_is_refused() -> None:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Sid": "x" * 21_000}
    with pytest.raises(PolicyError, match="longer than"):
        parse(json.dumps(document(statement)))
