"""The engine: an async, in-process API with the semantics of AWS SQS.

Queues are addressed by name. Parameters and results use the SQS JSON protocol's member names
(`MessageId`, `ReceiptHandle`, `MD5OfBody`, ...), so the wire server is a thin translation, except that
binary attribute values are `bytes` here. Every call validates its input first and raises `SqsError`
with the code AWS uses; an invalid call changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scte.queue import validation
from scte.queue.attribute_shapes import StringValues, sqs_string_attributes
from scte.queue.checksums import md5_of_message_attributes
from scte.queue.clock import Clock, SystemClock
from scte.queue.errors import SqsError, invalid_parameter, missing_parameter
from scte.queue.operations import (
    INFLIGHT_LIMIT,
    SYSTEM_ATTRIBUTE_NAMES,
    Operations,
    ReceiveOutcome,
    ReceiveRequest,
    SendEntry,
    encode_message_attributes,
)
from scte.queue.schema import create_schema
from scte.queue.store import Store
from scte.queue.topics import Topics

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 1_048_576
RECEIVE_ATTRIBUTE_NAMES = frozenset((*SYSTEM_ATTRIBUTE_NAMES, "All"))


@dataclass
class EngineConfig:
    """Where the broker keeps its data and how it names things."""

    path: str | os.PathLike[str] = "var/queue/broker.db"
    durability: Literal["normal", "full"] = "normal"
    account_id: str = "123456789012"
    region: str = "us-east-1"
    sender_id: str = "AIDAIT2UOQQY3AUEKVGXU"
    clock: Clock = field(default_factory=SystemClock)
    inflight_limit: int = INFLIGHT_LIMIT  # per queue; SQS's is about 120,000 (a smaller one for tests)


# An entry naming only these is a plain message: no attributes, delay, group or deduplication id.
_PLAIN_ENTRY = frozenset(("Id", "MessageBody"))


def _sort_outcomes(
    ids: list[str], errors: Sequence[SqsError | None], failed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A batch's per-entry outcomes: the successful entries returned, the failed ones added to `failed`."""
    if not any(errors):  # the usual batch: every entry done
        return [{"Id": entry_id} for entry_id in ids]
    successful = []
    for entry_id, error in zip(ids, errors, strict=True):
        if error is None:
            successful.append({"Id": entry_id})
        else:
            failed.append(_batch_failure(entry_id, error))
    return successful


def _batch_failure(entry_id: str, exc: SqsError) -> dict[str, Any]:
    return {"Id": entry_id, "SenderFault": exc.sender, "Code": exc.code, "Message": exc.message}


def _plain_body(entry: Mapping[str, Any]) -> str | None:
    """The body of an entry that is only an Id and a printable ASCII body (what _prepare accepts as it is)."""
    body = entry.get("MessageBody")
    if type(body) is str and entry.keys() <= _PLAIN_ENTRY and body.isascii() and body.isprintable() and body:
        return body
    return None


def _plain_bodies(entries: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The bodies of a batch whose entries are all plain (`_plain_body`); None for any other."""
    bodies: list[str] = []
    for entry in entries:
        body = _plain_body(entry)
        if body is None:
            return None
        bodies.append(body)
    return bodies


def _batch_too_long(total: int) -> SqsError:
    return SqsError(
        "BatchRequestTooLong",
        f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes.",
    )


def _batch_result(ids: Sequence[str], results: Sequence[dict[str, Any] | SqsError]) -> dict[str, Any]:
    """SendMessageBatch's answer: results (that carry their entry's Id) or errors, in the entries' order."""
    successful: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for entry_id, result in zip(ids, results, strict=True):
        if isinstance(result, SqsError):
            failed.append(_batch_failure(entry_id, result))
        else:
            successful.append(result)
    return {"Successful": successful, "Failed": failed}


def _oldest(ops: Operations, queue_id: int, conn: sqlite3.Connection) -> tuple[int | None, bool]:
    if queue_id not in ops.depths.queues:
        return None, True
    return ops.oldest_sent(conn, queue_id)


