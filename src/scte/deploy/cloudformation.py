"""The platform's AWS deployment as a CloudFormation template, derived from the one topology.

`template()` turns `scte.platform.topology()` into what `Transport.provision` would create on a broker,
declared instead of made at start-up (in production mode services only check that it is there):

- a topic per `TopicSpec` (`FifoTopic` where declared);
- a queue per `QueueSpec` with its dead-letter queue and `RedrivePolicy` (`broker_max_receive_count`, as
  `_provision` sets it), its visibility timeout and retention;
- a subscription per `Subscription`: raw delivery, the `ce-type` filter policy on message attributes;
- a queue policy per subscribed queue letting SNS deliver from exactly its topics (`aws:SourceArn`);
- an IAM role per service, least privilege: publish to its own topic; receive, delete, change visibility,
  read attributes and send (its scheduled messages, its dead letters) on its own queue and dead-letter
  queue; read-only on the topics its queue subscribes to (the production check: GetTopicAttributes,
  ListSubscriptionsByTopic). Nothing on any other topic or queue, and no Create*/Subscribe/Set*.

With `lambda_notifications`, the notifications service's handlers run as a Lambda function
(`scte.deploy.lambda_notifications.handler`) behind an SQS event source mapping with
`FunctionResponseTypes: [ReportBatchItemFailures]`; its code is the zip `scte deploy lambda` builds,
uploaded to S3 (the `NotificationsCodeBucket`/`NotificationsCodeKey` parameters).

Names follow the transports: physical names are `prefix + name` (`.fifo` for FIFO), so services started
with `SCTE_QUEUE_PREFIX=<prefix>` find what the stack made; roles are `<prefix>scte-<service>`, the
principal `scte.deploy.policies.principal_arn` names (with an empty prefix).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scte.bus.topology import QueueSpec, Topology
from scte.bus.transports._provision import physical_name
from scte.deploy.policies import CONSUMER_ACTIONS, PUBLISHER_ACTIONS, VERSION

__all__ = [
    "CHECK_ACTIONS",
    "LAMBDA_HANDLER",
    "LAMBDA_RUNTIME",
    "LAMBDA_SERVICE",
    "Ownership",
    "logical_id",
    "platform_ownership",
    "template",
]

CHECK_ACTIONS = ("sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic")
"""Read-only, on the topics a service's queue subscribes to: what the production check of the topology
(`scte.bus.transports._check`) calls. It neither publishes nor subscribes."""

LAMBDA_SERVICE = "notifications"
LAMBDA_HANDLER = "scte.deploy.lambda_notifications.handler"
LAMBDA_RUNTIME = "python3.13"
"""The Lambda runtime the package is built for (`scte deploy lambda --python-version`)."""
LAMBDA_BATCH_SIZE = 10
SERVICE_PRINCIPALS = ("ecs-tasks.amazonaws.com", "ec2.amazonaws.com")
BASIC_EXECUTION = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
VPC_EXECUTION = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"

Json = dict[str, Any]


@dataclass(frozen=True)
class Ownership:
    """Who publishes to each topic and who consumes each queue (service names)."""

    publishers: Mapping[str, str]
    """topic -> the service that publishes to it"""
    consumers: Mapping[str, str]
    """queue -> the service that consumes it (and its dead-letter queue)"""

    def services(self) -> list[str]:
        return sorted(set(self.publishers.values()) | set(self.consumers.values()))


def platform_ownership(services: Sequence[str], topology: Topology) -> Ownership:
    """The platform's rule (as `policies.platform_policies`): a topic is published by the service of the
    same name, a queue consumed by the service whose `service.QUEUE` it is (the queue of the same name)."""
    names = set(services)
    return Ownership(
        publishers={t.name: t.name for t in topology.topics if t.name in names},
        consumers={q.name: q.name for q in topology.queues if q.name in names},
    )


def logical_id(*parts: str) -> str:
    """A CloudFormation logical id (letters and digits) of name parts: `("Queue", "notifications-dlq")`
    -> `QueueNotificationsDlq`."""
    words = [w for part in parts for w in re.split(r"[^A-Za-z0-9]+", part) if w]
    return "".join(w[0].upper() + w[1:] for w in words)


def _ref(logical: str) -> Json:
    return {"Ref": logical}


def _arn(logical: str) -> Json:
    return {"Fn::GetAtt": [logical, "Arn"]}


def _topic_id(name: str) -> str:
    return logical_id("Topic", name)


def _queue_id(name: str) -> str:
    return logical_id("Queue", name)


def _role_id(service: str) -> str:
    return logical_id("Role", service)


def _queue_resources(queue: QueueSpec, prefix: str) -> dict[str, Json]:
    main, dlq = _queue_id(queue.name), _queue_id(queue.dead_letter_queue)
    fifo: Json = {"FifoQueue": True} if queue.fifo else {}
    out: dict[str, Json] = {
        dlq: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": physical_name(prefix, queue.dead_letter_queue, queue.fifo),
                **fifo,
                "MessageRetentionPeriod": 1_209_600,
            },
        },
        main: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": physical_name(prefix, queue.name, queue.fifo),
                **fifo,
                "VisibilityTimeout": queue.visibility_timeout,
                "MessageRetentionPeriod": queue.retention_seconds,
                # the broker's own safety net, a few receives after the consumer dead-letters itself
                "RedrivePolicy": {"deadLetterTargetArn": _arn(dlq), "maxReceiveCount": queue.broker_max_receive_count},
            },
        },
    }
    for subscription in queue.subscriptions:
        properties: Json = {
            "Protocol": "sqs",
            "TopicArn": _ref(_topic_id(subscription.topic)),
            "Endpoint": _arn(main),
            "RawMessageDelivery": True,
        }
        policy = subscription.effective_filter_policy()
        if policy is not None:
            properties["FilterPolicy"] = policy
            properties["FilterPolicyScope"] = "MessageAttributes"
        out[logical_id("Subscription", queue.name, "from", subscription.topic)] = {
            "Type": "AWS::SNS::Subscription",
            "Properties": properties,
        }
    if queue.subscriptions:
        out[logical_id("QueuePolicy", queue.name)] = {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [_ref(main)],
                "PolicyDocument": {
                    "Version": VERSION,
                    "Statement": [
                        {
                            "Sid": "SnsDeliversFromItsTopics",
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": _arn(main),
                            "Condition": {
                                "ArnEquals": {
                                    "aws:SourceArn": [
                                        _ref(_topic_id(s.topic)) for s in sorted(queue.subscriptions, key=_topic_of)
                                    ]
                                }
                            },
                        }
                    ],
                },
            },
        }
    return out


def _topic_of(subscription: Any) -> str:
    return str(subscription.topic)


def _role_statements(service: str, topology: Topology, ownership: Ownership) -> list[Json]:
    own_topics = sorted(t for t, s in ownership.publishers.items() if s == service)
    own_queues = [topology.queue(q) for q, s in sorted(ownership.consumers.items()) if s == service]
    statements: list[Json] = []
    if own_topics:
        statements.append(
            {
                "Sid": "PublishToItsOwnTopics",
                "Effect": "Allow",
                "Action": list(PUBLISHER_ACTIONS),
                "Resource": [_ref(_topic_id(t)) for t in own_topics],
            }
        )
    if own_queues:
        statements.append(
            {
                "Sid": "ConsumeItsOwnQueues",
                "Effect": "Allow",
                "Action": list(CONSUMER_ACTIONS),
                "Resource": [_arn(_queue_id(n)) for q in own_queues for n in (q.name, q.dead_letter_queue)],
            }
        )
        subscribed = sorted({s.topic for q in own_queues for s in q.subscriptions})
        if subscribed:
            statements.append(
                {
                    "Sid": "CheckItsSubscriptions",
                    "Effect": "Allow",
                    "Action": list(CHECK_ACTIONS),
                    "Resource": [_ref(_topic_id(t)) for t in subscribed],
                }
            )
    return statements


def _role(service: str, prefix: str, statements: list[Json], *, lambda_function: bool) -> Json:
    principals: list[Json | str] = [{"Ref": "ServicePrincipal"}]
    properties: Json = {"RoleName": f"{prefix}scte-{service}", "Description": f"The {service} service of SCTE"}
    if lambda_function:
        # the function's execution role; the service's own process (its HTTP API and dispatcher) may run as it too
        principals.append("lambda.amazonaws.com")
        properties["ManagedPolicyArns"] = [
            {"Fn::If": ["NotificationsInVpc", {"Fn::Sub": VPC_EXECUTION}, {"Fn::Sub": BASIC_EXECUTION}]}
        ]
    properties["AssumeRolePolicyDocument"] = {
        "Version": VERSION,
        "Statement": [{"Effect": "Allow", "Principal": {"Service": principals}, "Action": "sts:AssumeRole"}],
    }
    if statements:
        properties["Policies"] = [
            {"PolicyName": f"scte-{service}-messaging", "PolicyDocument": {"Version": VERSION, "Statement": statements}}
        ]
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def _lambda_resources(queue: QueueSpec, prefix: str) -> dict[str, Json]:
    name = f"{prefix}scte-{LAMBDA_SERVICE}"
    # Lambda refuses a mapping whose function may run longer than the queue's visibility timeout; AWS
    # recommends a visibility timeout of six times the function's timeout (retries of throttled batches)
    timeout = max(3, min(900, queue.visibility_timeout // 6))
    function = logical_id(LAMBDA_SERVICE, "Function")
    return {
        logical_id(LAMBDA_SERVICE, "LogGroup"): {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": f"/aws/lambda/{name}", "RetentionInDays": 30},
        },
        function: {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": name,
                "Description": "The notifications service's event handlers (scte deploy lambda)",
                "Runtime": LAMBDA_RUNTIME,
                "Architectures": ["x86_64"],
                "Handler": LAMBDA_HANDLER,
                "Code": {"S3Bucket": _ref("NotificationsCodeBucket"), "S3Key": _ref("NotificationsCodeKey")},
                "Role": _arn(_role_id(LAMBDA_SERVICE)),
                "MemorySize": 512,
                "Timeout": timeout,
                "Environment": {
                    "Variables": {
                        "SCTE_QUEUE_PREFIX": prefix,
                        "SCTE_NOTIFICATIONS_DATABASE_URL": _ref("NotificationsDatabaseUrl"),
                    }
                },
                "VpcConfig": {
                    "Fn::If": [
                        "NotificationsInVpc",
                        {
                            "SubnetIds": _ref("NotificationsSubnetIds"),
                            "SecurityGroupIds": _ref("NotificationsSecurityGroupIds"),
                        },
                        {"Ref": "AWS::NoValue"},
                    ]
                },
            },
        },
        logical_id(LAMBDA_SERVICE, "EventSourceMapping"): {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": _arn(_queue_id(queue.name)),
                "FunctionName": _ref(function),
                "BatchSize": LAMBDA_BATCH_SIZE,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "Enabled": True,
            },
        },
    }


def _lambda_parameters() -> dict[str, Json]:
    return {
        "NotificationsCodeBucket": {
            "Type": "String",
            "Description": "S3 bucket holding the zip `scte deploy lambda` built",
        },
        "NotificationsCodeKey": {
            "Type": "String",
            "Default": "scte-notifications.zip",
            "Description": "S3 key of that zip",
        },
        "NotificationsDatabaseUrl": {
            "Type": "String",
            "NoEcho": True,
            "Description": "postgresql+asyncpg://user:password@host:5432/notifications (the service's database)",
        },
        "NotificationsSubnetIds": {
            "Type": "CommaDelimitedList",
            "Default": "",
            "Description": "Subnets of the function (to reach the database in a VPC); empty: no VPC",
        },
        "NotificationsSecurityGroupIds": {
            "Type": "CommaDelimitedList",
            "Default": "",
            "Description": "Security groups of the function (with NotificationsSubnetIds)",
        },
    }


def template(
    topology: Topology,
    ownership: Ownership,
    *,
    prefix: str = "",
    lambda_notifications: bool = True,
) -> Json:
    """The CloudFormation template (a JSON document) of `topology`, with a role per service of
    `ownership`. Every queue must have a consuming service."""
    for queue in topology.queues:
        if queue.name not in ownership.consumers:
            raise ValueError(f"queue {queue.name!r} has no consuming service")
    with_lambda = lambda_notifications and LAMBDA_SERVICE in ownership.consumers
    resources: dict[str, Json] = {}
    outputs: dict[str, Json] = {}
    for topic in topology.topics:
        properties: Json = {"TopicName": physical_name(prefix, topic.name, topic.fifo)}
        if topic.fifo:
            properties["FifoTopic"] = True
        resources[_topic_id(topic.name)] = {"Type": "AWS::SNS::Topic", "Properties": properties}
        outputs[_topic_id(topic.name) + "Arn"] = {"Value": _ref(_topic_id(topic.name))}
    for queue in topology.queues:
        resources.update(_queue_resources(queue, prefix))
        outputs[_queue_id(queue.name) + "Url"] = {"Value": _ref(_queue_id(queue.name))}
    for service in ownership.services():
        statements = _role_statements(service, topology, ownership)
        resources[_role_id(service)] = _role(
            service, prefix, statements, lambda_function=with_lambda and service == LAMBDA_SERVICE
        )
        outputs[_role_id(service) + "Arn"] = {"Value": _arn(_role_id(service))}
    parameters: dict[str, Json] = {
        "ServicePrincipal": {
            "Type": "String",
            "Default": SERVICE_PRINCIPALS[0],
            "AllowedValues": list(SERVICE_PRINCIPALS),
            "Description": "Who runs the services' processes and assumes their roles (ECS tasks or EC2)",
        }
    }
    conditions: dict[str, Json] = {}
    if with_lambda:
        parameters.update(_lambda_parameters())
        conditions["NotificationsInVpc"] = {
            "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", _ref("NotificationsSubnetIds")]}, ""]}]
        }
        resources.update(_lambda_resources(topology.queue(LAMBDA_SERVICE), prefix))
    document: Json = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "SCTE Platform: topics, queues, subscriptions, per-service roles (scte deploy cloudformation)",
        "Parameters": parameters,
    }
    if conditions:
        document["Conditions"] = conditions
    document["Resources"] = resources
    document["Outputs"] = outputs
    return document


def platform_template(
    services: Sequence[str] | None = None, *, prefix: str = "", lambda_notifications: bool = True
) -> Json:
    """`template()` of the platform's topology and services (every available one by default)."""
    from scte.platform import available_services, topology

    names = list(services) if services is not None else available_services()
    topo = topology(names)
    return template(topo, platform_ownership(names, topo), prefix=prefix, lambda_notifications=lambda_notifications)
