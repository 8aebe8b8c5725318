"""The AWS transport: SQS and SNS through aiobotocore.

The same code talks to real AWS, to `scte queue serve` (embedded mode) and to any other SQS/SNS
implementation: `endpoint_url` (or `AWS_ENDPOINT_URL`) picks the endpoint. Against a local endpoint
without AWS credentials configured, placeholder credentials are used (local brokers do not check them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from scte.bus.transport import IncomingMessage, OutgoingMessage, TransportError
from scte.bus.transports._check import missing
from scte.bus.transports._credentials import FileCredentials
from scte.bus.transports._provision import (
    MAX_SNS_BATCH_BYTES,
    RECEIVE_SYSTEM_ATTRIBUTES,
    batches,
    entry,
    physical_name,
    provision,
)
from scte.bus.transports._wire import Credentials, WireClient, WireError, publish_batch_failures, sns_entry_form
from scte.bus.transports.inprocess import incoming

if TYPE_CHECKING:
    from scte.bus.topology import Topology

__all__ = ["AwsTransport"]

log = logging.getLogger(__name__)

_NOT_FOUND = frozenset(("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFound"))


def _error(exc: BaseException, action: str) -> TransportError:
    if isinstance(exc, WireError):
        return TransportError(f"{action}: {exc.code}: {exc.message}", code=exc.code)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        return TransportError(f"{action}: {code}: {error.get('Message', '')}", code=code)
    return TransportError(f"{action}: broker unreachable: {exc}")


_ERRORS = (ClientError, BotoCoreError, WireError, aiohttp.ClientError, OSError, asyncio.TimeoutError)


class _AwsOps:
    def __init__(self, transport: AwsTransport) -> None:
        self.t = transport

    async def create_topic(self, name: str, attributes: Mapping[str, str]) -> str:
        sns = await self.t._client("sns")
        response = await sns.create_topic(Name=name, Attributes=dict(attributes))
        return str(response["TopicArn"])

    async def create_queue(self, name: str, attributes: Mapping[str, str]) -> None:
        sqs = await self.t._client("sqs")
        response = await sqs.create_queue(QueueName=name, Attributes=dict(attributes))
        self.t._urls[name] = str(response["QueueUrl"])

    async def queue_arn(self, name: str) -> str:
        attributes = await self.get_queue_attributes(name, ("QueueArn",))
        return attributes["QueueArn"]

    async def get_queue_attributes(self, name: str, names: Sequence[str] = ("All",)) -> dict[str, str]:
        sqs = await self.t._client("sqs")
        response = await sqs.get_queue_attributes(QueueUrl=await self.t._url(name), AttributeNames=list(names))
        return dict(response.get("Attributes") or {})

    async def set_queue_attributes(self, name: str, attributes: Mapping[str, str]) -> None:
        sqs = await self.t._client("sqs")
        await sqs.set_queue_attributes(QueueUrl=await self.t._url(name), Attributes=dict(attributes))

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]:
        sns = await self.t._client("sns")
        out: list[dict[str, str]] = []
        kwargs: dict[str, Any] = {"TopicArn": topic_arn}
        while True:
            response = await sns.list_subscriptions_by_topic(**kwargs)
            out.extend(response.get("Subscriptions") or [])
            if not response.get("NextToken"):
                return out
            kwargs["NextToken"] = response["NextToken"]

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]:
        sns = await self.t._client("sns")
        response = await sns.get_subscription_attributes(SubscriptionArn=subscription_arn)
        return dict(response.get("Attributes") or {})

    async def set_subscription_attribute(self, subscription_arn: str, name: str, value: str) -> None:
        sns = await self.t._client("sns")
        await sns.set_subscription_attributes(
            SubscriptionArn=subscription_arn, AttributeName=name, AttributeValue=value
        )

    async def subscribe(self, topic_arn: str, queue_arn: str, attributes: Mapping[str, str]) -> str:
        sns = await self.t._client("sns")
        response = await sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=dict(attributes),
            ReturnSubscriptionArn=True,
        )
        return str(response["SubscriptionArn"])

    async def unsubscribe(self, subscription_arn: str) -> None:
        sns = await self.t._client("sns")
        await sns.unsubscribe(SubscriptionArn=subscription_arn)

    # -- the read-only calls of the production check (`_check`) --

    async def queue_arn_and_redrive(self, name: str) -> tuple[str, str | None] | None:
        try:
            attributes = await self.get_queue_attributes(name, ("QueueArn", "RedrivePolicy"))
        except (ClientError, WireError) as exc:  # GetQueueUrl goes through the direct client
            if _error(exc, "").code in _NOT_FOUND:
                return None
            raise
        return attributes["QueueArn"], attributes.get("RedrivePolicy")

    async def topic_exists(self, arn: str) -> bool:
        sns = await self.t._client("sns")
        try:
            await sns.get_topic_attributes(TopicArn=arn)
        except ClientError as exc:
            if _error(exc, "").code in _NOT_FOUND:
                return False
            raise
        return True

    async def find_topic(self, name: str) -> str | None:
        sns = await self.t._client("sns")
        kwargs: dict[str, Any] = {}
        while True:
            response = await sns.list_topics(**kwargs)
            for topic in response.get("Topics") or []:
                if str(topic["TopicArn"]).rsplit(":", 1)[-1] == name:
                    return str(topic["TopicArn"])
            if not response.get("NextToken"):
                return None
            kwargs["NextToken"] = response["NextToken"]


class AwsTransport:
    """`Transport` on SQS + SNS. Clients are opened on first use; `close()` ends them.

    The calls made per message (Publish, PublishBatch, SendMessageBatch, ReceiveMessage,
    DeleteMessageBatch, ChangeMessageVisibility) go through a small direct client (`_wire`: SQS's
    JSON protocol, SNS's query protocol, SigV4, botocore's standard retries), at a fifth of
    aiobotocore's CPU per call; provisioning and look-ups through aiobotocore. `direct_calls=False`
    sends everything through aiobotocore (an endpoint that speaks only SQS's query protocol)."""

    def __init__(
        self,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        topology: Topology | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        connect_timeout: float = 5.0,
        max_attempts: int = 3,
        max_pool_connections: int = 50,
        direct_calls: bool = True,
        credentials_file: Path | None = None,
    ) -> None:
        self.prefix = prefix
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        # AWS_REGION, then the SDK's own chain (AWS_DEFAULT_REGION, the profile in ~/.aws/config)
        self.region = (
            region or os.environ.get("AWS_REGION") or get_session().get_config_variable("region") or "us-east-1"
        )
        self._credentials = (aws_access_key_id, aws_secret_access_key)
        # a key file (`scte up`'s per-service key), read again when it changes: a rotated key is taken up
        self._key_file = FileCredentials(credentials_file) if credentials_file is not None else None
        self._client_key: str | None = None  # the access key the aiobotocore clients were made with
        self._config = AioConfig(
            connect_timeout=connect_timeout,
            read_timeout=30,  # above the 20 s long poll
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max_pool_connections,
        )
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._urls: dict[str, str] = {}  # physical queue name -> URL
        self._topics: dict[str, tuple[str, bool]] = {}  # logical -> (ARN, fifo)
        self._queues: dict[str, tuple[str, bool]] = {}  # logical -> (physical, fifo)
        self._ops = _AwsOps(self)
        self._closed = False
        self._wire: WireClient | None = None
        if direct_calls:
            self._wire = WireClient(
                endpoint_url=self.endpoint_url,
                region=self.region,
                credentials=self._signing_credentials,
                connect_timeout=connect_timeout,
                max_attempts=max_attempts,
                max_pool_connections=max_pool_connections,
            )
        self._resolved: Any = None  # botocore credentials (static or refreshable), or a static tuple
        if topology is not None:
            self._learn_queues(topology)

    # -- clients and names -----------------------------------------------------------------------------

    async def _client(self, service: str) -> Any:
        key_file = self._key_file
        if key_file is not None and key_file.current()[0] != self._client_key:
            self._clients = {}  # the key was rotated: new clients (the old ones close with the transport)
        client = self._clients.get(service)
        if client is not None:
            return client
        async with self._lock:
            if self._closed:
                raise TransportError("the transport is closed")
            if service not in self._clients:
                session = get_session()
                key, secret = self._credentials
                if key_file is not None:
                    key, secret, _token = key_file.current()
                    self._client_key = key
                if key is None and self.endpoint_url and await session.get_credentials() is None:
                    key, secret = "scte-local", "scte-local"  # a local broker: any credentials will do
                self._clients[service] = await self._stack.enter_async_context(
                    session.create_client(
                        service,
                        region_name=self.region,
                        endpoint_url=self.endpoint_url,
                        aws_access_key_id=key,
                        aws_secret_access_key=secret,
                        config=self._config,
                    )
                )
            return self._clients[service]

    async def _signing_credentials(self) -> Credentials:
        """The credentials of the direct client, resolved as aiobotocore resolves them."""
        if self._key_file is not None:
            return self._key_file.current()
        resolved = self._resolved
        if resolved is None:
            async with self._lock:
                if self._resolved is None:
                    key, secret = self._credentials
                    if key is not None and secret is not None:
                        self._resolved = (key, secret, None)
                    else:
                        chain = await get_session().get_credentials()
                        if chain is None:
                            if not self.endpoint_url:
                                raise TransportError("no AWS credentials found")
                            chain = ("scte-local", "scte-local", None)  # a local broker: any will do
                        self._resolved = chain
            resolved = self._resolved
        if isinstance(resolved, tuple):
            return resolved
        frozen = await resolved.get_frozen_credentials()  # refreshes temporary credentials when due
        return (frozen.access_key, frozen.secret_key, frozen.token)

    def _learn_queues(self, topology: Topology) -> None:
        for queue in topology.queues:
            for logical in (queue.name, queue.dead_letter_queue):
                self._queues[logical] = (physical_name(self.prefix, logical, queue.fifo), queue.fifo)

    async def _url(self, physical: str) -> str:
        url = self._urls.get(physical)
        if url is None:
            if self._wire is not None:  # a running service's look-ups never load botocore's models (~17 MB)
                response: Mapping[str, Any] = await self._wire.sqs("GetQueueUrl", {"QueueName": physical})
            else:
                sqs = await self._client("sqs")
                response = await sqs.get_queue_url(QueueName=physical)
            url = self._urls[physical] = str(response["QueueUrl"])
        return url

    async def _queue(self, name: str) -> tuple[str, str, bool]:
        """(URL, physical name, fifo) of a logical queue name."""
        known = self._queues.get(name)
        candidates = [known] if known else [(physical_name(self.prefix, name, f), f) for f in (False, True)]
        last: BaseException | None = None
        for physical, fifo in candidates:
            try:
                url = await self._url(physical)
            except (ClientError, WireError) as exc:
                last = exc
                if _error(exc, "").code in _NOT_FOUND:
                    continue
                raise
            self._queues[name] = (physical, fifo)
            return url, physical, fifo
        if last is not None:
            raise last
        raise TransportError(f"queue {name!r} does not exist", code="QueueDoesNotExist")

    async def _topic(self, name: str) -> tuple[str, bool]:
        known = self._topics.get(name)
        if known is not None:
            return known
        wanted = {physical_name(self.prefix, name, False): False, physical_name(self.prefix, name, True): True}
        kwargs: dict[str, Any] = {}
        while True:
            response = await self._list_topics(kwargs.get("NextToken"))
            for topic in response.get("Topics") or []:
                arn = str(topic["TopicArn"])
                fifo = wanted.get(arn.rsplit(":", 1)[-1])
                if fifo is not None:
                    self._topics[name] = (arn, fifo)
                    return self._topics[name]
            if not response.get("NextToken"):
                raise TransportError(f"topic {name!r} does not exist", code="NotFound")
            kwargs["NextToken"] = response["NextToken"]

    async def _list_topics(self, token: str | None) -> Mapping[str, Any]:
        """One page of ListTopics (botocore's shape), through the direct client when there is one."""
        if self._wire is None:
            sns = await self._client("sns")
            return dict(await sns.list_topics(**({"NextToken": token} if token else {})))
        root = await self._wire.sns("ListTopics", [("NextToken", token)] if token else [])
        arns = [element.text or "" for element in root.iter() if element.tag.endswith("}TopicArn")]
        following = [element.text for element in root.iter() if element.tag.endswith("}NextToken") and element.text]
        return {"Topics": [{"TopicArn": arn} for arn in arns], **({"NextToken": following[0]} if following else {})}

    # -- Transport -------------------------------------------------------------------------------------

    async def provision(self, topology: Topology) -> None:
        try:
            topic_arns, _queues = await provision(self._ops, topology, self.prefix)
        except _ERRORS as exc:
            raise _error(exc, "provision") from exc
        for topic in topology.topics:
            self._topics[topic.name] = (topic_arns[topic.name], topic.fifo)
        self._learn_queues(topology)

    async def check(self, topology: Topology, *, topics: Collection[str] | None = None) -> list[str]:
        """What the broker lacks of `topology` (production mode: nothing is created; see `_check`), in words
        an operator can act on; empty when it is all there. The topic ARNs found are kept for publishing."""
        try:
            result = await missing(self._ops, topology, self.prefix, topics=topics)
        except _ERRORS as exc:
            raise _error(exc, "check the topology") from exc
        for topic in topology.topics:
            if topic.name in result.topic_arns:
                self._topics[topic.name] = (result.topic_arns[topic.name], topic.fifo)
        self._learn_queues(topology)
        return result.missing

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        try:
            arn, fifo = await self._topic(topic)
            wire = self._wire
            if len(messages) == 1:
                item = entry(messages[0], fifo=fifo, body_key="Message")
                if wire is not None:
                    await wire.sns("Publish", [("TopicArn", arn), *sns_entry_form(item)])
                else:
                    await (await self._client("sns")).publish(TopicArn=arn, **item)
                return
            entries = [{"Id": str(i), **entry(m, fifo=fifo, body_key="Message")} for i, m in enumerate(messages)]
            for batch in batches(entries, "Message", MAX_SNS_BATCH_BYTES):
                if wire is not None:
                    form = [("TopicArn", arn)]
                    for n, item in enumerate(batch, 1):
                        form.extend(sns_entry_form(item, f"PublishBatchRequestEntries.member.{n}."))
                    response: Mapping[str, Any] = {
                        "Failed": publish_batch_failures(await wire.sns("PublishBatch", form))
                    }
                else:
                    sns = await self._client("sns")
                    response = await sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=batch)
                _raise_failed(response, "publish")
        except _ERRORS as exc:
            error = _error(exc, f"publish to {topic}")
            if error.code in _NOT_FOUND:
                self._topics.pop(topic, None)
            raise error from exc

    async def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        try:
            url, _name, fifo = await self._queue(queue)
            entries = [{"Id": str(i), **entry(m, fifo=fifo, body_key="MessageBody")} for i, m in enumerate(messages)]
            for batch in batches(entries, "MessageBody", 1_048_576):
                response = await self._sqs("SendMessageBatch", {"QueueUrl": url, "Entries": batch})
                _raise_failed(response, "send")
        except _ERRORS as exc:
            raise self._forget(_error(exc, f"send to {queue}"), queue) from exc

    async def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: int = 20, visibility_timeout: int | None = None
    ) -> list[IncomingMessage]:
        try:
            url, _name, _fifo = await self._queue(queue)
            kwargs: dict[str, Any] = {
                "QueueUrl": url,
                "MaxNumberOfMessages": max_messages,
                "WaitTimeSeconds": wait_seconds,
                "MessageAttributeNames": ["All"],
                "MessageSystemAttributeNames": list(RECEIVE_SYSTEM_ATTRIBUTES),
            }
            if visibility_timeout is not None:
                kwargs["VisibilityTimeout"] = visibility_timeout
            response = await self._sqs("ReceiveMessage", kwargs)
        except _ERRORS as exc:
            raise self._forget(_error(exc, f"receive from {queue}"), queue) from exc
        return [incoming(queue, m) for m in response.get("Messages") or []]

    async def delete(self, queue: str, receipts: Sequence[str]) -> None:
        if not receipts:
            return
        try:
            url, _name, _fifo = await self._queue(queue)
            for start in range(0, len(receipts), 10):
                chunk = receipts[start : start + 10]
                entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
                response = await self._sqs("DeleteMessageBatch", {"QueueUrl": url, "Entries": entries})
                _raise_failed(response, "delete")
        except _ERRORS as exc:
            raise _error(exc, f"delete from {queue}") from exc

    async def change_visibility(self, queue: str, receipt: str, seconds: int) -> None:
        try:
            url, _name, _fifo = await self._queue(queue)
            await self._sqs(
                "ChangeMessageVisibility", {"QueueUrl": url, "ReceiptHandle": receipt, "VisibilityTimeout": seconds}
            )
        except _ERRORS as exc:
            raise _error(exc, f"change visibility in {queue}") from exc

    async def _sqs(self, action: str, params: dict[str, Any]) -> Mapping[str, Any]:
        """An SQS call through the direct client, or aiobotocore's method of the same name."""
        if self._wire is not None:
            return await self._wire.sqs(action, params)
        sqs = await self._client("sqs")
        method = getattr(sqs, "".join("_" + c.lower() if c.isupper() else c for c in action).lstrip("_"))
        return dict(await method(**params))

    def _forget(self, error: TransportError, queue: str) -> TransportError:
        """A queue that is gone (deleted, re-created elsewhere) is looked up again next time."""
        if error.code in _NOT_FOUND:
            known = self._queues.pop(queue, None)
            if known is not None:
                self._urls.pop(known[0], None)
        return error

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            self._clients.clear()
            await self._stack.aclose()
            if self._wire is not None:
                await self._wire.close()


def _raise_failed(response: Mapping[str, Any], action: str) -> None:
    failed = response.get("Failed") or []
    if failed:
        first = failed[0]
        raise TransportError(
            f"{action}: {len(failed)} of the batch failed, first: {first.get('Code')}: {first.get('Message')}",
            code=str(first.get("Code")),
        )