class Engine:
    """A durable SQS-compatible broker on one SQLite file."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.clock = self.config.clock
        clock = self.clock
        self._ops = Operations(
            self.config.account_id,
            self.config.region,
            lambda: int(clock.now() * 1000),
            self.config.sender_id,
            self.config.inflight_limit,
        )
        path = Path(self.config.path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        self._store = Store(
            str(path),
            durability=self.config.durability,
            setup=self._setup,
            on_failure=self._ops.load,
            journal=self._ops.depths,  # the depth counts follow the store's commits and rollbacks
        )
        self._signals: dict[str, asyncio.Event] = {}
        self._closing = False
        self._move_tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self.topics = Topics(self)  # SNS topics and subscriptions, in the same store
        #: Messages moved to a dead-letter queue since start, by source queue (for metrics).
        self.dead_lettered: dict[str, int] = {}

    # -- life cycle --------------------------------------------------------------------------------

    def _setup(self, conn: Any) -> None:
        create_schema(conn)
        self._ops.load(conn)

    async def start(self) -> Engine:
        if not self._started:
            await asyncio.to_thread(self._store.start)
            self._started = True
            await self.topics.start()
            for handle, source, destination, rate in await self._store.run(
                lambda c: c.execute(
                    "SELECT handle, source_arn, destination_arn, max_per_second FROM move_tasks WHERE status='RUNNING'"
                ).fetchall()
            ):
                self._launch_move(handle, source, destination, rate)
        return self

    async def close(self) -> None:
        """Stop: pending long polls return empty, running work finishes, nothing accepted is lost."""
        if self._closing:
            return
        self._closing = True
        for event in self._signals.values():
            event.set()
        for task in self._move_tasks.values():
            task.cancel()
        for task in list(self._move_tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.topics.close()
        if self._started:
            await self._store.close()

    async def __aenter__(self) -> Engine:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def closing(self) -> bool:
        """True once close() has begun: long polls return and no new work should start."""
        return self._closing

    @property
    def stats(self) -> dict[str, int]:
        """Store counters: transactions committed and operations they carried (group commit at work)."""
        return {"transactions": self._store.transactions, "operations": self._store.operations}

    # -- names -------------------------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        return self.config.account_id

    @property
    def region(self) -> str:
        return self.config.region

    def queue_arn(self, name: str) -> str:
        return self._ops.arn(name)

    async def queue_gauges(self) -> dict[str, tuple[int, int, int, float]]:
        """Per queue, for metrics: messages visible, in flight, delayed, and the age of the oldest (s).

        The counts are the queues' depth counts (scte.queue.depth): no rows counted, the same cost at a
        million messages as at one. The oldest message is remembered per queue and looked up by row id
        (`Operations.oldest_sent`), a queue at a time, in store pieces that never hold the loop long."""
        now = int(self.clock.now() * 1000)
        out: dict[str, tuple[int, int, int, float]] = {}
        ops = self._ops
        for name, meta in list(ops.queues.items()):
            if meta.id not in ops.depths.queues:
                continue  # deleted meanwhile
            visible, in_flight, delayed = ops.depth_counts(meta.id, now)
            oldest: int | None = None
            for _ in range(1000):  # a few steps at most but after a restart
                oldest, known = await self._store.submit(functools.partial(_oldest, ops, meta.id), durable=False)
                if known:
                    break
            out[name] = (visible, in_flight, delayed, max(0.0, (now - oldest) / 1000) if oldest is not None else 0.0)
        return out

    def queue_exists(self, name: str) -> bool:
        return name in self._ops.queues

    def queue_policy(self, name: str) -> str | None:
        """The queue's `Policy` attribute; None when it has none or does not exist (the wire server's
        authorization reads it on every request: a dictionary look-up, no store call)."""
        meta = self._ops.queues.get(name)
        return meta.attributes.get("Policy") if meta is not None else None

    def is_fifo(self, name: str) -> bool:
        return self._ops.queue(name).fifo

    def _signal(self, name: str) -> asyncio.Event:
        event = self._signals.get(name)
        if event is None:
            event = self._signals[name] = asyncio.Event()
        return event

    def _notify(self, name: str) -> None:
        event = self._signals.pop(name, None)
        if event is not None:
            event.set()

    # -- queues ------------------------------------------------------------------------------------

    async def create_queue(
        self, name: str, attributes: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        if not name:
            raise missing_parameter("QueueName")
        attrs = _string_map(attributes or {}, "Attribute")
        tag_map = _string_map(tags or {}, "Tag")
        return await self._store.run(lambda c: self._ops.create_queue(c, name, attrs, tag_map))

    async def delete_queue(self, name: str) -> None:
        await self._store.run(lambda c: self._ops.delete_queue(c, name))
        self._notify(name)

    async def get_queue_url_name(self, name: str) -> str:
        """GetQueueUrl: the name if the queue exists (the server turns it into a URL)."""
        self._ops.queue(name)
        return name

    async def list_queues(
        self, prefix: str | None = None, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[str], str | None]:
        """Queue names by prefix, sorted; with `max_results`, pages joined by an opaque `next_token`."""
        if max_results is not None:
            max_results = validation.validate_int_param("MaxResults", max_results, 1, 1000)
        names = self._ops.list_queues(prefix)
        start = 0
        if next_token:
            after = _decode_token(next_token)
            start = next((i for i, n in enumerate(names) if n > after), len(names))
        if max_results is None:
            return names[start : start + 1000], None
        page = names[start : start + max_results]
        more = start + max_results < len(names)
        return page, (_encode_token(page[-1]) if more and page else None)

    async def get_queue_attributes(self, name: str, attribute_names: Sequence[str] = ("All",)) -> dict[str, str]:
        names = validation.validate_attribute_names(list(attribute_names))
        return await self._store.run(lambda c: self._ops.get_queue_attributes(c, name, names))

    async def set_queue_attributes(self, name: str, attributes: Mapping[str, str]) -> None:
        attrs = _string_map(attributes, "Attribute")
        await self._store.run(lambda c: self._ops.set_queue_attributes(c, name, attrs))
        self._notify(name)  # a shorter delay or visibility may make messages deliverable now

    async def purge_queue(self, name: str) -> None:
        await self._store.run(lambda c: self._ops.purge_queue(c, name))

    async def tag_queue(self, name: str, tags: Mapping[str, str]) -> None:
        if not tags:
            raise missing_parameter("Tags")
        tag_map = _string_map(tags, "Tag")
        await self._store.run(lambda c: self._ops.set_tags(c, name, tag_map, ()))

    async def untag_queue(self, name: str, tag_keys: Sequence[str]) -> None:
        if not tag_keys:
            raise missing_parameter("TagKeys")
        keys = list(tag_keys)
        await self._store.run(lambda c: self._ops.set_tags(c, name, {}, keys))

    async def list_queue_tags(self, name: str) -> dict[str, str]:
        return dict(self._ops.queue(name).tags)

    async def list_dead_letter_source_queues(
        self, name: str, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[str], str | None]:
        if max_results is not None:
            max_results = validation.validate_int_param("MaxResults", max_results, 1, 1000)
        names = self._ops.dead_letter_sources(name)
        start = 0
        if next_token:
            after = _decode_token(next_token)
            start = next((i for i, n in enumerate(names) if n > after), len(names))
        if max_results is None:
            return names[start : start + 1000], None
        page = names[start : start + max_results]
        return page, (_encode_token(page[-1]) if start + max_results < len(names) and page else None)

    async def add_permission(self, name: str, label: str, account_ids: Sequence[str], actions: Sequence[str]) -> None:
        """Add a statement to the queue's access policy (kept and returned, not enforced here)."""
        if not label:
            raise missing_parameter("Label")
        if not account_ids:
            raise missing_parameter("AWSAccountIds")
        if not actions:
            raise missing_parameter("Actions")
        if len(actions) > 7:
            raise SqsError("OverLimit", f"{len(actions)} Actions were found, maximum allowed is 7.")
        for action in actions:
            if action != "*" and action not in _PERMISSION_ACTIONS:
                raise invalid_parameter(
                    f"Value SQS:{action} for parameter ActionName is invalid. "
                    "Reason: Only the queue owner is allowed to invoke this action."
                )

        def apply(c: Any) -> None:  # read-modify-write in one store piece: concurrent calls lose nothing
            meta = self._ops.queue(name)
            policy = json.loads(meta.attributes.get("Policy") or "null") or {
                "Version": "2008-10-17",  # what AWS writes into the policies AddPermission makes
                "Id": f"{meta.arn}/SQSDefaultPolicy",
                "Statement": [],
            }
            statements = policy.setdefault("Statement", [])
            if isinstance(statements, dict):  # IAM allows one statement object instead of a list
                statements = policy["Statement"] = [statements]
            if any(s.get("Sid") == label for s in statements):
                raise invalid_parameter(f"Value {label} for parameter Label is invalid. Reason: Already exists.")
            principals = [f"arn:aws:iam::{a}:root" for a in account_ids]
            actions_out = [f"SQS:{a}" for a in actions]
            statements.append(
                {
                    "Sid": label,
                    "Effect": "Allow",
                    "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
                    "Action": actions_out[0] if len(actions_out) == 1 else actions_out,
                    "Resource": meta.arn,
                }
            )
            self._ops.set_policy(c, name, json.dumps(policy))

        await self._store.run(apply)

    async def remove_permission(self, name: str, label: str) -> None:
        if not label:
            raise missing_parameter("Label")

        def apply(c: Any) -> None:  # read-modify-write in one store piece: concurrent calls lose nothing
            meta = self._ops.queue(name)
            policy = json.loads(meta.attributes.get("Policy") or "null") or {}
            statements = policy.get("Statement", [])
            if isinstance(statements, dict):  # IAM allows one statement object instead of a list
                statements = [statements]
            kept = [s for s in statements if s.get("Sid") != label]
            if len(kept) == len(statements):
                raise invalid_parameter(
                    f"Value {label} for parameter Label is invalid. Reason: can't find label on existing policy."
                )
            policy["Statement"] = kept
            self._ops.set_policy(c, name, json.dumps(policy) if kept else None)

        await self._store.run(apply)

    # -- messages ----------------------------------------------------------------------------------

    def _prepare(self, entry: Mapping[str, Any], strings: StringValues | None = None) -> SendEntry:
        """Validate what can be validated without the queue, on the caller's side of the store.

        `strings`: what is known of the entry's MessageAttributes (SNS made them: `sns_string_attributes`)."""
        get = entry.get
        body = get("MessageBody")
        if body is None:
            raise missing_parameter("MessageBody")
        if not isinstance(body, str):
            raise invalid_parameter("The parameter MessageBody must be a string.")
        validation.validate_message_body(body)
        delay = get("DelaySeconds")
        if delay is not None:
            delay = validation.validate_int_param("DelaySeconds", delay, 0, 900)
        attributes = get("MessageAttributes") or None
        attrs_json = md5 = None
        attrs_size = -1
        if attributes:
            shaped = sqs_string_attributes(attributes, strings)  # the usual attributes, prepared at once
            if shaped is None:
                validation.validate_message_attributes(attributes)
                attrs_json = encode_message_attributes(attributes)
                md5 = md5_of_message_attributes(attributes)
            else:
                attrs_json, md5, attrs_size = shaped
        trace = None
        system = get("MessageSystemAttributes") or None
        if system:
            unknown = [k for k in system if k != "AWSTraceHeader"]
            if unknown:
                raise SqsError(
                    "InvalidParameterValue",
                    f"Message system attribute name '{unknown[0]}' is invalid. Only AWSTraceHeader is supported.",
                )
            value = system["AWSTraceHeader"]
            if value.get("DataType") != "String" or not value.get("StringValue"):
                raise invalid_parameter("The AWSTraceHeader message system attribute must be a non-empty String.")
            trace = str(value["StringValue"])
        group = get("MessageGroupId")
        if group is not None:
            validation.validate_group_id(group)
        dedup = get("MessageDeduplicationId")
        if dedup is not None:
            validation.validate_dedup_id(dedup)
        size = validation.utf8_len(body)
        if attributes:
            size += attrs_size if attrs_size >= 0 else validation.message_size("", attributes)
        return SendEntry(
            body=body,
            delay_seconds=delay,
            attributes=attributes,
            attributes_json=attrs_json,
            md5_attributes=md5,
            size=size,
            group_id=group,
            dedup_id=dedup,
            trace_header=trace,
            sender_id=get("SenderId") or self.config.sender_id,
            entry_id=get("Id"),
        )

    async def send_message(
        self,
        name: str,
        body: str,
        *,
        delay_seconds: int | None = None,
        message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
        message_system_attributes: Mapping[str, Mapping[str, Any]] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        sender_id: str | None = None,
    ) -> dict[str, Any]:
        """SendMessage: returns MessageId, MD5OfMessageBody, [MD5OfMessageAttributes], [SequenceNumber]."""
        entry = self._prepare(
            {
                "MessageBody": body,
                "DelaySeconds": delay_seconds,
                "MessageAttributes": message_attributes,
                "MessageSystemAttributes": message_system_attributes,
                "MessageGroupId": group_id,
                "MessageDeduplicationId": deduplication_id,
                "SenderId": sender_id,
            }
        )
        (result,) = await self._store.run(lambda c: self._ops.send(c, name, (entry,)))
        if isinstance(result, SqsError):
            raise result
        self._notify(name)
        return result

    async def send_message_batch(self, name: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """SendMessageBatch: {"Successful": [...], "Failed": [...]}, each entry answered on its own."""
        validation.validate_batch_entries(entries)
        meta = self._ops.queue(name)
        if meta.fifo:
            # AWS refuses the whole request, not the entry, when a FIFO entry lacks these.
            if any(not entry.get("MessageGroupId") for entry in entries):
                raise missing_parameter("MessageGroupId")
            if not meta.content_dedup and any(not entry.get("MessageDeduplicationId") for entry in entries):
                raise invalid_parameter(
                    "The queue should either have ContentBasedDeduplication enabled or "
                    "MessageDeduplicationId provided explicitly"
                )
        bodies = None if meta.fifo else _plain_bodies(entries)
        if bodies is not None:
            # The usual batch: every entry an Id and a printable ASCII body (what _prepare would accept as it
            # is). Sent without SendEntry objects; the queue's size limit is checked under the store.
            total = sum(map(len, bodies))
            if total > MAX_BATCH_BYTES:
                raise _batch_too_long(total)
            ids = [entry["Id"] for entry in entries]
            # submit, not run: the future itself is awaitable, a coroutine around it costs a frame a request
            sent = await self._store.submit(lambda c: self._ops.send_plain(c, name, ids, bodies))
            answer = _batch_result(ids, sent)
            if answer["Successful"]:
                self._notify(name)
            return answer
        prepared: list[SendEntry] = []
        failed: list[dict[str, Any]] = []
        total = 0
        sender = self.config.sender_id
        for entry in entries:
            body = _plain_body(entry)
            if body is not None:
                # The usual entry: what _prepare would make of it, directly.
                item = SendEntry(body, None, None, None, None, len(body), None, None, None, sender, entry.get("Id"))
            else:
                try:
                    item = self._prepare(entry)
                except SqsError as exc:
                    failed.append(_batch_failure(str(entry["Id"]), exc))
                    continue
            total += item.size
            prepared.append(item)
        if total > MAX_BATCH_BYTES:
            raise _batch_too_long(total)
        if not prepared:
            return {"Successful": [], "Failed": failed}
        results = await self._store.submit(lambda c: self._ops.send(c, name, prepared, with_ids=True))
        answer = _batch_result([str(item.entry_id) for item in prepared], results)
        answer["Failed"] = failed + answer["Failed"]  # the entries refused before the store come first, as before
        if answer["Successful"]:
            self._notify(name)
        return answer

    async def receive_message(
        self,
        name: str,
        *,
        max_number: int | None = None,
        visibility_timeout: int | None = None,
        wait_time_seconds: int | None = None,
        attribute_names: Sequence[str] = (),
        message_system_attribute_names: Sequence[str] = (),
        message_attribute_names: Sequence[str] = (),
        receive_request_attempt_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """ReceiveMessage, long polling up to 20 s; returns as soon as any message is available."""
        count = 1 if max_number is None else validation.validate_int_param("MaxNumberOfMessages", max_number, 1, 10)
        if visibility_timeout is not None:
            visibility_timeout = validation.validate_int_param("VisibilityTimeout", visibility_timeout, 0, 43200)
        if wait_time_seconds is not None:
            wait_time_seconds = validation.validate_int_param("WaitTimeSeconds", wait_time_seconds, 0, 20)
        system_names = frozenset((*attribute_names, *message_system_attribute_names))
        for attr in system_names:
            if attr not in RECEIVE_ATTRIBUTE_NAMES:
                raise SqsError("InvalidAttributeName", f"Unknown Attribute {attr}.")
        for attr_name in message_attribute_names:
            if not isinstance(attr_name, str) or not attr_name or len(attr_name) > 256:
                raise invalid_parameter(f"Value {attr_name} for parameter MessageAttributeName is invalid.")
        if receive_request_attempt_id is not None:
            validation.validate_dedup_id(receive_request_attempt_id)
        meta = self._ops.queue(name)
        wait = meta.wait_seconds if wait_time_seconds is None else wait_time_seconds
        # max_number, visibility_timeout, attribute_names, message_attribute_names, attempt_id (positional: cheaper)
        request = ReceiveRequest(
            count, visibility_timeout, system_names, tuple(message_attribute_names), receive_request_attempt_id
        )
        clock = self.clock
        deadline = clock.now() + wait
        while True:
            signal = self._signal(name)
            # Not durable: a reservation lost in a crash only makes the messages visible again sooner.
            pending = self._store.submit(lambda c: self._ops.receive(c, name, request), durable=False)
            try:
                outcome = await asyncio.shield(pending)
            except asyncio.CancelledError:
                # The caller went away (a long-poll client disconnected, a consumer stopping): what
                # this receive reserved goes back to the queue now, not after its visibility timeout.
                pending.add_done_callback(functools.partial(self._release_abandoned, name))
                raise
            if outcome.over_limit:
                raise SqsError(
                    "OverLimit",
                    f"Queue {name} has reached its limit of {self._ops.inflight_limit} messages in flight"
                    " (received and not yet deleted or visible again).",
                )
            if outcome.dead_lettered_to:
                self._notify(outcome.dead_lettered_to)
                self.dead_lettered[name] = self.dead_lettered.get(name, 0) + outcome.dead_lettered
            if outcome.messages or self._closing:
                return outcome.messages
            remaining = deadline - clock.now()
            if remaining <= 0:
                return []
            if outcome.next_visible_ms is not None:
                remaining = min(remaining, max(0.0, outcome.next_visible_ms / 1000 - clock.now()) + 0.001)
            await clock.wait(signal, remaining)
            if self.closing:
                return []

    def _release_abandoned(self, name: str, done: asyncio.Future[ReceiveOutcome]) -> None:
        if done.cancelled() or done.exception() is not None or not done.result().messages or self._closing:
            return
        changes = [(m["ReceiptHandle"], 0) for m in done.result().messages]
        release = self._store.submit(lambda c: self._ops.change_visibility(c, name, changes))
        release.add_done_callback(lambda f: None if f.cancelled() or f.exception() else self._notify(name))

    async def delete_message(self, name: str, receipt_handle: str) -> None:
        if not receipt_handle:
            raise missing_parameter("ReceiptHandle")
        (error,) = await self._store.run(lambda c: self._ops.delete(c, name, (receipt_handle,)))
        if error is not None:
            raise error
        if (meta := self._ops.queues.get(name)) is not None and meta.fifo:
            self._notify(name)  # the message's group may deliver its next message now

    async def delete_message_batch(self, name: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        validation.validate_batch_entries(entries, action="DeleteMessage")
        handles: list[str] = []
        ids: list[str] = []
        failed: list[dict[str, Any]] = []
        for entry in entries:
            handle = entry.get("ReceiptHandle")
            if not handle:
                failed.append(_batch_failure(str(entry["Id"]), missing_parameter("ReceiptHandle")))
                continue
            handles.append(handle if type(handle) is str else str(handle))
            entry_id = entry["Id"]
            ids.append(entry_id if type(entry_id) is str else str(entry_id))
        errors = await self._store.submit(lambda c: self._ops.delete(c, name, handles)) if handles else []
        successful = _sort_outcomes(ids, errors, failed)
        if successful and (meta := self._ops.queues.get(name)) is not None and meta.fifo:
            self._notify(name)  # their groups may deliver their next messages now
        return {"Successful": successful, "Failed": failed}

    async def change_message_visibility(self, name: str, receipt_handle: str, visibility_timeout: int) -> None:
        if not receipt_handle:
            raise missing_parameter("ReceiptHandle")
        if visibility_timeout is None:
            raise missing_parameter("VisibilityTimeout")
        timeout = validation.validate_int_param("VisibilityTimeout", visibility_timeout, 0, 43200)
        (error,) = await self._store.run(lambda c: self._ops.change_visibility(c, name, ((receipt_handle, timeout),)))
        if error is not None:
            raise error
        if timeout == 0:
            self._notify(name)

    async def change_message_visibility_batch(self, name: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        validation.validate_batch_entries(entries, action="ChangeMessageVisibility")
        changes: list[tuple[str, int]] = []
        ids: list[str] = []
        failed: list[dict[str, Any]] = []
        for entry in entries:
            try:
                handle = entry.get("ReceiptHandle")
                if not handle:
                    raise missing_parameter("ReceiptHandle")
                if entry.get("VisibilityTimeout") is None:
                    raise missing_parameter("VisibilityTimeout")
                timeout = validation.validate_int_param("VisibilityTimeout", entry["VisibilityTimeout"], 0, 43200)
            except SqsError as exc:
                failed.append(_batch_failure(str(entry["Id"]), exc))
                continue
            changes.append((str(handle), timeout))
            ids.append(str(entry["Id"]))
        errors = await self._store.run(lambda c: self._ops.change_visibility(c, name, changes)) if changes else []
        successful = _sort_outcomes(ids, errors, failed)
        if any(t == 0 for _h, t in changes):
            self._notify(name)
        return {"Successful": successful, "Failed": failed}

    # -- message move tasks (redrive from a dead-letter queue) ---------------------------------------

    async def start_message_move_task(
        self, source_arn: str, destination_arn: str | None = None, max_per_second: int | None = None
    ) -> str:
        """Start moving a dead-letter queue's messages back to their sources (or to `destination_arn`)."""
        if not source_arn:
            raise missing_parameter("SourceArn")
        source = self._queue_from_arn(source_arn, "SourceArn")
        if not self._ops.dead_letter_sources(source):
            raise invalid_parameter("Source queue must be configured as a Dead Letter Queue.")
        if destination_arn:
            self._queue_from_arn(destination_arn, "DestinationArn")
        if max_per_second is not None:
            max_per_second = validation.validate_int_param("MaxNumberOfMessagesPerSecond", max_per_second, 1, 500)
        running = await self._store.run(
            lambda c: c.execute(
                "SELECT 1 FROM move_tasks WHERE source_arn=? AND status='RUNNING'", (source_arn,)
            ).fetchone()
        )
        if running:
            raise invalid_parameter(
                "There is already a task running. "
                "Only one active task is allowed for a source queue arn at a given time."
            )
        handle = base64.urlsafe_b64encode(
            json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source_arn}).encode()
        ).decode()
        started = int(self.clock.now() * 1000)
        to_move = await self._store.run(lambda c: self._ops.count_messages(c, source))

        def insert(c: Any) -> None:
            if c.execute("SELECT 1 FROM move_tasks WHERE source_arn=? AND status='RUNNING'", (source_arn,)).fetchone():
                raise invalid_parameter("There is already a task running for this source queue.")
            c.execute(
                "INSERT INTO move_tasks (handle, source_arn, destination_arn, max_per_second, status, started, "
                "to_move) VALUES (?,?,?,?, 'RUNNING', ?, ?)",
                (handle, source_arn, destination_arn or None, max_per_second, started, to_move),
            )

        await self._store.run(insert)
        self._launch_move(handle, source_arn, destination_arn or None, max_per_second)
        return handle

    def _queue_from_arn(self, arn: str, parameter: str) -> str:
        name = self._ops.name_from_arn(arn, parameter)
        meta = self._ops.queues.get(name)
        if meta is None or meta.arn != arn:
            raise SqsError(
                "ResourceNotFoundException",
                f"The resource that you specified for the {parameter} parameter doesn't exist.",
            )
        return name

    def _launch_move(self, handle: str, source_arn: str, destination_arn: str | None, rate: int | None) -> None:
        task = asyncio.create_task(self._run_move(handle, source_arn, destination_arn, rate))
        self._move_tasks[handle] = task
        task.add_done_callback(lambda _t: self._move_tasks.pop(handle, None))

    async def _run_move(self, handle: str, source_arn: str, destination_arn: str | None, rate: int | None) -> None:
        per_tick = rate or 500
        source = source_arn.rsplit(":", 1)[1]
        destination = destination_arn.rsplit(":", 1)[1] if destination_arn else None
        status, reason = "COMPLETED", None
        try:
            while True:
                state = await self._store.run(
                    lambda c: c.execute("SELECT status FROM move_tasks WHERE handle=?", (handle,)).fetchone()
                )
                if state is None or state[0] != "RUNNING":
                    status = "CANCELLED"
                    break

                def step(c: Any) -> tuple[int, set[str]]:
                    moved, touched = self._ops.move_batch(c, source, destination, per_tick)
                    c.execute("UPDATE move_tasks SET moved=moved+? WHERE handle=?", (moved, handle))
                    return moved, touched

                moved, touched = await self._store.run(step)
                for queue_name in touched:
                    self._notify(queue_name)
                if moved < per_tick:
                    break
                await self.clock.wait(asyncio.Event(), 1.0)
        except asyncio.CancelledError:
            return  # engine shutting down: the task stays RUNNING and resumes at the next start
        except SqsError as exc:
            status, reason = "FAILED", exc.message
        except Exception as exc:  # a broken task must not take the broker down
            log.exception("message move task %s failed", handle)
            status, reason = "FAILED", str(exc)
        await self._store.run(
            lambda c: c.execute(
                "UPDATE move_tasks SET status=?, failure_reason=? "
                "WHERE handle=? AND status IN ('RUNNING','CANCELLING')",
                (status, reason, handle),
            )
        )

    async def cancel_message_move_task(self, task_handle: str) -> int:
        """Cancel a running task; returns the approximate number of messages already moved."""
        if not task_handle:
            raise missing_parameter("TaskHandle")

        try:
            decoded = json.loads(base64.urlsafe_b64decode(task_handle.encode()))
            if not isinstance(decoded, dict) or not isinstance(decoded.get("sourceArn"), str):
                raise ValueError
        except (ValueError, TypeError, UnicodeError):
            raise invalid_parameter(f"Value {task_handle} for parameter TaskHandle is invalid.") from None

        def cancel(c: Any) -> int:
            row = c.execute("SELECT status, moved FROM move_tasks WHERE handle=?", (task_handle,)).fetchone()
            if row is None:
                raise SqsError("ResourceNotFoundException", "Task does not exist.")
            if row[0] != "RUNNING":
                raise invalid_parameter("Only active tasks can be cancelled.")
            c.execute("UPDATE move_tasks SET status='CANCELLED' WHERE handle=?", (task_handle,))
            return int(row[1])

        moved = await self._store.run(cancel)
        task = self._move_tasks.pop(task_handle, None)
        if task is not None:
            task.cancel()
        return moved

    async def list_message_move_tasks(self, source_arn: str, max_results: int | None = None) -> list[dict[str, Any]]:
        if not source_arn:
            raise missing_parameter("SourceArn")
        self._queue_from_arn(source_arn, "SourceArn")
        limit = 1 if max_results is None else validation.validate_int_param("MaxResults", max_results, 1, 10)
        rows = await self._store.run(
            lambda c: c.execute(
                "SELECT handle, source_arn, destination_arn, max_per_second, status, started, moved, to_move, "
                "failure_reason FROM move_tasks WHERE source_arn=? ORDER BY started DESC, rowid DESC LIMIT ?",
                (source_arn, limit),
            ).fetchall()
        )
        out = []
        for handle, src, dst, rate, status, started, moved, to_move, reason in rows:
            item: dict[str, Any] = {
                "Status": status,
                "SourceArn": src,
                "ApproximateNumberOfMessagesMoved": moved,
                "ApproximateNumberOfMessagesToMove": to_move,
                "StartedTimestamp": started,
            }
            if status == "RUNNING":
                item["TaskHandle"] = handle
            if dst:
                item["DestinationArn"] = dst
            if rate:
                item["MaxNumberOfMessagesPerSecond"] = rate
            if reason:
                item["FailureReason"] = reason
            out.append(item)
        return out


_PERMISSION_ACTIONS = frozenset(
    (
        "ChangeMessageVisibility",
        "DeleteMessage",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListDeadLetterSourceQueues",
        "PurgeQueue",
        "ReceiveMessage",
        "SendMessage",
        "ListQueueTags",
    )
)


def _string_map(values: Mapping[str, Any], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise invalid_parameter(f"{what} names must be strings.")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        elif not isinstance(value, str):
            raise SqsError("InvalidAttributeValue", f"Invalid value for the parameter {key}.")
        out[key] = value
    return out


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last}).encode()).decode()


def _decode_token(token: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
        if not isinstance(after, str):
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError):
        raise invalid_parameter("Invalid NextToken value. It was not returned by a previous call.") from None
