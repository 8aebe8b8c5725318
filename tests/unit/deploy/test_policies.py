"""The access policies derived from the platform's topology (`scte.deploy.policies`), evaluated by the broker's
own policy engine: only the owner publishes, only the subscriber reads, SNS delivers only from the subscribed
topics."""

from __future__ import annotations

import json

from scte.deploy.policies import derive, platform_policies, principal_arn
from scte.platform import SERVICES
from scte.queue.policy import SNS_SERVICE, Principal, Request, allows, check_document

ACCOUNT = "123456789012"
REGION = "us-east-1"


def who(service: str) -> Principal:
    return Principal(principal_arn(ACCOUNT, service), ACCOUNT)


SNS = Principal(SNS_SERVICE, ACCOUNT, service=SNS_SERVICE)


def topic(name: str) -> str:
    return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"


def queue(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def test_only_learning_publishes_exam_results_and_only_certification_reads_its_queue() -> None:
    policies = platform_policies(list(SERVICES), account=ACCOUNT, region=REGION)
    learning_topic = json.dumps(policies.topics[topic("learning.fifo")])
    assert allows(learning_topic, Request(who("learning"), "sns:Publish", topic("learning.fifo")))
    for intruder in ("media", "certification", "members", "commerce"):
        assert not allows(learning_topic, Request(who(intruder), "sns:Publish", topic("learning.fifo")))
    assert not allows(learning_topic, Request(who("learning"), "sns:Subscribe", topic("learning.fifo")))

    certification_queue = json.dumps(policies.queues["certification.fifo"])
    arn = queue("certification.fifo")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"):
        assert allows(certification_queue, Request(who("certification"), action, arn))
        assert not allows(certification_queue, Request(who("media"), action, arn))
    assert not allows(certification_queue, Request(who("learning"), "sqs:SendMessage", arn))
    assert not allows(certification_queue, Request(who("certification"), "sqs:PurgeQueue", arn))
    assert not allows(certification_queue, Request(who("certification"), "sqs:SetQueueAttributes", arn))
    # SNS delivers from the topics certification subscribes to, and from no other
    assert allows(certification_queue, Request(SNS, "sqs:SendMessage", arn, source_arn=topic("learning.fifo")))
    assert not allows(certification_queue, Request(SNS, "sqs:SendMessage", arn, source_arn=topic("media")))
    # the dead-letter queue is the consumer's too (it dead-letters there), and SNS's not at all
    dlq = json.dumps(policies.queues["certification-dlq.fifo"])
    assert allows(dlq, Request(who("certification"), "sqs:SendMessage", queue("certification-dlq.fifo")))
    assert not allows(dlq, Request(who("media"), "sqs:SendMessage", queue("certification-dlq.fifo")))
    assert not allows(
        dlq, Request(SNS, "sqs:SendMessage", queue("certification-dlq.fifo"), source_arn=topic("learning.fifo"))
    )


def test_every_topic_and_queue_gets_an_aws_valid_document() -> None:
    policies = platform_policies(list(SERVICES), account=ACCOUNT, region=REGION, prefix="prod-")
    assert topic("prod-learning.fifo") in policies.topics
    assert "prod-certification.fifo" in policies.queues and "prod-certification-dlq.fifo" in policies.queues
    for document in (*policies.topics.values(), *policies.queues.values()):
        assert document["Version"] == "2012-10-17"
        check_document(document)
        for statement in document["Statement"]:
            assert statement["Resource"] in (*policies.topics, *(queue(n) for n in policies.queues))


def test_a_topic_without_a_publishing_service_is_the_owners_alone() -> None:
    from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology

    topology = Topology(
        topics=(TopicSpec("orphan"), TopicSpec("jobs")),
        queues=(QueueSpec("worker", subscriptions=(Subscription("jobs"),)),),
    )
    policies = derive(
        topology, publishers={"jobs": "boss"}, consumers={"worker": "worker"}, account=ACCOUNT, region=REGION
    )
    orphan = json.dumps(policies.topics[topic("orphan")])
    assert not allows(orphan, Request(who("boss"), "sns:Publish", topic("orphan")))
    assert allows(orphan, Request(Principal.root(ACCOUNT), "sns:Publish", topic("orphan")))
    jobs = json.dumps(policies.topics[topic("jobs")])
    assert allows(jobs, Request(who("boss"), "sns:Publish", topic("jobs")))
