"""`scte deploy cloudformation`: the template passes cfn-lint, and read back it grants each service exactly its
part of the topology (its topic to publish to, its queues to consume), each queue policy exactly its topics."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from scte.bus.topology import Topology
from scte.bus.transports._provision import physical_name
from scte.deploy.cloudformation import CHECK_ACTIONS, platform_ownership, template
from scte.deploy.policies import CONSUMER_ACTIONS, PUBLISHER_ACTIONS
from scte.platform import available_services, topology

pytestmark = pytest.mark.timeout(900)  # cfn-lint loads its schemas for a minute on a busy machine

SERVICES = available_services()
TOPOLOGY = topology(SERVICES)
QUEUE_ACTIONS = set(CONSUMER_ACTIONS)


def scte(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scte.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfn") / "scte.json"
    done = scte("deploy", "cloudformation", "--output", str(path))
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def document(written: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(written.read_text(encoding="utf-8"))
    return loaded


# -- reading a template back -------------------------------------------------------------------------------


def names(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Logical id -> (kind, physical name) of the topics and queues."""
    out: dict[str, tuple[str, str]] = {}
    for logical, resource in document["Resources"].items():
        if resource["Type"] == "AWS::SNS::Topic":
            out[logical] = ("topic", resource["Properties"]["TopicName"])
        elif resource["Type"] == "AWS::SQS::Queue":
            out[logical] = ("queue", resource["Properties"]["QueueName"])
    return out


