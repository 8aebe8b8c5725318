"""The publishing part of `Topics`: Publish and PublishBatch, and the fan-out of an accepted message to
the topic's subscriptions, in the publish's transaction (all or none for this region's queues)."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from scte.queue.errors import SqsError
from scte.queue.operations import SendEntry
from scte.queue.policy import SNS_SERVICE, Principal, Request, allows
from scte.queue.topics.base import TopicsBase
from scte.queue.topics.envelope import http_notification, notification
from scte.queue.topics.errors import SnsError, batch_failure, invalid
from scte.queue.topics.http_delivery import enqueue_http
from scte.queue.topics.limits import BATCH_ID, DEDUP_WINDOW_MS, E164, MAX_BATCH_ENTRIES, MAX_MESSAGE_BYTES
from scte.queue.topics.messages import publication
from scte.queue.topics.records import Outcome, Publication, Subscription, Topic, confirmed_subscriptions
from scte.queue.topics.region_delivery import enqueue_region


class _Refused(Exception):
    """A deferred delivery was refused (PublishBatch's fast path gives way to the entry-by-entry one)."""


log = logging.getLogger("scte.queue.topics")

# How an `sqs` subscription is delivered to: (in another region, queue or None, topic counter, queue is FIFO)
_Route = tuple[bool, str | None, str, bool]


class _Fanout:
    """What the publications of one PublishBatch share in its transaction: the topic and its confirmed
    subscriptions (read once), the routes of `sqs` subscriptions, and the deliveries to standard queues
    left for the end (queue -> entries)."""

    __slots__ = ("deferred", "routes", "subs", "topic")

    def __init__(self, topic: Topic, subs: list[Subscription]) -> None:
        self.topic = topic
        self.subs = subs
        self.routes: dict[str, _Route] = {}
        self.deferred: dict[str, list[SendEntry]] = {}


class Publisher(TopicsBase):
    # -- the API -------------------------------------------------------------------------------------------

    def _prepare(
        self,
        message: object,
        subject: object,
        attributes: Mapping[str, Mapping[str, Any]] | None,
        structure: object,
        group_id: object,
        dedup_id: object,
        entry_id: str | None = None,
    ) -> Publication:
        return publication(
            message,
            subject,
            attributes,
            structure,
            group_id,
            dedup_id,
            now=self._engine.clock.now(),
            entry_id=entry_id,
        )

    async def publish(
        self,
        topic_arn: str | None = None,
        message: str | None = None,
        *,
        subject: str | None = None,
        message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
        message_structure: str | None = None,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
        target_arn: str | None = None,
        phone_number: str | None = None,
    ) -> dict[str, str]:
        """Publish: {"MessageId"[, "SequenceNumber"]}. Delivered to every matching subscription in one
        transaction with the acceptance: if any queue refuses the message, nothing is delivered.
        Queues of other regions get it from a durable outbox written in that transaction (at least once);
        the first attempt is made before this returns."""
        if phone_number is not None:
            if not isinstance(phone_number, str) or not E164.fullmatch(phone_number):
                raise invalid("Invalid parameter: PhoneNumber Reason: Phone number does not meet the E164 format")
            if isinstance(message, str) and len(message) > 1600:
                raise invalid("Invalid parameter: Message Reason: SMS message must be less than 1600 bytes")
            raise invalid("Invalid parameter: PhoneNumber Reason: SMS delivery is not supported by this broker")
        if target_arn is not None:
            if topic_arn is not None:
                raise invalid("Invalid parameter: TopicArn or TargetArn Reason: Only one of them may be set")
            if ":sns:" not in target_arn or len(target_arn.split(":")) != 6:
                raise invalid(
                    "Invalid parameter: TargetArn Reason: "
                    "Platform application endpoints are not supported by this broker"
                )
            topic_arn = target_arn
        if topic_arn is None:
            raise invalid("Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
        arn = self._check_arn(topic_arn, action="Publish")
        p = self._prepare(
            message, subject, message_attributes, message_structure, message_group_id, message_deduplication_id
        )
        outcome: Outcome = await self._run(lambda c: self._publish_in(c, arn, p, batch=False))
        if self._after([outcome], arn):
            await self._deliver_to_regions_now()
        result = {"MessageId": outcome.message_id}
        if outcome.sequence is not None:
            result["SequenceNumber"] = outcome.sequence
        return result

    async def publish_batch(self, topic_arn: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """PublishBatch: {"Successful": [{"Id", "MessageId"[, "SequenceNumber"]}], "Failed": [{"Id",
        "Code", "Message", "SenderFault"}]}; each entry is its own all-or-none publish."""
        arn = self._check_arn(topic_arn, action="Publish")
        topic: Topic = await self._run(lambda c: self._topic(c, arn))
        if not entries:
            raise SnsError("EmptyBatchRequest", "The batch request doesn't contain any entries.")
        if len(entries) > MAX_BATCH_ENTRIES:
            raise SnsError("TooManyEntriesInBatchRequest", "The batch request contains more entries than permissible.")
        ids = [e.get("Id") for e in entries]
        for entry_id in ids:
            if not isinstance(entry_id, str) or not BATCH_ID.fullmatch(entry_id):
                raise SnsError(
                    "InvalidBatchEntryId",
                    "The Id of a batch entry in a batch request doesn't abide by the specification.",
                )
        if len(set(ids)) != len(ids):
            raise SnsError("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.")
        if topic.fifo and not all(e.get("MessageGroupId") for e in entries):
            raise invalid("Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
        total = sum(len(str(e.get("Message") or "").encode("utf-8")) for e in entries)
        if total > MAX_MESSAGE_BYTES:
            raise SnsError("BatchRequestTooLong", "The length of all the messages put together is more than the limit.")
        failed: list[dict[str, Any]] = []
        prepared: list[Publication] = []
        for entry in entries:
            try:
                prepared.append(
                    self._prepare(
                        entry.get("Message"),
                        entry.get("Subject"),
                        entry.get("MessageAttributes"),
                        entry.get("MessageStructure"),
                        entry.get("MessageGroupId"),
                        entry.get("MessageDeduplicationId"),
                        entry_id=str(entry["Id"]),
                    )
                )
            except SqsError as exc:
                failed.append(batch_failure(str(entry["Id"]), exc))

        def run(conn: sqlite3.Connection) -> list[Outcome | SqsError]:
            accepted = self._publish_all(conn, arn, prepared)
            if accepted is not None:
                return [*accepted]
            results: list[Outcome | SqsError] = []
            for p in prepared:
                conn.execute("SAVEPOINT sns_entry")
                mark = self._engine._ops.depths.mark()
                try:
                    results.append(self._publish_in(conn, arn, p, batch=True))
                except SqsError as exc:
                    conn.execute("ROLLBACK TO sns_entry")
                    self._engine._ops.depths.undo(mark)  # the queues' depth counts, as the rows
                    self._engine._ops.load(conn)  # message ids allocated by the undone entry
                    results.append(exc)
                conn.execute("RELEASE sns_entry")
            return results

        results: list[Outcome | SqsError] = await self._run(run) if prepared else []
        successful: list[dict[str, str]] = []
        outcomes: list[Outcome] = []
        for p, result in zip(prepared, results, strict=True):
            assert p.entry_id is not None
            if isinstance(result, SqsError):
                failed.append(batch_failure(p.entry_id, result))
                continue
            outcomes.append(result)
            item = {"Id": p.entry_id, "MessageId": result.message_id}
            if result.sequence is not None:
                item["SequenceNumber"] = result.sequence
            successful.append(item)
        if self._after(outcomes, arn):
            await self._deliver_to_regions_now()
        order = {entry_id: i for i, entry_id in enumerate(ids)}
        failed.sort(key=lambda f: order[f["Id"]])
        return {"Successful": successful, "Failed": failed}

    def _publish_all(self, conn: sqlite3.Connection, arn: str, prepared: Sequence[Publication]) -> list[Outcome] | None:
        """PublishBatch's usual case, every entry accepted: the topic and its subscriptions read once, no
        savepoint per entry, and the deliveries to each standard queue inserted together at the end. When
        any entry fails, None and nothing of this is left: the caller then publishes entry by entry, each
        in its own savepoint, which gives every entry the answer it gets alone."""
        conn.execute("SAVEPOINT sns_batch")
        mark = self._engine._ops.depths.mark()
        try:
            fanout = _Fanout(self._topic(conn, arn), confirmed_subscriptions(conn, arn))
            outcomes = [self._publish_in(conn, arn, p, batch=True, fanout=fanout) for p in prepared]
            ops = self._engine._ops
            for name, entries in fanout.deferred.items():
                if ops.deliver(conn, name, entries) is not None:
                    raise _Refused
        except (SqsError, _Refused):
            conn.execute("ROLLBACK TO sns_batch")
            conn.execute("RELEASE sns_batch")
            self._engine._ops.depths.undo(mark)  # the queues' depth counts, as the rows
            self._engine._ops.load(conn)  # message ids allocated by what was undone
            return None
        conn.execute("RELEASE sns_batch")
        return outcomes

    def _after(self, outcomes: Sequence[Outcome], topic_arn: str) -> bool:
        """After the commit: wake the queues' long polls and the HTTP deliverer, count. True when
        deliveries to other regions were queued (the caller then makes their first attempt)."""
        counter = self._counter(topic_arn)
        http = regions = False
        for outcome in outcomes:
            for queue, n in outcome.sent.items():
                self._queue_sent[queue] += n
                self._engine._notify(queue)
            for key, n in outcome.counts.items():  # (Counter.update: an ABC check and a Python call each)
                counter[key] += n
            http = http or outcome.http
            regions = regions or outcome.regions
        if http:
            self._http_worker.kick()
        return regions

    # -- fan-out -------------------------------------------------------------------------------------------

    def _publish_in(
        self,
        conn: sqlite3.Connection,
        arn: str,
        p: Publication,
        *,
        batch: bool,
        fanout: _Fanout | None = None,
    ) -> Outcome:
        """Accept one publication and fan it out, inside the caller's transaction. Raises before
        returning if anything fails; the store (or publish_batch's savepoint) then undoes it all.

        `fanout`: what the publications of one PublishBatch share (see `_Fanout`); deliveries to standard
        queues are then left in its `deferred` for the caller to insert."""
        topic = self._topic(conn, arn) if fanout is None else fanout.topic
        now_ms = self._now_ms()
        dedup_id = p.dedup_id
        sequence: str | None = None
        if topic.fifo:
            if not p.group_id:
                if batch:
                    raise invalid("Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
                raise invalid("The request must contain the parameter MessageGroupId.")
            if dedup_id is None:
                if not topic.content_dedup:
                    raise invalid(
                        "The topic should either have ContentBasedDeduplication enabled or "
                        "MessageDeduplicationId provided explicitly"
                    )
                dedup_id = hashlib.sha256(p.message.encode("utf-8")).hexdigest()
            seen = conn.execute(
                "SELECT message_id, sequence FROM topic_dedup WHERE topic_arn=? AND dedup_id=? AND expires_at>?",
                (arn, dedup_id, now_ms),
            ).fetchone()
            if seen is not None:
                return Outcome(message_id=seen[0], sequence=seen[1], counts=defaultdict(int, duplicates=1))
            topic.sequence += 1
            sequence = f"{topic.sequence:020d}"
            conn.execute("UPDATE topics SET sequence=? WHERE arn=?", (topic.sequence, arn))
            conn.execute("DELETE FROM topic_dedup WHERE expires_at<=?", (now_ms,))
            conn.execute(
                "INSERT OR REPLACE INTO topic_dedup (topic_arn, dedup_id, expires_at, message_id, sequence) "
                "VALUES (?,?,?,?,?)",
                (arn, dedup_id, now_ms + DEDUP_WINDOW_MS, p.message_id, sequence),
            )
        elif dedup_id is not None:
            raise invalid(
                "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId "
                "parameter that is not valid for this topic type"
            )
        subs = confirmed_subscriptions(conn, arn) if fanout is None else fanout.subs
        if p.structure is not None and "default" not in p.structure:
            if subs:
                raise invalid(f"Message does not contain {subs[0].protocol} or default keys.")
            raise invalid("Invalid parameter: Message Structure - No default entry in JSON message body")
        outcome = Outcome(message_id=p.message_id, sequence=sequence)
        outcome.counts["published"] += 1
        for sub in subs:
            policy = sub.filter()
            if policy is not None and not policy.matches(p.attributes, p.message):
                outcome.counts["filtered_out"] += 1
                continue
            message = p.message if p.structure is None else p.structure.get(sub.protocol, p.structure["default"])
            if sub.protocol == "sqs":
                route = self._sqs_route(sub, fanout)
                if route[0]:
                    request = self._sqs_request(topic, sub, p, message, dedup_id, sequence)
                    enqueue_region(conn, sub.arn, sub.endpoint, request, now_ms)
                    outcome.regions = True
                else:
                    self._deliver_sqs(conn, topic, sub, p, message, dedup_id, sequence, outcome, route, fanout)
            elif sub.protocol in ("http", "https"):
                payload = http_notification(
                    topic, sub, p, message, sequence, base_url=self.base_url, signer=self._signer
                )
                enqueue_http(conn, sub.arn, sub.endpoint, payload, now_ms)
                outcome.http = True
                outcome.counts["delivered"] += 1
            else:
                outcome.counts["undeliverable"] += 1
        return outcome

    def _sqs_request(
        self,
        topic: Topic,
        sub: Subscription,
        p: Publication,
        message: str,
        dedup_id: str | None,
        sequence: str | None,
    ) -> dict[str, Any]:
        """The SendMessage request that delivers the notification to an `sqs` subscription."""
        raw = sub.raw
        return {
            "MessageBody": message
            if raw
            else notification(topic, sub, p, message, sequence, base_url=self.base_url, signer=self._signer),
            "MessageAttributes": p.attributes if raw else None,
            "MessageGroupId": p.group_id,
            "MessageDeduplicationId": dedup_id,
        }

    def _sqs_route(self, sub: Subscription, fanout: _Fanout | None) -> _Route:
        """Where notifications for an `sqs` subscription go (remembered for the rest of a PublishBatch)."""
        if fanout is not None:
            known = fanout.routes.get(sub.arn)
            if known is not None:
                return known
        route: _Route
        if self._other_region(sub.endpoint) is not None:
            route = (True, None, "", False)
        else:
            engine = self._engine
            name = self._queue_name(sub.endpoint)
            if name is None or not engine.queue_exists(name) or engine.queue_arn(name) != sub.endpoint:
                # SNS drops what it cannot deliver after its retries, or sends it to the subscription's DLQ.
                target = self._dead_letter_queue(sub)
                if target is None:
                    route = (False, None, "undeliverable", False)
                else:
                    route = (False, target, "dead_lettered", engine.is_fifo(target))
            elif self.enforce_queue_policies and not self._may_deliver(sub, name):
                route = (False, None, "undeliverable", False)
            else:
                route = (False, name, "delivered", engine.is_fifo(name))
        if fanout is not None:
            fanout.routes[sub.arn] = route
        return route

    def _may_deliver(self, sub: Subscription, queue: str) -> bool:
        """Whether the queue's policy lets SNS send it this topic's messages (`aws:SourceArn`), as on AWS."""
        engine = self._engine
        request = Request(
            Principal(SNS_SERVICE, self._account, service=SNS_SERVICE),
            "sqs:SendMessage",
            engine.queue_arn(queue),
            source_arn=sub.topic_arn,
            source_account=self._account,
        )
        if allows(engine.queue_policy(queue), request):
            return True
        log.warning("SNS delivery from %s to queue %s refused by the queue's policy", sub.topic_arn, queue)
        return False

    def _deliver_sqs(
        self,
        conn: sqlite3.Connection,
        topic: Topic,
        sub: Subscription,
        p: Publication,
        message: str,
        dedup_id: str | None,
        sequence: str | None,
        outcome: Outcome,
        route: _Route,
        fanout: _Fanout | None,
    ) -> None:
        _other, name, counter, fifo = route
        outcome.counts[counter] += 1
        if name is None:
            return
        engine = self._engine
        request = self._sqs_request(topic, sub, p, message, dedup_id, sequence)
        if not fifo:
            request["MessageDeduplicationId"] = None
        try:
            # (a raw delivery carries the publication's attributes as they are: what is known of them holds)
            entry = engine._prepare(request, p.strings if sub.raw else None)
            if fanout is not None and not fifo:
                fanout.deferred.setdefault(name, []).append(entry)
                outcome.sent[name] += 1
                return
            (result,) = engine._ops.send(conn, name, (entry,))
        except SqsError as exc:
            result = exc
        if isinstance(result, SqsError):
            raise invalid(
                f"Invalid parameter: Message could not be delivered to {engine.queue_arn(name)}: {result.message}"
            )
        outcome.sent[name] += 1
