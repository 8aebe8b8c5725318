"""AWS parity, round 2 (issue 15): each behaviour an AWS-validated suite found different, through boto3
against a real `scte queue serve`, on both wire protocols where the point is wire-level."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from server_harness import ACCOUNT, CREDENTIALS, REGION, Server

JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


@pytest.fixture(params=["json", "query"])
def client(request: pytest.FixtureRequest, sqs: Any, sqs_query: Any) -> Any:
    """The same boto3 calls on the JSON protocol and on the query protocol."""
    return sqs if request.param == "json" else sqs_query


def fresh(prefix: str, fifo: bool = False) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return f"{name}.fifo" if fifo else name


def fifo_queue(sqs: Any, prefix: str, **attributes: str) -> str:
    attrs = {"FifoQueue": "true", "ContentBasedDeduplication": "true", **attributes}
    return str(sqs.create_queue(QueueName=fresh(prefix, fifo=True), Attributes=attrs)["QueueUrl"])


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def raw(
    server: Server, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def json_call(server: Server, action: str, params: dict[str, Any], path: str = "/") -> tuple[int, dict[str, Any]]:
    status, _headers, body = raw(
        server, "POST", path, json.dumps(params).encode(), {**JSON_HEADERS, "X-Amz-Target": f"AmazonSQS.{action}"}
    )
    return status, json.loads(body) if body else {}


def query_call(server: Server, method: str, form: dict[str, str], path: str = "/") -> tuple[int, bytes]:
    encoded = urllib.parse.urlencode(form)
    if method == "GET":
        status, _h, body = raw(server, "GET", f"{path}?{encoded}" if encoded else path)
    else:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _h, body = raw(server, "POST", path, encoded.encode(), headers)
    return status, body


# -- 1. FIFO: a visible message ahead of every in-flight one of its group is deliverable ----------------------


def test_fifo_group_head_made_visible_is_delivered_again(client: Any) -> None:
    url = fifo_queue(client, "fifo-head")
    for group, body in (("g1", "g1-m1"), ("g1", "g1-m2"), ("g2", "g2-m1")):
        client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
    first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    assert [m["Body"] for m in first] == ["g1-m1", "g1-m2"]
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in again) == ["g1-m1", "g2-m1"]


def test_fifo_group_blocked_behind_an_earlier_message_in_flight(client: Any) -> None:
    url = fifo_queue(client, "fifo-block")
    for body in ("m1", "m2"):
        client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=first[1]["ReceiptHandle"], VisibilityTimeout=0)
    assert "Messages" not in client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)  # m1 still holds g


# -- 2. queue URLs carry the region ---------------------------------------------------------------------------


def test_queue_urls_carry_the_region_and_are_resolved_by_it(server: Server, sqs: Any, sqs_query: Any) -> None:
    europe = boto3.client("sqs", endpoint_url=server.endpoint, region_name="eu-west-1", **CREDENTIALS)
    us_url = sqs.create_queue(QueueName="same-name")["QueueUrl"]
    eu_url = europe.create_queue(QueueName="same-name")["QueueUrl"]
    assert us_url == f"{server.endpoint}/queue/{REGION}/{ACCOUNT}/same-name"
    assert eu_url == f"{server.endpoint}/queue/eu-west-1/{ACCOUNT}/same-name"
    assert sqs_query.get_queue_url(QueueName="same-name")["QueueUrl"] == us_url
    # The URL names the queue, whatever region the request was signed for.
    sqs.send_message(QueueUrl=eu_url, MessageBody="to europe")
    sqs_query.send_message(QueueUrl=us_url, MessageBody="to us")
    (got,) = europe.receive_message(QueueUrl=eu_url)["Messages"]
    assert got["Body"] == "to europe"
    (got,) = sqs.receive_message(QueueUrl=us_url, VisibilityTimeout=0)["Messages"]
    assert got["Body"] == "to us"
    arn = europe.get_queue_attributes(QueueUrl=eu_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn == f"arn:aws:sqs:eu-west-1:{ACCOUNT}:same-name"
    # The old form (no region) is still accepted: the request's region decides.
    old = f"{server.endpoint}/{ACCOUNT}/same-name"
    (got,) = sqs_query.receive_message(QueueUrl=old, VisibilityTimeout=0)["Messages"]
    assert got["Body"] == "to us"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=f"{server.endpoint}/queue/ap-south-1/{ACCOUNT}/same-name", MessageBody="x")
    assert error(exc)[0] == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=f"{server.endpoint}/queue/not-a-region/{ACCOUNT}/same-name", MessageBody="x")
    assert error(exc)[0] == "AWS.SimpleQueueService.NonExistentQueue"


def test_queue_named_by_a_region_path(server: Server, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="by-region-path")["QueueUrl"]
    status, body = json_call(server, "SendMessage", {"MessageBody": "via path"}, path=urllib.parse.urlsplit(url).path)
    assert status == 200 and body["MessageId"]
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "via path"


def test_plain_queue_urls_on_request(tmp_path: Any) -> None:
    from server_harness import start_server

    plain = start_server(tmp_path / "plain", "--queue-urls", "plain")
    try:
        sqs = boto3.client("sqs", endpoint_url=plain.endpoint, region_name=REGION, **CREDENTIALS)
        url = sqs.create_queue(QueueName="plain")["QueueUrl"]
        assert url == f"{plain.endpoint}/{ACCOUNT}/plain"
        sqs.send_message(QueueUrl=f"{plain.endpoint}/queue/{REGION}/{ACCOUNT}/plain", MessageBody="either form")
        assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "either form"
    finally:
        plain.stop()


# -- 3. an empty attribute-name list is ignored ----------------------------------------------------------------


def test_empty_attribute_name_lists_are_ignored(client: Any) -> None:
    url = client.create_queue(QueueName=fresh("empty-names"))["QueueUrl"]
    client.send_message(
        QueueUrl=url, MessageBody="b", MessageAttributes={"a": {"DataType": "String", "StringValue": "v"}}
    )
    got = client.receive_message(QueueUrl=url, MessageAttributeNames=[], AttributeNames=[])["Messages"]
    assert got[0]["Body"] == "b" and "MessageAttributes" not in got[0] and "Attributes" not in got[0]
    assert "Attributes" not in client.get_queue_attributes(QueueUrl=url, AttributeNames=[])


def test_query_form_with_empty_name_list_is_accepted(server: Server, sqs: Any) -> None:
    url = sqs.create_queue(QueueName=fresh("empty-form"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    status, body = query_call(
        server,
        "POST",
        {"Action": "ReceiveMessage", "QueueUrl": url, "MessageAttributeName": "", "AttributeName": ""},
    )
    assert status == 200, body
    assert b"<Body>x</Body>" in body


# -- 4. ChangeMessageVisibility after the timeout ended, with the latest handle -----------------------------


def test_change_visibility_of_an_expired_reservation_is_accepted(client: Any) -> None:
    url = client.create_queue(QueueName=fresh("cmv-expired"))["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="late")
    (message,) = client.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    time.sleep(1.3)
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=30)
    assert "Messages" not in client.receive_message(QueueUrl=url)  # hidden again by the change


def test_change_visibility_after_another_receive_is_not_in_flight(client: Any) -> None:
    url = client.create_queue(QueueName=fresh("cmv-again"))["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="twice")
    (first,) = client.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    time.sleep(1.3)
    (second,) = client.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    assert second["MessageId"] == first["MessageId"]
    with pytest.raises(ClientError) as exc:
        client.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=30)
    assert error(exc)[0] == "AWS.SimpleQueueService.MessageNotInflight"


# -- 5. FIFO DeleteMessage with an expired receipt handle -----------------------------------------------------


def test_fifo_delete_with_an_expired_handle_is_refused(client: Any) -> None:
    url = fifo_queue(client, "fifo-expired")
    client.send_message(QueueUrl=url, MessageBody="keep", MessageGroupId="g")
    (message,) = client.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    time.sleep(1.3)
    with pytest.raises(ClientError) as exc:
        client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    code, text = error(exc)
    assert code == "InvalidParameterValue" and text.endswith("Reason: The receipt handle has expired.")
    (again,) = client.receive_message(QueueUrl=url)["Messages"]  # not deleted
    assert again["Body"] == "keep"


# -- 6. PurgeQueue forgets a FIFO queue's deduplication ids ---------------------------------------------------


def test_purge_fifo_queue_forgets_deduplication_ids(client: Any) -> None:
    url = fifo_queue(client, "fifo-purge")
    client.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="d1")
    client.purge_queue(QueueUrl=url)
    client.send_message(QueueUrl=url, MessageBody="b", MessageGroupId="g", MessageDeduplicationId="d1")
    (message,) = client.receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == "b"


# -- 7. FIFO: DelaySeconds=0 on a message does not override the queue's delay ---------------------------------


def test_fifo_message_delay_zero_keeps_the_queue_delay(client: Any) -> None:
    url = fifo_queue(client, "fifo-delay", DelaySeconds="2")
    client.send_message(QueueUrl=url, MessageBody="later", MessageGroupId="g", DelaySeconds=0)
    assert "Messages" not in client.receive_message(QueueUrl=url)
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"


# -- 8. FifoQueue=false on a standard queue -------------------------------------------------------------------


def test_create_standard_queue_with_fifo_queue_false_is_refused(client: Any) -> None:
    with pytest.raises(ClientError) as exc:
        client.create_queue(QueueName=fresh("fifo-false"), Attributes={"FifoQueue": "false"})
    assert error(exc) == ("InvalidAttributeName", "Unknown Attribute FifoQueue.")


# -- 9. non-ASCII message attribute names ---------------------------------------------------------------------


def test_non_ascii_attribute_name_is_accepted(client: Any) -> None:
    url = client.create_queue(QueueName=fresh("unicode-name"))["QueueUrl"]
    attrs = {"attr.1øßä": {"DataType": "String", "StringValue": "v"}}
    sent = client.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attrs)
    (got,) = client.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert got["MessageAttributes"] == attrs
    assert got["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]


def test_attribute_name_with_other_characters_is_still_refused(client: Any) -> None:
    url = client.create_queue(QueueName=fresh("bad-name"))["QueueUrl"]
    with pytest.raises(ClientError) as exc:
        client.send_message(
            QueueUrl=url, MessageBody="b", MessageAttributes={"a b": {"DataType": "String", "StringValue": "v"}}
        )
    assert error(exc)[0] == "InvalidParameterValue"


# -- 10. X-Amzn-Trace-Id becomes AWSTraceHeader ---------------------------------------------------------------


def test_trace_id_header_is_kept_as_aws_trace_header(server: Server, request: pytest.FixtureRequest) -> None:
    sqs = boto3.client("sqs", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

    def add_header(request: Any, **_kwargs: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = trace

    sqs.meta.events.register("before-sign.sqs.SendMessage", add_header)
    url = sqs.create_queue(QueueName=fresh("trace"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="traced")
    (got,) = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["AWSTraceHeader"])["Messages"]
    assert got["Attributes"] == {"AWSTraceHeader": trace}


# -- 11. DeduplicationScope / FifoThroughputLimit changed after messages were sent --------------------------


def test_deduplication_scope_change_does_not_regroup_messages_sent_before(client: Any) -> None:
    url = fifo_queue(client, "dedup-scope", DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    client.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g1", MessageDeduplicationId="same")
    client.set_queue_attributes(
        QueueUrl=url, Attributes={"DeduplicationScope": "queue", "FifoThroughputLimit": "perQueue"}
    )
    # The id was recorded under the message group's scope: a send in another group is not a duplicate of it.
    client.send_message(QueueUrl=url, MessageBody="two", MessageGroupId="g2", MessageDeduplicationId="same")
    bodies = sorted(m["Body"] for m in client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"])
    assert bodies == ["one", "two"]


# -- 12. MessageAttributeNames=["*"] ---------------------------------------------------------------------------


def test_star_selects_every_message_attribute(client: Any) -> None:
    url = client.create_queue(QueueName=fresh("star"))["QueueUrl"]
    attrs = {n: {"DataType": "String", "StringValue": n} for n in ("a", "b.c")}
    client.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attrs)
    (got,) = client.receive_message(QueueUrl=url, MessageAttributeNames=["*"])["Messages"]
    assert got["MessageAttributes"] == attrs


# -- 13. standard queues: a message visible again comes before newer ones -----------------------------------


def test_message_visible_again_comes_back_before_newer_ones(client: Any) -> None:
    url = client.create_queue(QueueName=fresh("redeliver"))["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="first")
    (taken,) = client.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    assert taken["Body"] == "first"
    client.send_message(QueueUrl=url, MessageBody="second")
    time.sleep(1.3)
    (again,) = client.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert again["Body"] == "first"


# -- wire details ---------------------------------------------------------------------------------------------


def test_fifo_batch_entry_without_group_is_missing_parameter(client: Any) -> None:
    url = fifo_queue(client, "batch-group")
    with pytest.raises(ClientError) as exc:
        client.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}])
    assert error(exc)[0] == "MissingParameter"


def test_move_task_errors(client: Any) -> None:
    missing = json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:nope"})
    import base64

    handle = base64.urlsafe_b64encode(missing.encode()).decode()
    with pytest.raises(ClientError) as exc:
        client.cancel_message_move_task(TaskHandle=handle)
    assert error(exc)[0] == "ResourceNotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exc:
        client.cancel_message_move_task(TaskHandle="not-a-handle")
    assert error(exc)[0] == "InvalidParameterValue"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("action", "params", "json_type"),
    [
        ("ReceiveMessage", {"QueueUrl": "{url}", "MaxNumberOfMessages": 99}, "InvalidParameterValueException"),
        ("SendMessage", {"QueueUrl": "{url}"}, "MissingRequiredParameterException"),
        ("GetQueueUrl", {"QueueName": "no-such-queue"}, "QueueDoesNotExist"),
        ("GetQueueAttributes", {"QueueUrl": "{url}", "AttributeNames": ["Nope"]}, "InvalidAttributeName"),
    ],
)
def test_json_error_types_are_aws_names(
    server: Server, sqs: Any, action: str, params: dict[str, Any], json_type: str
) -> None:
    url = sqs.create_queue(QueueName="json-types")["QueueUrl"]
    status, body = json_call(server, action, {k: (url if v == "{url}" else v) for k, v in params.items()})
    assert status == 400
    assert body["__type"] == f"com.amazonaws.sqs#{json_type}"


def test_missing_queue_messages_per_protocol(sqs: Any, sqs_query: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_url(QueueName="no-such-queue")
    assert error(exc) == ("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
    with pytest.raises(ClientError) as exc:
        sqs_query.get_queue_url(QueueName="no-such-queue")
    assert error(exc) == (
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist for this wsdl version.",
    )


def test_add_permission_policy_version(client: Any) -> None:
    url = client.create_queue(QueueName=fresh("perm"))["QueueUrl"]
    client.add_permission(QueueUrl=url, Label="l1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    policy = json.loads(client.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Version"] == "2008-10-17"


def test_account_actions_on_a_queue_url_are_invalid(server: Server, sqs: Any) -> None:
    sqs.create_queue(QueueName="account-actions")
    for form in ({"Action": "ListQueues"}, {"Action": "CreateQueue", "QueueName": "other"}):
        status, body = query_call(server, "POST", form, path=f"/{ACCOUNT}/account-actions")
        assert status == 400 and b"<Code>InvalidAction</Code>" in body
    status, body = query_call(server, "POST", {"Action": "ListQueues"})
    assert status == 200


def test_get_without_action_is_unknown_operation(server: Server) -> None:
    status, body = query_call(server, "GET", {})
    assert status == 404 and b"UnknownOperationException" in body


def test_json_send_batch_without_failures_has_no_failed_list(server: Server, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="batch-shape")["QueueUrl"]
    status, body = json_call(
        server, "SendMessageBatch", {"QueueUrl": url, "Entries": [{"Id": "a", "MessageBody": "x"}]}
    )
    assert status == 200 and "Failed" not in body and [e["Id"] for e in body["Successful"]] == ["a"]


def test_kms_reuse_period_dropped_with_the_key(client: Any) -> None:
    url = client.create_queue(
        QueueName=fresh("kms"), Attributes={"KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": "600"}
    )["QueueUrl"]
    client.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "", "KmsDataKeyReusePeriodSeconds": "600"})
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "KmsMasterKeyId" not in attrs and "KmsDataKeyReusePeriodSeconds" not in attrs


def test_empty_xml_result_is_an_empty_element(server: Server, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="empty-xml")["QueueUrl"]
    status, body = query_call(server, "POST", {"Action": "ReceiveMessage", "QueueUrl": url})
    assert status == 200 and b"<ReceiveMessageResult/>" in body


def test_get_caller_identity_outside_test_mode(server: Server) -> None:
    sts = boto3.client("sts", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)
    assert sts.get_caller_identity()["Account"] == ACCOUNT


def test_get_caller_identity_is_verified_under_strict_auth(tmp_path: Any) -> None:
    from server_harness import start_server

    strict = start_server(tmp_path / "strict", "--auth", "strict", "--access-key", "AKIDPARITY:parity-secret")
    try:

        def sts(key: str, secret: str) -> Any:
            return boto3.client(
                "sts",
                endpoint_url=strict.endpoint,
                region_name=REGION,
                aws_access_key_id=key,
                aws_secret_access_key=secret,
            )

        assert sts("AKIDPARITY", "parity-secret").get_caller_identity()["Account"] == ACCOUNT
        with pytest.raises(ClientError) as exc:
            sts("AKIDPARITY", "wrong").get_caller_identity()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        status, _body = query_call(strict, "POST", {"Action": "GetCallerIdentity", "Version": "2011-06-15"})
        assert status == 403  # unsigned
    finally:
        strict.stop()