def resolve(value: Any, known: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """A policy's resource (`Ref` of a topic, `GetAtt ...Arn` of a queue) as (kind, physical name)."""
    if isinstance(value, dict) and "Ref" in value:
        kind, name = known[value["Ref"]]
        assert kind == "topic", value  # a queue's Ref is its URL, never an ARN a policy could name
        return kind, name
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return known[logical]
    raise AssertionError(f"a resource that is not one of the stack's topics or queues: {value!r}")


def grants(document: dict[str, Any]) -> dict[str, dict[str, set[tuple[str, str]]]]:
    """Role name -> action -> the (kind, name) resources it is allowed on, from the roles' inline policies."""
    known = names(document)
    out: dict[str, dict[str, set[tuple[str, str]]]] = {}
    for resource in document["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        properties = resource["Properties"]
        allowed: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for policy in properties.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                assert "NotAction" not in statement and "NotResource" not in statement
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                for action in actions:
                    assert "*" not in action, action
                    for target in resources:
                        allowed[action].add(resolve(target, known))
        out[properties["RoleName"]] = dict(allowed)
    return out


def expected(service: str, topo: Topology, prefix: str = "") -> dict[str, set[tuple[str, str]]]:
    """What the service's role should allow, from the topology alone."""
    want: dict[str, set[tuple[str, str]]] = defaultdict(set)
    topics = {t.name: t for t in topo.topics}
    if service in topics:
        for action in PUBLISHER_ACTIONS:
            want[action].add(("topic", physical_name(prefix, service, topics[service].fifo)))
    queue = next((q for q in topo.queues if q.name == service), None)
    if queue is not None:
        for action in CONSUMER_ACTIONS:
            for name in (queue.name, queue.dead_letter_queue):
                want[action].add(("queue", physical_name(prefix, name, queue.fifo)))
        for subscription in queue.subscriptions:
            for action in CHECK_ACTIONS:
                want[action].add(("topic", physical_name(prefix, subscription.topic, topics[subscription.topic].fifo)))
    return dict(want)


def role_problems(document: dict[str, Any], topo: Topology, services: list[str]) -> list[str]:
    found = grants(document)
    problems = []
    for service in services:
        role = f"scte-{service}"
        if role not in found:
            problems.append(f"no role {role}")
            continue
        if found[role] != expected(service, topo):
            problems.append(f"{role}: allows {found[role]}, expected {expected(service, topo)}")
    extra = sorted(set(found) - {f"scte-{s}" for s in services})
    if extra:
        problems.append(f"roles of no service: {extra}")
    return problems


# -- the tests ---------------------------------------------------------------------------------------------


def test_cfn_lint_finds_no_error_in_the_template_and_finds_one_in_a_broken_copy(
    written: Path, document: dict[str, Any], tmp_path: Path
) -> None:
    linter = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    assert linter is not None, "cfn-lint is a dev dependency (pip install -e '.[dev]')"
    broken = copy.deepcopy(document)
    mapping = next(r for r in broken["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping")
    mapping["Properties"]["FunctionResponseTypes"] = ["ReportBatchFailures"]  # not a response type
    broken_path = tmp_path / "broken.json"
    broken_path.write_text(json.dumps(broken, indent=2), encoding="utf-8")

    done = subprocess.run(
        [linter, "--format", "parseable", str(written), str(broken_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    about_ours = [line for line in lines if line.startswith(str(written))]
    assert about_ours == [], "\n".join(about_ours)  # no error, and no warning either
    about_broken = [line for line in lines if line.startswith(str(broken_path))]
    assert any(":E" in line and "ReportBatchFailures" in line for line in about_broken), done.stdout
    assert done.returncode & 2, done.returncode  # cfn-lint's exit code says errors were found (the broken one)


def test_every_topic_queue_and_subscription_of_the_topology_is_in_the_template(document: dict[str, Any]) -> None:
    resources = document["Resources"]
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in resources.values():
        by_type[resource["Type"]].append(resource["Properties"])
    topics = {p["TopicName"]: p.get("FifoTopic", False) for p in by_type["AWS::SNS::Topic"]}
    assert topics == {physical_name("", t.name, t.fifo): t.fifo for t in TOPOLOGY.topics}
    queues = {p["QueueName"]: p for p in by_type["AWS::SQS::Queue"]}
    logical = {r["Properties"].get("QueueName"): k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    topic_ids = {r["Properties"]["TopicName"]: k for k, r in resources.items() if r["Type"] == "AWS::SNS::Topic"}
    assert len(queues) == 2 * len(TOPOLOGY.queues)
    subscriptions = by_type["AWS::SNS::Subscription"]
    for queue in TOPOLOGY.queues:
        main = queues[physical_name("", queue.name, queue.fifo)]
        dlq_name = physical_name("", queue.dead_letter_queue, queue.fifo)
        dlq = queues[dlq_name]
        assert main.get("FifoQueue", False) is queue.fifo and dlq.get("FifoQueue", False) is queue.fifo
        assert main["VisibilityTimeout"] == queue.visibility_timeout
        assert main["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [logical[dlq_name], "Arn"]},
            "maxReceiveCount": queue.broker_max_receive_count,
        }
        endpoint = {"Fn::GetAtt": [logical[main["QueueName"]], "Arn"]}
        mine = [s for s in subscriptions if s["Endpoint"] == endpoint]
        want = {
            topic_ids[physical_name("", s.topic, TOPOLOGY.topic(s.topic).fifo)]: s.effective_filter_policy()
            for s in queue.subscriptions
        }
        assert {s["TopicArn"]["Ref"]: s.get("FilterPolicy") for s in mine} == want
        for s in mine:
            assert s["Protocol"] == "sqs" and s["RawMessageDelivery"] is True
            assert s["FilterPolicyScope"] == "MessageAttributes"
    assert len(subscriptions) == sum(len(q.subscriptions) for q in TOPOLOGY.queues)


def test_each_queue_policy_lets_sns_deliver_from_exactly_its_topics(document: dict[str, Any]) -> None:
    resources = document["Resources"]
    known = names(document)
    policies = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::SQS::QueuePolicy":
            continue
        (queue_ref,) = resource["Properties"]["Queues"]
        _kind, queue = known[queue_ref["Ref"]]
        (statement,) = resource["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert resolve(statement["Resource"], known) == ("queue", queue)
        (condition,) = statement["Condition"].items()
        assert condition[0] == "ArnEquals"
        assert list(condition[1]) == ["aws:SourceArn"]
        policies[queue] = {resolve(ref, known)[1] for ref in condition[1]["aws:SourceArn"]}
    want = {
        physical_name("", q.name, q.fifo): {
            physical_name("", s.topic, TOPOLOGY.topic(s.topic).fifo) for s in q.subscriptions
        }
        for q in TOPOLOGY.queues
        if q.subscriptions
    }
    assert policies == want


def test_each_role_allows_exactly_its_own_part_of_the_topology(document: dict[str, Any]) -> None:
    assert role_problems(document, TOPOLOGY, SERVICES) == []
    found = grants(document)
    topics = {t.name: physical_name("", t.name, t.fifo) for t in TOPOLOGY.topics}
    queues = {q.name: physical_name("", q.name, q.fifo) for q in TOPOLOGY.queues}
    for service in SERVICES:
        allowed = found[f"scte-{service}"]
        for other in SERVICES:
            if other == service:
                continue
            if other in topics:  # it cannot publish another service's topic
                assert ("topic", topics[other]) not in allowed.get("sns:Publish", set()), (service, other)
            if other in queues:  # nor receive, delete or send on another's queue
                for action in QUEUE_ACTIONS:
                    assert ("queue", queues[other]) not in allowed.get(action, set()), (service, other, action)
        # and never makes or changes the topology: that is the stack's job
        assert not [
            a
            for a in allowed
            if a.split(":")[1].startswith(("Create", "Delete", "Set", "Subscribe")) and a != "sqs:DeleteMessage"
        ], allowed


def test_the_role_check_catches_a_role_that_may_publish_another_services_topic(document: dict[str, Any]) -> None:
    tampered = copy.deepcopy(document)
    role = tampered["Resources"]["RoleSearch"]["Properties"]
    role.setdefault("Policies", [{"PolicyName": "x", "PolicyDocument": {"Statement": []}}])
    role["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": "TopicMembers"}}
    )
    problems = role_problems(tampered, TOPOLOGY, SERVICES)
    assert len(problems) == 1 and problems[0].startswith("scte-search:"), problems


def test_notifications_runs_as_a_lambda_function_reporting_batch_item_failures(document: dict[str, Any]) -> None:
    resources = document["Resources"]
    (mapping,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    (function,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert names(document)[mapping["EventSourceArn"]["Fn::GetAtt"][0]] == ("queue", "notifications")
    assert mapping["FunctionName"] == {"Ref": "NotificationsFunction"}
    assert function["Role"] == {"Fn::GetAtt": ["RoleNotifications", "Arn"]}
    assert function["Timeout"] * 6 <= TOPOLOGY.queue("notifications").visibility_timeout
    module, attribute = function["Handler"].rsplit(".", 1)
    assert callable(getattr(__import__(module, fromlist=[attribute]), attribute))
    trust = resources["RoleNotifications"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert "lambda.amazonaws.com" in trust["Principal"]["Service"]
    assert "lambda.amazonaws.com" not in json.dumps(resources["RoleMembers"])


def test_without_the_lambda_variant_and_with_a_prefix(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    done = scte("deploy", "cloudformation", "--no-notifications-lambda", "--prefix", "stage-", "-o", str(path))
    assert done.returncode == 0, done.stderr
    document = json.loads(path.read_text(encoding="utf-8"))
    types = {r["Type"] for r in document["Resources"].values()}
    assert not {t for t in types if t.startswith("AWS::Lambda::")}
    topics = {r["Properties"]["TopicName"] for r in document["Resources"].values() if r["Type"] == "AWS::SNS::Topic"}
    assert "stage-members.fifo" in topics and "stage-notifications" in topics
    roles = {r["Properties"]["RoleName"] for r in document["Resources"].values() if r["Type"] == "AWS::IAM::Role"}
    assert roles == {f"stage-scte-{s}" for s in SERVICES}


def test_a_queue_without_a_consuming_service_is_refused() -> None:
    ownership = platform_ownership([s for s in SERVICES if s != "search"], TOPOLOGY)
    with pytest.raises(ValueError, match="'search' has no consuming service"):
        template(TOPOLOGY, ownership)
