"""The SQS operations as they run on the store's thread, inside a transaction.

Each public method takes the SQLite connection first and either returns its result or raises
`SqsError` before writing anything (the store also rolls back the piece's savepoint on any error).
The queue catalogue is cached in memory (a few rows per queue); messages are not.
"""

from __future__ import annotations

import base64
import functools
import json
import operator
import random
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scte.queue import receipts, validation
from scte.queue.checksums import md5_of_body, md5_of_message_attributes
from scte.queue.depth import DELAYED, INFLIGHT, Depths, QueueDepth
from scte.queue.errors import SqsError, invalid_parameter, queue_does_not_exist

MINUTES_5_MS = 5 * 60 * 1000
SYSTEM_ATTRIBUTE_NAMES = (
    "ApproximateFirstReceiveTimestamp",
    "ApproximateReceiveCount",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
    "MessageDeduplicationId",
    "MessageGroupId",
    "SenderId",
    "SentTimestamp",
    "SequenceNumber",
)

# What a bare receive (no attributes asked for) reads comes first: id to body.
_MESSAGE_COLUMNS = (
    "id, sent_at, receive_count, receipt, message_id, body, visible_at, first_receive, attributes, "
    "md5_attributes, group_id, dedup_id, sender_id, trace_header, dlq_source"
)
# Reserve the next visible messages of a standard queue: one statement, rows returned as updated.
_TAKE_STANDARD = (
    "UPDATE messages SET visible_at=?, receive_count=receive_count+1, "
    "first_receive=CASE WHEN receipt > 0 THEN first_receive ELSE ? END, "
    "receipt=(? << 30) | (random() & 1073741823) "  # see receipt_nonce
    "WHERE id IN (SELECT id FROM messages WHERE queue_id=? AND visible_at<=? ORDER BY visible_at LIMIT ?) "
    f"RETURNING {_MESSAGE_COLUMNS}"
)
# The same for a receive that asks for no attributes: only the first six columns of _MESSAGE_COLUMNS (up to
# the body), which is all such a receive reads. Python's sqlite3 (3.11) releases and retakes the GIL for
# every column of every row it fetches, so the nine columns less are a few thousand instructions a message.
_TAKE_STANDARD_BARE = _TAKE_STANDARD.replace(
    _MESSAGE_COLUMNS, _MESSAGE_COLUMNS[: _MESSAGE_COLUMNS.index(", visible_at")]
)
# The same for the messages whose visibility timeout ended at one time (ms): a receive takes those first.
_TAKE_AT = _TAKE_STANDARD.replace("visible_at<=? ORDER BY visible_at", "visible_at=?")
_TAKE_AT_BARE = _TAKE_STANDARD_BARE.replace("visible_at<=? ORDER BY visible_at", "visible_at=?")
# Row layout of _MESSAGE_COLUMNS
(
    C_ID,
    C_SENT,
    C_COUNT,
    C_RECEIPT,
    C_MESSAGE_ID,
    C_BODY,
    C_VISIBLE,
    C_FIRST,
    C_ATTRS,
    C_MD5_ATTRS,
    C_GROUP,
    C_DEDUP,
    C_SENDER,
    C_TRACE,
    C_DLQ_SOURCE,
) = range(15)
_BY_ID = operator.itemgetter(C_ID)


ID_BLOCK = 100_000
# %-formatting: for ints with format specs it costs a third of an f-string, and these run per message.
_MESSAGE_ID_FORMAT = "%s%012x"  # this process's random prefix, the row id
_HANDLE_FORMAT = receipts.HANDLE_FORMAT
# AWS: a deleted queue's name can't be taken again for 60 s (QueueDeletedRecently), and a queue can be
# purged once in 60 s (PurgeQueueInProgress).
QUEUE_COOL_DOWN_MS = 60_000
INFLIGHT_LIMIT = 120_000  # messages in flight per queue (SQS: "about 120,000"); a receive past it: OverLimit
VISIBILITY_CAP_MS = 43_200_000  # a reservation lasts at most 12 hours from its receive, extensions included
RECEIPT_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z


def _receipt_seconds(now_ms: int) -> int:
    # At least 1, so that a nonce stays positive (received) on a test clock set before 2020.
    return max(1, (now_ms - RECEIPT_EPOCH_MS) // 1000)


def receipt_nonce(now_ms: int, random_bits: int) -> int:
    """The nonce of a receipt handle issued at `now_ms`: the second of the receive since 2020 (32 bits,
    to year 2156) above 30 random bits. Positive, as a received message's nonce must be; distinct per
    receive as a random nonce is (two receives of one message in one second share 1 in 2**30); and
    ChangeMessageVisibility reads the receive's time back from it for the 12-hour cap, so the
    schema needs no column for it."""
    return (_receipt_seconds(now_ms) << 30) | random_bits


def received_by_ms(nonce: int) -> int | None:
    """The latest time (ms) a receipt with this nonce can have been issued; None if it holds no time
    (a nonce of the random form written before the time was put in)."""
    if nonce <= 0:
        return None
    return RECEIPT_EPOCH_MS + (nonce >> 30) * 1000 + 999


# The receipt nonce of a message not received (in its current queue) yet. Negative, so no handle can
# match it, and eight bytes wide like a real nonce: together with first_receive written at insert, a
# row does not grow when it is first received, so the receive updates it in place instead of
# rebalancing B-tree pages (measured: p99 receive latency at a 1,000,000 backlog halved).
UNRECEIVED = -4611686018427387903
# A message row to insert: id, queue_id, visible_at, sent_at, message_id, body, then these optional
# columns (positions 6 to 11), NULL unless the send had them. receipt and first_receive are filled in.
_OPTIONAL_COLUMNS = ("attributes", "md5_attributes", "group_id", "dedup_id", "sender_id", "trace_header")


@functools.cache
def _insert_statement(present: tuple[bool, ...]) -> str:
    """The INSERT naming only the optional columns that have values.

    Binding None costs Python's sqlite3 module an adapter lookup that fails through two attribute
    errors (about 3,000 machine instructions each, measured with callgrind); a plain message has six
    NULL columns, so leaving them to the column default is a tenth of the cost of a send."""
    columns = [c for c, p in zip(_OPTIONAL_COLUMNS, present, strict=True) if p]
    names = ", ".join(["id, queue_id, visible_at, sent_at, message_id, body", *columns, "receipt, first_receive"])
    marks = ",".join("?" * (6 + len(columns)))
    return f"INSERT INTO messages ({names}) VALUES ({marks}, {UNRECEIVED}, ?4)"


@functools.cache
def _insert_rows(present: tuple[bool, ...], count: int) -> str:
    """`_insert_statement(present)` for `count` rows in one statement (parameters row after row)."""
    if count == 1:
        return _insert_statement(present)
    head = _insert_statement(present)
    head = head[: head.index(" VALUES ")]
    width = 6 + sum(present)
    values = ",".join(
        "({}, {UNRECEIVED}, ?{sent})".format(
            ",".join(f"?{width * k + i}" for i in range(1, width + 1)), UNRECEIVED=UNRECEIVED, sent=width * k + 4
        )
        for k in range(count)
    )
    return f"{head} VALUES {values}"


_PLAIN_WIDTH = 6  # parameters of a plain message's row (no optional column)
_ROWS_PER_STATEMENT = 10  # a SendMessageBatch or DeleteMessageBatch at most


@functools.cache
def _insert_plain_rows(count: int) -> str:
    """The INSERT of `count` plain rows in one statement (parameters row after row): one statement step
    instead of `count` (executemany), about 1 us less per message."""
    values = ",".join(
        "({}, {UNRECEIVED}, ?{sent})".format(
            ",".join(f"?{_PLAIN_WIDTH * k + i}" for i in range(1, _PLAIN_WIDTH + 1)),
            UNRECEIVED=UNRECEIVED,
            sent=_PLAIN_WIDTH * k + 4,
        )
        for k in range(count)
    )
    return (
        "INSERT INTO messages (id, queue_id, visible_at, sent_at, message_id, body, receipt, first_receive) "
        f"VALUES {values}"
    )


@functools.cache
def _delete_rows(count: int) -> str:
    """Delete `count` messages of one queue by row id in one statement; `+queue_id` keeps the planner on the
    row ids (without it, it scans the queue's index)."""
    return f"DELETE FROM messages WHERE id IN ({','.join('?' * count)}) AND +queue_id=?"


def _insert_plain(conn: sqlite3.Connection, params: list[Any]) -> None:
    """Insert plain rows given as one flat parameter list, up to _ROWS_PER_STATEMENT rows a statement."""
    width = _PLAIN_WIDTH * _ROWS_PER_STATEMENT
    for start in range(0, len(params), width):
        chunk = params[start : start + width]
        conn.execute(_insert_plain_rows(len(chunk) // _PLAIN_WIDTH), chunk)


def _message_row(
    e: SendEntry,
    row_id: int,
    queue_id: int,
    visible_at: int,
    now: int,
    message_id: str,
    dedup_id: str | None,
    sender: str | None,
) -> tuple[Any, ...]:
    """A message's row: the six plain columns, then the optional ones."""
    return (
        row_id,
        queue_id,
        visible_at,
        now,
        message_id,
        e.body,
        e.attributes_json,
        e.md5_attributes,
        e.group_id,
        dedup_id,
        sender,
        e.trace_header,
    )


def insert_messages(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows laid out as `_message_row` makes them, without binding their NULLs."""
    groups: dict[tuple[bool, ...], list[Any]] = {}
    for row in rows:
        present = tuple(v is not None for v in row[6:])
        flat = groups.get(present)
        if flat is None:
            flat = groups[present] = []
        flat += row[:6]
        flat += [v for v in row[6:] if v is not None]
    for present, flat in groups.items():
        # rows of one kind in statements of up to _ROWS_PER_STATEMENT rows each (one step, not one a row)
        width = 6 + sum(present)
        chunk_size = width * _ROWS_PER_STATEMENT
        for start in range(0, len(flat), chunk_size):
            chunk = flat[start : start + chunk_size]
            conn.execute(_insert_rows(present, len(chunk) // width), chunk)


@dataclass
class QueueMeta:
    """A queue's catalogue row with its attributes parsed for the hot paths."""

    id: int
    name: str
    fifo: bool
    attributes: dict[str, str]
    tags: dict[str, str]
    created: int
    modified: int
    arn: str = ""
    visibility_ms: int = 30_000
    retention_ms: int = 345_600_000
    delay_ms: int = 0
    max_size: int = 1_048_576
    wait_seconds: int = 0
    dlq_name: str | None = None
    max_receive: int = 0
    content_dedup: bool = False
    group_scope: bool = False
    last_sweep: int = field(default=0)

    def refresh(self, account: str, region: str) -> None:
        a = self.attributes
        self.arn = f"arn:aws:sqs:{region}:{account}:{self.name}"
        self.visibility_ms = int(a.get("VisibilityTimeout", "30")) * 1000
        self.retention_ms = int(a.get("MessageRetentionPeriod", "345600")) * 1000
        self.delay_ms = int(a.get("DelaySeconds", "0")) * 1000
        self.max_size = int(a.get("MaximumMessageSize", "1048576"))
        self.wait_seconds = int(a.get("ReceiveMessageWaitTimeSeconds", "0"))
        self.content_dedup = a.get("ContentBasedDeduplication") == "true"
        self.group_scope = a.get("DeduplicationScope") == "messageGroup"
        policy = a.get("RedrivePolicy")
        if policy:
            target, count = validation.parse_redrive_policy(policy)
            self.dlq_name = target.rsplit(":", 1)[1]
            self.max_receive = count
        else:
            self.dlq_name = None
            self.max_receive = 0


@dataclass(slots=True)
class SendEntry:
    """One message to send, validated and prepared on the caller's side."""

    body: str
    delay_seconds: int | None = None
    attributes: Mapping[str, Mapping[str, Any]] | None = None
    attributes_json: str | None = None
    md5_attributes: str | None = None
    size: int = 0
    group_id: str | None = None
    dedup_id: str | None = None
    trace_header: str | None = None
    sender_id: str = ""
    entry_id: str | None = None


@dataclass(slots=True)
class ReceiveRequest:
    max_number: int = 1
    visibility_timeout: int | None = None
    attribute_names: frozenset[str] = frozenset()
    message_attribute_names: tuple[str, ...] = ()
    attempt_id: str | None = None


@dataclass(slots=True)
class ReceiveOutcome:
    messages: list[dict[str, Any]]
    next_visible_ms: int | None  # when something may become deliverable (for long polls)
    dead_lettered_to: str | None = None
    dead_lettered: int = 0  # how many messages moved to the dead-letter queue (metrics)
    over_limit: bool = False  # the queue has `Operations.inflight_limit` messages in flight: nothing taken


def encode_message_attributes(attrs: Mapping[str, Mapping[str, Any]]) -> str:
    """Message attributes as stored: JSON, binary values as base64."""
    out: dict[str, list[str]] = {}
    for name, value in attrs.items():
        data_type = str(value["DataType"])
        if "BinaryValue" in value and data_type.startswith("Binary"):
            raw = value["BinaryValue"]
            out[name] = [data_type, "B", base64.b64encode(bytes(raw)).decode("ascii")]
        else:
            out[name] = [data_type, "S", str(value["StringValue"])]
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


# The JSON scanner itself: what json.loads runs after three Python calls of checks (stored text is ours).
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def decode_message_attributes(text: str) -> dict[str, dict[str, Any]]:
    try:
        stored, end = _scan_json(text, 0)
    except StopIteration:
        stored, end = json.loads(text), len(text)  # (raises as json.loads does)
    if end != len(text):
        stored = json.loads(text)
    return {
        name: {"DataType": data_type, "StringValue": value}
        if kind != "B"
        else {"DataType": data_type, "BinaryValue": base64.b64decode(value)}
        for name, (data_type, kind, value) in stored.items()
    }


def select_message_attributes(attrs: dict[str, dict[str, Any]], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Apply MessageAttributeNames: names, `All`, `.*`, and `prefix.*`."""
    if not names:
        return {}
    if "All" in names or ".*" in names or "*" in names:  # AWS takes a bare `*` as every attribute too
        return attrs
    prefixes = [n[:-2] for n in names if n.endswith(".*")]  # `bar.*`: names starting with `bar` (AWS docs)
    wanted = set(names)
    return {k: v for k, v in attrs.items() if k in wanted or any(k.startswith(p) for p in prefixes)}


class Operations:
    """SQS semantics over the schema; runs only on the store's thread."""

    def __init__(
        self,
        account: str,
        region: str,
        clock_ms: Callable[[], int],
        default_sender: str = "AIDAIT2UOQQY3AUEKVGXU",
        inflight_limit: int = INFLIGHT_LIMIT,
    ) -> None:
        self.account = account
        self.region = region
        self.now_ms = clock_ms
        self.queues: dict[str, QueueMeta] = {}
        self.by_id: dict[int, QueueMeta] = {}
        self._random = random.Random()
        bits = self._random.getrandbits
        self._id_prefix = f"{bits(32):08x}-{bits(16):04x}-4{bits(12):03x}-{0x8000 | bits(14):04x}-"
        self.default_sender = default_sender
        self.last_dedup_sweep = 0
        self.next_id = 1
        self.id_ceiling = 0
        # When a queue name was deleted and a queue purged (ms), for AWS's 60-second rules. In memory:
        # a restart forgets them, which only lets a caller in sooner.
        self.deleted_at: dict[str, int] = {}
        self.purged_at: dict[str, int] = {}
        # In flight per queue: at most `inflight_limit` (SQS's OverLimit on receive), read from the
        # queue's exact depth counts (scte.queue.depth), like ApproximateNumberOfMessages*.
        self.inflight_limit = inflight_limit
        self.depths = Depths()

    # -- catalogue ---------------------------------------------------------------------------------

    def load(self, conn: sqlite3.Connection) -> None:
        """(Re)read the queue catalogue: at start-up and after a failed transaction."""
        queues: dict[str, QueueMeta] = {}
        for qid, name, fifo, attrs, tags, created, modified in conn.execute(
            "SELECT id, name, fifo, attributes, tags, created, modified FROM queues"
        ):
            meta = QueueMeta(qid, name, bool(fifo), json.loads(attrs), json.loads(tags), created, modified)
            meta.refresh(self.account, self.region)
            queues[name] = meta
        self.queues = queues
        self.by_id = {m.id: m for m in queues.values()}
        # Depth counts: a queue without them (at start-up) is counted once from its rows; a rollback has
        # already reverted its changes to them (Depths.undo), and a queue gone from the catalogue loses them.
        depths = self.depths.queues
        now = self.now_ms()
        for qid in self.by_id.keys() - depths.keys():
            depths[qid] = self.depths.count(conn, qid, now)
        for qid in depths.keys() - self.by_id.keys():
            del depths[qid]
        (top,) = conn.execute("SELECT MAX(id) FROM messages").fetchone()
        stored = conn.execute("SELECT value FROM meta WHERE key='id_ceiling'").fetchone()
        start = max(top or 0, int(stored[0]) if stored else 0) + 1
        self.next_id = start
        self.id_ceiling = start - 1

    def allocate_ids(self, conn: sqlite3.Connection, count: int) -> int:
        """Reserve `count` message ids; returns the first. The ceiling is persisted in blocks."""
        first = self.next_id
        self.next_id += count
        if self.next_id - 1 > self.id_ceiling:
            self.id_ceiling = self.next_id - 1 + ID_BLOCK
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('id_ceiling', ?)", (str(self.id_ceiling),))
        return first

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{name}"

    def queue(self, name: str) -> QueueMeta:
        meta = self.queues.get(name)
        if meta is None:
            raise queue_does_not_exist(name)
        return meta

    def name_from_arn(self, arn: str, parameter: str) -> str:
        parts = arn.split(":") if isinstance(arn, str) else []
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
            raise invalid_parameter(f"Value {arn} for parameter {parameter} is invalid. Reason: not a queue ARN.")
        return parts[5]

    def _save(self, conn: sqlite3.Connection, meta: QueueMeta) -> None:
        conn.execute(
            "UPDATE queues SET attributes=?, tags=?, modified=? WHERE id=?",
            (json.dumps(meta.attributes), json.dumps(meta.tags), meta.modified, meta.id),
        )

    def _check_redrive(self, source_name: str, fifo: bool, attributes: Mapping[str, str]) -> None:
        policy = attributes.get("RedrivePolicy")
        if not policy:
            return
        target_arn, _count = validation.parse_redrive_policy(policy)
        target_name = target_arn.rsplit(":", 1)[1]
        target = self.queues.get(target_name)
        if target is None or target_arn != target.arn:
            raise invalid_parameter(
                f"Value {policy} for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist."
            )
        if target.fifo != fifo:
            kind = "FIFO" if fifo else "standard"
            raise invalid_parameter(
                f"Value {policy} for parameter RedrivePolicy is invalid. Reason: "
                f"Dead-letter queue must be same type of queue as the source ({kind})."
            )
        allow = target.attributes.get("RedriveAllowPolicy")
        if allow:
            rule = json.loads(allow)
            permission = rule.get("redrivePermission")
            source_arn = self.arn(source_name)
            if permission == "denyAll" or (
                permission == "byQueue" and source_arn not in rule.get("sourceQueueArns", [])
            ):
                raise invalid_parameter(
                    f"Value {policy} for parameter RedrivePolicy is invalid. Reason: "
                    f"The dead-letter queue's RedriveAllowPolicy does not allow {source_arn} as a source."
                )

    def create_queue(
        self, conn: sqlite3.Connection, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]
    ) -> str:
        full = validation.new_queue_attributes(name, attributes)
        fifo = full.get("FifoQueue") == "true"
        existing = self.queues.get(name)
        if existing is not None:
            # Only the attributes the request names are compared, as AWS does.
            if not validation.attributes_equal_for_create(existing.attributes, attributes):
                differing = sorted(k for k in attributes if existing.attributes.get(k) != full.get(k))
                raise SqsError(
                    "QueueNameExists",
                    "A queue already exists with the same name and a different value for attribute "
                    + ", ".join(differing),
                )
            return name
        deleted = self.deleted_at.get(name)
        if deleted is not None and self.now_ms() - deleted < QUEUE_COOL_DOWN_MS:
            raise SqsError(
                "QueueDeletedRecently",
                "You must wait 60 seconds after deleting a queue before you can create another with the same name.",
            )
        self._check_redrive(name, fifo, full)
        validate_tags(tags, name)
        now_s = self.now_ms() // 1000
        cur = conn.execute(
            "INSERT INTO queues (name, fifo, attributes, tags, created, modified) VALUES (?, ?, ?, ?, ?, ?)",
            (name, int(fifo), json.dumps(full), json.dumps(dict(tags)), now_s, now_s),
        )
        qid = cur.lastrowid
        assert qid is not None
        meta = QueueMeta(qid, name, fifo, full, dict(tags), now_s, now_s)
        meta.refresh(self.account, self.region)
        self.queues[name] = meta
        self.by_id[qid] = meta
        depth = QueueDepth()
        depth.oldest = (self.next_id, 0)  # its messages will have ids from there
        self.depths.replace(qid, depth)
        return name

    def delete_queue(self, conn: sqlite3.Connection, name: str) -> None:
        meta = self.queue(name)
        for table in ("messages", "fifo_groups", "dedup", "receive_attempts"):
            conn.execute(f"DELETE FROM {table} WHERE queue_id=?", (meta.id,))
        conn.execute("DELETE FROM queues WHERE id=?", (meta.id,))
        del self.queues[name]
        del self.by_id[meta.id]
        self.depths.replace(meta.id, None)
        now = self.now_ms()
        self.deleted_at = {n: t for n, t in self.deleted_at.items() if now - t < QUEUE_COOL_DOWN_MS}
        self.deleted_at[name] = now
        self.purged_at.pop(name, None)

    def list_queues(self, prefix: str | None) -> list[str]:
        names = sorted(self.queues)
        if prefix:
            names = [n for n in names if n.startswith(prefix)]
        return names

    def get_queue_attributes(self, conn: sqlite3.Connection, name: str, names: Iterable[str]) -> dict[str, str]:
        meta = self.queue(name)
        wanted = set(names)
        every = "All" in wanted
        out: dict[str, str] = {}

        def want(key: str) -> bool:
            return every or key in wanted

        now = self.now_ms()
        if any(want(k) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed")):
            self.sweep(conn, meta, now)  # do not count messages past their retention period
        visible, in_flight, delayed = self.depth_counts(meta.id, now)  # O(1): no rows counted
        if want("ApproximateNumberOfMessages"):
            out["ApproximateNumberOfMessages"] = str(visible)
        if want("ApproximateNumberOfMessagesNotVisible"):
            out["ApproximateNumberOfMessagesNotVisible"] = str(in_flight)
        if want("ApproximateNumberOfMessagesDelayed"):
            out["ApproximateNumberOfMessagesDelayed"] = str(delayed)
        if want("CreatedTimestamp"):
            out["CreatedTimestamp"] = str(meta.created)
        if want("LastModifiedTimestamp"):
            out["LastModifiedTimestamp"] = str(meta.modified)
        if want("QueueArn"):
            out["QueueArn"] = meta.arn
        for key, value in meta.attributes.items():
            if want(key):
                out[key] = value
        return out

    def depth_counts(self, queue_id: int, now: int) -> tuple[int, int, int]:
        """A queue's messages (visible, in flight, delayed) at `now`, from its counts: O(1)."""
        depth = self.depths.queues[queue_id]
        self.depths.expire(depth, now)
        return depth.counts()

    def oldest_sent(self, conn: sqlite3.Connection, queue_id: int, window: int = 20_000) -> tuple[int | None, bool]:
        """When the queue's oldest message was sent (ms; None when it has none), and whether that is
        known yet (False: call again, the search goes on from where it stopped).

        The oldest message is the one with the lowest row id (ids are given in sending order; a moved
        message gets a new id). It is remembered; while it is still there it is the answer (one row
        looked up). When it is gone, the next one is looked for by row id from there, `window` ids at a
        time, so no call holds the broker's loop for long whatever lies between."""
        depth = self.depths.queues[queue_id]
        if depth.total <= 0:
            depth.oldest = None
            return None, True
        known = depth.oldest
        start = 0
        if known is not None:
            row = conn.execute(
                "SELECT sent_at FROM messages WHERE id=? AND queue_id=?", (known[0], queue_id)
            ).fetchone()
            if row is not None:
                return int(row[0]), True
            start = known[0]
        row = conn.execute(
            "SELECT id, sent_at FROM messages WHERE id>=? AND id<? AND +queue_id=? ORDER BY id LIMIT 1",
            (start, start + window, queue_id),
        ).fetchone()
        if row is not None:
            depth.oldest = (int(row[0]), int(row[1]))
            return int(row[1]), True
        if start + window >= self.next_id:
            depth.oldest = None  # (none found below the next id: the counts will tell again)
            return None, True
        depth.oldest = (start + window, 0)  # go on from there next time
        return None, False

    def set_queue_attributes(self, conn: sqlite3.Connection, name: str, changes: Mapping[str, str]) -> None:
        meta = self.queue(name)
        full = validation.changed_queue_attributes(meta.attributes, meta.fifo, changes)
        if any(key.strip() == "RedrivePolicy" for key in changes):  # names may come padded
            self._check_redrive(name, meta.fifo, full)
        meta.attributes = full
        meta.modified = self.now_ms() // 1000
        meta.refresh(self.account, self.region)
        self._save(conn, meta)

    def set_tags(self, conn: sqlite3.Connection, name: str, tags: Mapping[str, str], remove: Sequence[str]) -> None:
        meta = self.queue(name)
        merged = dict(meta.tags)
        merged.update(tags)
        for key in remove:
            merged.pop(key, None)
        validate_tags(merged, name)
        meta.tags = merged
        self._save(conn, meta)

    def set_policy(self, conn: sqlite3.Connection, name: str, policy: str | None) -> None:
        meta = self.queue(name)
        if policy:
            meta.attributes["Policy"] = policy
        else:
            meta.attributes.pop("Policy", None)
        meta.modified = self.now_ms() // 1000
        self._save(conn, meta)

    def purge_queue(self, conn: sqlite3.Connection, name: str) -> None:
        meta = self.queue(name)
        now = self.now_ms()
        purged = self.purged_at.get(name)
        if purged is not None and now - purged < QUEUE_COOL_DOWN_MS:
            raise SqsError(
                "PurgeQueueInProgress", f"Only one PurgeQueue operation on {name} is allowed every 60 seconds."
            )
        self.purged_at[name] = now
        conn.execute("DELETE FROM messages WHERE queue_id=?", (meta.id,))
        conn.execute("DELETE FROM fifo_groups WHERE queue_id=?", (meta.id,))
        # AWS: after a purge, a message may be sent again with a deduplication id used before it.
        conn.execute("DELETE FROM dedup WHERE queue_id=?", (meta.id,))
        conn.execute("DELETE FROM receive_attempts WHERE queue_id=?", (meta.id,))
        depth = QueueDepth()  # empty now
        depth.oldest = (self.next_id, 0)  # later messages have ids from there
        self.depths.replace(meta.id, depth)

    def dead_letter_sources(self, name: str) -> list[str]:
        meta = self.queue(name)
        return sorted(m.name for m in self.queues.values() if m.dlq_name == meta.name)

    # -- housekeeping ----------------------------------------------------------------------------

    def sweep(self, conn: sqlite3.Connection, meta: QueueMeta, now: int) -> None:
        """Drop messages past retention and old deduplication records; at most once a second a queue.

        There is no index on sent_at (it would cost a quarter of the send throughput). A message is
        never visible before it is sent, so every message visible since before the cutoff is
        expired, and the ready index finds those. An expired message that was received or delayed
        more recently is caught when a receive comes to it.
        """
        if now - meta.last_sweep < 1000:
            return
        meta.last_sweep = now
        cutoff = now - meta.retention_ms
        if meta.fifo:
            groups = [
                g
                for (g,) in conn.execute(
                    "SELECT DISTINCT group_id FROM messages WHERE queue_id=? AND visible_at<=?",
                    (meta.id, cutoff),
                )
            ]
            removed = conn.execute("DELETE FROM messages WHERE queue_id=? AND visible_at<=?", (meta.id, cutoff))
            for group in groups:
                self._refresh_group(conn, meta, group, now)
        else:
            removed = conn.execute("DELETE FROM messages WHERE queue_id=? AND visible_at<=?", (meta.id, cutoff))
        depth = self.depths.queues[meta.id]
        if removed.rowcount > 0:
            self.depths.add(depth, -removed.rowcount)  # (visible ones: none hidden)
        self.depths.compact_rows(depth, now)
        if now - self.last_dedup_sweep >= 1000:
            self.last_dedup_sweep = now
            conn.execute("DELETE FROM dedup WHERE expires_at<=?", (now,))
            conn.execute("DELETE FROM receive_attempts WHERE expires_at<=?", (now,))

    # -- sending -----------------------------------------------------------------------------------

    def send(
        self, conn: sqlite3.Connection, name: str, entries: Sequence[SendEntry], *, with_ids: bool = False
    ) -> list[dict[str, Any] | SqsError]:
        """Send each entry; an entry that fails is answered with its error and the others go on.

        With `with_ids`, each result starts with the entry's `Id` (a SendMessageBatch result entry)."""
        meta = self.queue(name)
        now = self.now_ms()
        if meta.fifo:
            out: list[dict[str, Any] | SqsError] = []
            for entry in entries:
                try:
                    result = self._send_one(conn, meta, entry, now)
                    out.append({"Id": entry.entry_id, **result} if with_ids else result)
                except SqsError as exc:
                    out.append(exc)
            return out
        # Standard queues need no row id back: one executemany for the whole batch.
        results: list[dict[str, Any] | SqsError] = []
        rows: list[tuple[Any, ...]] = []
        plain: list[Any] = []  # the rows (flat) of messages with none of the optional columns: the usual send
        row_id = self.allocate_ids(conn, len(entries)) - 1  # incremented before each use
        prefix = self._id_prefix
        default_sender = self.default_sender
        for e in entries:
            if e.size > meta.max_size:
                results.append(self._too_long(meta))
                continue
            row_id += 1
            message_id = _MESSAGE_ID_FORMAT % (prefix, row_id)
            delay_ms = meta.delay_ms if e.delay_seconds is None else e.delay_seconds * 1000
            sender = None if e.sender_id == default_sender else e.sender_id  # the usual sender costs no bytes
            if (
                e.attributes_json is None
                and e.group_id is None
                and e.dedup_id is None
                and sender is None
                and e.trace_header is None
            ):
                plain += (row_id, meta.id, now + delay_ms, now, message_id, e.body)
                digest = md5_of_body(e.body)
                results.append(
                    {"Id": e.entry_id, "MessageId": message_id, "MD5OfMessageBody": digest}
                    if with_ids
                    else {"MessageId": message_id, "MD5OfMessageBody": digest}
                )
                continue
            rows.append(_message_row(e, row_id, meta.id, now + delay_ms, now, message_id, e.dedup_id, sender))
            result = self._send_result(e, message_id, None)
            results.append({"Id": e.entry_id, **result} if with_ids else result)
        _insert_plain(conn, plain)
        if rows:
            insert_messages(conn, rows)
        sent = len(plain) // _PLAIN_WIDTH + len(rows)
        if sent:
            depth = self.depths.queues[meta.id]
            self.depths.add(depth, sent)
            if meta.delay_ms or any(e.delay_seconds for e in entries):
                for visible_at in (*plain[2::_PLAIN_WIDTH], *(row[2] for row in rows)):
                    self.depths.hide(depth, DELAYED, visible_at, 1, now)
        return results

    def send_plain(
        self, conn: sqlite3.Connection, name: str, ids: Sequence[str], bodies: Sequence[str]
    ) -> list[dict[str, Any] | SqsError]:
        """`send` of a SendMessageBatch whose entries are only an Id and a valid ASCII body each: the results
        as `send(..., with_ids=True)` gives them, without a SendEntry per message."""
        meta = self.queue(name)
        if meta.fifo or max(map(len, bodies)) > meta.max_size:  # the general path answers these
            sender = self.default_sender
            entries = [
                SendEntry(b, size=len(b), sender_id=sender, entry_id=i) for i, b in zip(ids, bodies, strict=True)
            ]
            return self.send(conn, name, entries, with_ids=True)
        now = self.now_ms()
        row_id = self.allocate_ids(conn, len(bodies)) - 1  # incremented before each use
        prefix = self._id_prefix
        queue_id = meta.id
        visible_at = now + meta.delay_ms
        results: list[dict[str, Any] | SqsError] = []
        params: list[Any] = []
        for entry_id, body in zip(ids, bodies, strict=True):
            row_id += 1
            message_id = _MESSAGE_ID_FORMAT % (prefix, row_id)
            params += (row_id, queue_id, visible_at, now, message_id, body)
            results.append({"Id": entry_id, "MessageId": message_id, "MD5OfMessageBody": md5_of_body(body)})
        _insert_plain(conn, params)
        depth = self.depths.queues[queue_id]
        self.depths.add(depth, len(results))
        if visible_at > now:
            self.depths.hide(depth, DELAYED, visible_at, len(results), now)
        return results

    def deliver(self, conn: sqlite3.Connection, name: str, entries: Sequence[SendEntry]) -> SqsError | None:
        """Insert SNS deliveries into a standard queue, all or none: None, or the error of the first entry
        `send` would refuse (nothing is written then). No results: SNS does not return them."""
        meta = self.queue(name)
        if meta.fifo:
            raise ValueError("deliver() is for standard queues")
        for e in entries:
            if e.size > meta.max_size:
                return self._too_long(meta)
        now = self.now_ms()
        row_id = self.allocate_ids(conn, len(entries)) - 1  # incremented before each use
        prefix = self._id_prefix
        default_sender = self.default_sender
        queue_id = meta.id
        rows: list[tuple[Any, ...]] = []
        for e in entries:
            row_id += 1
            visible_at = now + (meta.delay_ms if e.delay_seconds is None else e.delay_seconds * 1000)
            sender = None if e.sender_id == default_sender else e.sender_id
            message_id = _MESSAGE_ID_FORMAT % (prefix, row_id)
            rows.append(_message_row(e, row_id, queue_id, visible_at, now, message_id, e.dedup_id, sender))
        insert_messages(conn, rows)
        depth = self.depths.queues[queue_id]
        self.depths.add(depth, len(rows))
        for row in rows:
            self.depths.hide(depth, DELAYED, row[2], 1, now)  # (nothing unless delayed)
        return None

    @staticmethod
    def _too_long(meta: QueueMeta) -> SqsError:
        return invalid_parameter(
            f"One or more parameters are invalid. Reason: Message must be shorter than {meta.max_size} bytes."
        )

    def _message_id(self, row_id: int) -> str:
        """A UUID-shaped MessageId: this process's random prefix and the row id, which never repeats."""
        return _MESSAGE_ID_FORMAT % (self._id_prefix, row_id)

    def _send_one(self, conn: sqlite3.Connection, meta: QueueMeta, e: SendEntry, now: int) -> dict[str, Any]:
        if e.size > meta.max_size:
            raise self._too_long(meta)
        if meta.fifo:
            if e.delay_seconds is not None and e.delay_seconds != 0:
                raise invalid_parameter(
                    f"Value {e.delay_seconds} for parameter DelaySeconds is invalid. Reason: "
                    "The request include parameter that is not valid for this queue type."
                )
            if not e.group_id:
                raise SqsError("MissingParameter", "The request must contain the parameter MessageGroupId.")
            dedup_id = e.dedup_id
            if dedup_id is None:
                if not meta.content_dedup:
                    raise invalid_parameter(
                        "The queue should either have ContentBasedDeduplication enabled or "
                        "MessageDeduplicationId provided explicitly"
                    )
                dedup_id = validation.content_dedup_id(e.body)
            scope = e.group_id if meta.group_scope else ""
            seen = conn.execute(
                "SELECT message_id, sequence FROM dedup WHERE queue_id=? AND scope=? AND dedup_id=? AND expires_at>?",
                (meta.id, scope, dedup_id, now),
            ).fetchone()
            if seen is not None:
                return self._send_result(e, seen[0], seen[1])
        else:
            dedup_id = e.dedup_id
        # FIFO queues have no per-message delay: the queue's applies even to an explicit DelaySeconds=0.
        delay_ms = meta.delay_ms if e.delay_seconds is None or meta.fifo else e.delay_seconds * 1000
        visible_at = now + delay_ms
        row_id = self.allocate_ids(conn, 1)
        message_id = self._message_id(row_id)
        sender = None if e.sender_id == self.default_sender else e.sender_id
        insert_messages(conn, (_message_row(e, row_id, meta.id, visible_at, now, message_id, dedup_id, sender),))
        depth = self.depths.queues[meta.id]
        self.depths.add(depth, 1)
        self.depths.hide(depth, DELAYED, visible_at, 1, now)  # (nothing unless delayed)
        if meta.fifo:
            assert dedup_id is not None and e.group_id is not None
            conn.execute(
                "INSERT OR REPLACE INTO dedup (queue_id, scope, dedup_id, expires_at, message_id, sequence) "
                "VALUES (?,?,?,?,?,?)",
                (
                    meta.id,
                    e.group_id if meta.group_scope else "",
                    dedup_id,
                    now + MINUTES_5_MS,
                    message_id,
                    row_id,
                ),
            )
            conn.execute(
                "INSERT OR IGNORE INTO fifo_groups (queue_id, group_id, next_at) VALUES (?,?,?)",
                (meta.id, e.group_id, visible_at),
            )
            return self._send_result(e, message_id, row_id)
        return self._send_result(e, message_id, None)

    @staticmethod
    def _send_result(e: SendEntry, message_id: str, sequence: int | None) -> dict[str, Any]:
        result: dict[str, Any] = {"MessageId": message_id, "MD5OfMessageBody": md5_of_body(e.body)}
        if e.md5_attributes:
            result["MD5OfMessageAttributes"] = e.md5_attributes
        if e.trace_header is not None:
            result["MD5OfMessageSystemAttributes"] = md5_of_message_attributes(
                {"AWSTraceHeader": {"DataType": "String", "StringValue": e.trace_header}}
            )
        if sequence is not None:
            result["SequenceNumber"] = sequence_number(sequence)
        return result

    # -- receiving ---------------------------------------------------------------------------------

    def receive(self, conn: sqlite3.Connection, name: str, req: ReceiveRequest) -> ReceiveOutcome:
        meta = self.queue(name)
        now = self.now_ms()
        self.sweep(conn, meta, now)
        vt_ms = meta.visibility_ms if req.visibility_timeout is None else req.visibility_timeout * 1000
        if meta.fifo and req.attempt_id:
            repeated = self._repeat_attempt(conn, meta, req, now)
            if repeated is not None:
                return ReceiveOutcome(repeated, None)
        depths = self.depths
        depth = depths.queues[meta.id]
        if depth.heap and depth.heap[0][0] <= now:
            depths.expire(depth, now)  # timeouts and delays that ran out: visible again
        wanted = req.max_number
        room = self.inflight_limit - depth.hidden[INFLIGHT]
        if room < wanted:  # near SQS's in-flight limit: take what fits, or answer OverLimit
            wanted = max(0, room)
            if not wanted:
                return ReceiveOutcome([], None, over_limit=True)
        dead: list[tuple[int, str | None]] = []
        delivered: list[dict[str, Any]] = []
        handles: list[list[int]] = []
        if meta.fifo:
            rows = self._pick_fifo(conn, meta, wanted, now, vt_ms, dead)
            updates: list[tuple[int, int, int, int]] = []
            rand = self._random.getrandbits
            for row in rows:
                nonce = receipt_nonce(now, rand(30))
                updates.append((now + vt_ms, now, nonce, row[C_ID]))
                handles.append([row[C_ID], nonce])
                delivered.append(self._format(meta, row, nonce, now, req))
            if updates:
                conn.executemany(
                    "UPDATE messages SET visible_at=?, receive_count=receive_count+1, "
                    "first_receive=CASE WHEN receipt > 0 THEN first_receive ELSE ? END, receipt=? WHERE id=?",
                    updates,
                )
        else:
            bare = not req.attribute_names and not req.message_attribute_names
            rows = self._take_standard(conn, meta, depth, wanted, now, vt_ms, dead, bare)
            if bare:  # what _format makes of a bare row, without a call per message
                queue_id = meta.id
                delivered = [
                    {
                        "MessageId": row[C_MESSAGE_ID],
                        "ReceiptHandle": _HANDLE_FORMAT % (queue_id, row[C_ID], row[C_RECEIPT]),
                        "MD5OfBody": md5_of_body(row[C_BODY]),
                        "Body": row[C_BODY],
                    }
                    for row in rows
                ]
            else:
                for row in rows:
                    delivered.append(self._format(meta, row, row[C_RECEIPT], now, req, counted=True))
        if meta.fifo and req.attempt_id and delivered:
            conn.execute(
                "INSERT OR REPLACE INTO receive_attempts (queue_id, attempt_id, expires_at, handles) VALUES (?,?,?,?)",
                (meta.id, req.attempt_id, now + MINUTES_5_MS, json.dumps(handles)),
            )
        if delivered:
            depths.received(depth, [row[C_ID] for row in rows], now + vt_ms, now)
        dead_to = self._dead_letter(conn, meta, dead, now) if dead else None
        next_visible = None
        if not delivered:
            next_visible = self._next_visible(conn, meta, now)
        return ReceiveOutcome(delivered, next_visible, dead_to, len(dead) if dead_to else 0)

    def _take_standard(
        self,
        conn: sqlite3.Connection,
        meta: QueueMeta,
        depth: QueueDepth,
        wanted: int,
        now: int,
        vt_ms: int,
        dead: list[tuple[int, str | None]],
        bare: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Reserve up to `wanted` visible messages in one statement; rows come back as updated.

        Messages whose visibility timeout ran out come first (AWS returns them before newer ones in the
        common case): the queue's depth counts remember when timeouts ended with messages still held
        (`QueueDepth.redeliver`), and the messages still at that `visible_at` are exactly those. Then the
        queue's order (`visible_at`). A message past retention, or due for the dead-letter queue, is rare:
        it is taken like the others, then deleted or moved in the same transaction, and the receive takes
        more. `bare`: the rows end with the body (`_TAKE_STANDARD_BARE`), for a receive asking for no attributes.
        """
        statement = _TAKE_STANDARD_BARE if bare else _TAKE_STANDARD
        taken: list[tuple[Any, ...]] = []
        expired_before = now - meta.retention_ms
        redeliver = depth.redeliver
        in_order = False  # the queue's order reached (after the times to redeliver)
        rounds = 0
        for rounds in range(20 + len(redeliver)):  # noqa: B007 - read after the loop  # bounded: each round removes what it skips, or a time
            need = wanted - len(taken)
            if redeliver:
                at = redeliver[0]
                rows = conn.execute(
                    _TAKE_AT_BARE if bare else _TAKE_AT, (now + vt_ms, now, _receipt_seconds(now), meta.id, at, need)
                ).fetchall()
                if len(rows) < need:
                    del redeliver[0]  # every message of that time taken (or gone)
            else:
                in_order = True
                rows = conn.execute(statement, (now + vt_ms, now, _receipt_seconds(now), meta.id, now, need)).fetchall()
            skipped = False
            for row in rows:
                if row[C_SENT] <= expired_before:
                    conn.execute("DELETE FROM messages WHERE id=?", (row[C_ID],))
                    self.depths.add(depth, -1)
                    skipped = True
                elif meta.dlq_name is not None and row[C_COUNT] > meta.max_receive:
                    # Received maxReceiveCount times already: this receive does not count, it moves it.
                    conn.execute("UPDATE messages SET receive_count=receive_count-1 WHERE id=?", (row[C_ID],))
                    dead.append((row[C_ID], None))
                    skipped = True
                else:
                    taken.append(row)
            if len(taken) >= wanted:
                break
            if in_order and (not skipped or not rows):
                break
        if rounds and vt_ms <= 0:  # a 0 s timeout leaves taken rows visible: a later round may take them again
            taken = list({row[C_ID]: row for row in taken}.values())
        taken.sort(key=_BY_ID)  # RETURNING has no order; oldest first is what callers expect
        return taken

    def _pick_fifo(
        self,
        conn: sqlite3.Connection,
        meta: QueueMeta,
        wanted: int,
        now: int,
        vt_ms: int,
        dead: list[tuple[int, str | None]],
    ) -> list[tuple[Any, ...]]:
        picked: list[tuple[Any, ...]] = []
        expired_before = now - meta.retention_ms
        seen: set[str] = set()
        for _ in range(10):
            groups = [
                g
                for (g,) in conn.execute(
                    "SELECT group_id FROM fifo_groups WHERE queue_id=? AND next_at<=? ORDER BY next_at LIMIT 16",
                    (meta.id, now),
                )
                if g not in seen
            ]
            if not groups:
                break
            for group in groups:
                seen.add(group)
                rows = conn.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE queue_id=? AND group_id=? ORDER BY id LIMIT ?",
                    (meta.id, group, wanted - len(picked) + 10),
                ).fetchall()
                if rows and rows[0][C_VISIBLE] > now:
                    # The head is in flight (or delayed): the group waits for it, as AWS's does. Messages
                    # ahead of every in-flight one of their group are deliverable (one made visible again
                    # by ChangeMessageVisibility 0 while those after it are still held, say).
                    self._set_group(conn, meta, group, rows[0][C_VISIBLE])
                    continue
                take: list[tuple[Any, ...]] = []
                for row in rows:
                    if row[C_VISIBLE] > now:
                        break  # behind a message in flight: not before it is deleted or visible again
                    if row[C_SENT] <= expired_before:
                        conn.execute("DELETE FROM messages WHERE id=?", (row[C_ID],))
                        self.depths.add(self.depths.queues[meta.id], -1)
                        continue
                    if meta.dlq_name is not None and row[C_COUNT] >= meta.max_receive:
                        dead.append((row[C_ID], group))
                        conn.execute(
                            "UPDATE messages SET visible_at=? WHERE id=?",
                            (now + 1_000_000_000_000, row[C_ID]),
                        )
                        continue
                    take.append(row)
                    if len(picked) + len(take) >= wanted:
                        break
                if take:
                    picked.extend(take)
                    self._set_group(conn, meta, group, now + vt_ms)
                elif not dead or dead[-1][1] != group:
                    self._refresh_group(conn, meta, group, now)
                if len(picked) >= wanted:
                    return picked
        return picked

    def _set_group(self, conn: sqlite3.Connection, meta: QueueMeta, group: str, next_at: int) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO fifo_groups (queue_id, group_id, next_at) VALUES (?,?,?)",
            (meta.id, group, next_at),
        )

    def _refresh_group(self, conn: sqlite3.Connection, meta: QueueMeta, group: str, now: int) -> None:
        """Recompute when a FIFO group may deliver next, or forget it when it is empty."""
        # The group's head (its oldest message) decides: deliverable once it is visible, whatever comes after.
        row = conn.execute(
            "SELECT visible_at FROM messages WHERE queue_id=? AND group_id=? ORDER BY id LIMIT 1",
            (meta.id, group),
        ).fetchone()
        if row is None:
            conn.execute("DELETE FROM fifo_groups WHERE queue_id=? AND group_id=?", (meta.id, group))
            return
        self._set_group(conn, meta, group, row[0])

    def _next_visible(self, conn: sqlite3.Connection, meta: QueueMeta, now: int) -> int | None:
        if meta.fifo:
            row = conn.execute(
                "SELECT MIN(next_at) FROM fifo_groups WHERE queue_id=? AND next_at>?", (meta.id, now)
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT MIN(visible_at) FROM messages WHERE queue_id=? AND visible_at>?", (meta.id, now)
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def _dead_letter(
        self, conn: sqlite3.Connection, meta: QueueMeta, dead: list[tuple[int, str | None]], now: int
    ) -> str | None:
        """Move messages that reached maxReceiveCount to the dead-letter queue, in place."""
        target = self.queues.get(meta.dlq_name or "")
        if target is None:
            # The DLQ was deleted after the policy was set: AWS keeps the messages in the source.
            conn.executemany("UPDATE messages SET visible_at=? WHERE id=?", [(now, i) for i, _ in dead])
            return None
        moved = list(dict.fromkeys(row_id for row_id, _group in dead))  # (a 0 s timeout may show one twice)
        source_depth = self.depths.queues[meta.id]
        self.depths.add(source_depth, -len(moved))  # (visible ones, for the counts)
        for row_id in moved:
            self.depths.forget_row(source_depth, row_id, None)
        target_depth = self.depths.queues[target.id]
        self.depths.add(target_depth, len(moved))
        if target.fifo:
            self.depths.hide(target_depth, DELAYED, now + target.delay_ms, len(moved), now)
        if target_depth.oldest is None or min(moved) < target_depth.oldest[0]:
            target_depth.oldest = (min(moved), 0)  # they keep their ids: maybe older than the target's oldest
        sent_at_sql = "?" if target.fifo else "sent_at"  # FIFO DLQs reset the retention clock
        # AWS: in a FIFO DLQ the message's deduplication id is replaced by its MessageId.
        dedup_sql = ", dedup_id=message_id" if target.fifo else ""
        conn.executemany(
            f"UPDATE messages SET queue_id=?, visible_at=?, sent_at={sent_at_sql}{dedup_sql}, "
            f"receipt={UNRECEIVED}, dlq_source=? WHERE id=?",
            [
                (target.id, now + target.delay_ms, now, meta.arn, i) if target.fifo else (target.id, now, meta.arn, i)
                for i, _ in dead
            ],
        )
        if target.fifo:
            for row_id, _group in dead:
                (group,) = conn.execute("SELECT group_id FROM messages WHERE id=?", (row_id,)).fetchone()
                conn.execute(
                    "INSERT OR IGNORE INTO fifo_groups (queue_id, group_id, next_at) VALUES (?,?,?)",
                    (target.id, group, now + target.delay_ms),
                )
        for group in {g for _i, g in dead if g is not None}:
            self._refresh_group(conn, meta, group, now)
        return target.name

    def _repeat_attempt(
        self, conn: sqlite3.Connection, meta: QueueMeta, req: ReceiveRequest, now: int
    ) -> list[dict[str, Any]] | None:
        row = conn.execute(
            "SELECT handles FROM receive_attempts WHERE queue_id=? AND attempt_id=? AND expires_at>?",
            (meta.id, req.attempt_id, now),
        ).fetchone()
        if row is None:
            return None
        out: list[dict[str, Any]] = []
        for row_id, nonce in json.loads(row[0]):
            msg = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id=?", (row_id,)).fetchone()
            if msg is None or msg[C_RECEIPT] != nonce or msg[C_VISIBLE] <= now:
                return None  # deleted, changed or released since: the attempt starts afresh
            out.append(self._format(meta, msg, nonce, now, req, counted=True))
        return out

    def _format(
        self,
        meta: QueueMeta,
        row: tuple[Any, ...],
        nonce: int,
        now: int,
        req: ReceiveRequest,
        counted: bool = False,
    ) -> dict[str, Any]:
        body = row[C_BODY]
        msg: dict[str, Any] = {
            "MessageId": row[C_MESSAGE_ID],
            # receipts.encode, inlined (hot); %-formatting of ints costs 0.3 us here, an f-string's format specs 0.7
            "ReceiptHandle": _HANDLE_FORMAT % (meta.id, row[C_ID], nonce),
            "MD5OfBody": md5_of_body(body),
            "Body": body,
        }
        names = req.attribute_names
        if names:
            every = "All" in names
            attrs: dict[str, str] = {}
            if every or "SenderId" in names:
                attrs["SenderId"] = row[C_SENDER] or self.default_sender
            if every or "SentTimestamp" in names:
                attrs["SentTimestamp"] = str(row[C_SENT])
            if every or "ApproximateReceiveCount" in names:
                attrs["ApproximateReceiveCount"] = str(row[C_COUNT] + (0 if counted else 1))
            if every or "ApproximateFirstReceiveTimestamp" in names:
                attrs["ApproximateFirstReceiveTimestamp"] = str(row[C_FIRST] if row[C_RECEIPT] > 0 else now)
            if row[C_TRACE] is not None and (every or "AWSTraceHeader" in names):
                attrs["AWSTraceHeader"] = row[C_TRACE]
            if row[C_DLQ_SOURCE] is not None and (every or "DeadLetterQueueSourceArn" in names):
                attrs["DeadLetterQueueSourceArn"] = row[C_DLQ_SOURCE]
            if row[C_GROUP] is not None and (every or "MessageGroupId" in names):
                attrs["MessageGroupId"] = row[C_GROUP]
            if row[C_DEDUP] is not None and (every or "MessageDeduplicationId" in names):
                attrs["MessageDeduplicationId"] = row[C_DEDUP]  # standard queues too, when one was sent
            if meta.fifo and (every or "SequenceNumber" in names):
                attrs["SequenceNumber"] = sequence_number(row[C_ID])
            if attrs:
                msg["Attributes"] = attrs
        if req.message_attribute_names and row[C_ATTRS] is not None:  # (bare rows end with the body)
            stored = decode_message_attributes(row[C_ATTRS])
            selected = select_message_attributes(stored, req.message_attribute_names)
            if selected:
                # The checksum covers what is returned: the stored one when everything is.
                msg["MD5OfMessageAttributes"] = (
                    row[C_MD5_ATTRS] if len(selected) == len(stored) else md5_of_message_attributes(selected)
                )
                msg["MessageAttributes"] = selected
        return msg

    # -- acknowledging -----------------------------------------------------------------------------

    def _locate(self, meta: QueueMeta, handle: str) -> tuple[int, int]:
        queue_id, row_id, nonce = receipts.decode(handle)
        if queue_id != meta.id:
            raise receipts.invalid(handle)
        return row_id, nonce

    @staticmethod
    def _expired(handle: str) -> SqsError:
        return invalid_parameter(
            f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
        )

    def delete(self, conn: sqlite3.Connection, name: str, handles: Sequence[str]) -> list[SqsError | None]:
        """Delete by receipt handle, as AWS does.

        Standard queues: any handle the message was received with deletes it, even one outdated by a
        later receive (AWS accepts it; consumers of standard queues must be idempotent anyway).
        FIFO queues: only the latest handle acts; an outdated one is refused ("has expired"), so a
        consumer whose reservation lapsed cannot delete a message another consumer now holds.
        Deleting a message that is already gone succeeds.
        """
        meta = self.queue(name)
        out: list[SqsError | None] = []
        now = self.now_ms()
        doomed: list[int] = []
        for handle in handles:
            try:
                row_id, nonce = self._locate(meta, handle)
            except SqsError as exc:
                out.append(exc)
                continue
            if meta.fifo:
                row = conn.execute(
                    "SELECT receipt, group_id, visible_at FROM messages WHERE id=? AND queue_id=?", (row_id, meta.id)
                ).fetchone()
                # AWS: only the latest handle acts, and only while its reservation lasts (once the
                # visibility timeout is over the message is the group's again, even if nobody took it).
                if row is not None and (row[0] != nonce or row[2] <= now):
                    out.append(self._expired(handle))
                    continue
                if row is not None:
                    conn.execute("DELETE FROM messages WHERE id=?", (row_id,))
                    depth = self.depths.queues[meta.id]
                    self.depths.add(depth, -1)
                    self.depths.show(depth, row[2], now)
                    self.depths.forget_row(depth, row_id, None)
                    self._refresh_group(conn, meta, row[1], now)
            else:
                doomed.append(row_id)
            out.append(None)
        if doomed:
            gone = 0
            for start in range(0, len(doomed), _ROWS_PER_STATEMENT):
                chunk = doomed[start : start + _ROWS_PER_STATEMENT]
                gone += conn.execute(_delete_rows(len(chunk)), (*chunk, meta.id)).rowcount
            # Whether each was in flight, and until when, the depth counts know (not the row: RETURNING
            # would double the cost of a delete).
            self.depths.deleted(self.depths.queues[meta.id], doomed, gone, now)
        return out

    def change_visibility(
        self, conn: sqlite3.Connection, name: str, changes: Sequence[tuple[str, int]]
    ) -> list[SqsError | None]:
        """ChangeMessageVisibility of a message in flight; handles act as for delete."""
        meta = self.queue(name)
        now = self.now_ms()
        out: list[SqsError | None] = []
        for handle, timeout in changes:
            try:
                row_id, nonce = self._locate(meta, handle)
                row = conn.execute(
                    "SELECT receipt, visible_at, group_id FROM messages WHERE id=? AND queue_id=?",
                    (row_id, meta.id),
                ).fetchone()
                if row is None:
                    raise invalid_parameter(
                        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist "
                        "or is not available for visibility timeout change."
                    )
                if meta.fifo and row[0] != nonce:
                    raise self._expired(handle)
                if row[1] <= now and row[0] != nonce:
                    # Visible again and received since (or never with this handle): AWS's answer. With the
                    # latest handle of a message nobody received again, AWS sets the timeout (200).
                    raise SqsError("MessageNotInflight", "The message referred to isn't in flight.")
                received = received_by_ms(row[0])
                # A time outside what the reservation allows (after now, or more than 12 hours before its
                # end) is a random nonce from before times were put in: no cap for that reservation.
                if (
                    received is not None
                    and row[1] - VISIBILITY_CAP_MS - 1000 <= received <= now + 999
                    and now + timeout * 1000 - received > VISIBILITY_CAP_MS
                ):
                    raise invalid_parameter(
                        f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total"
                        f" VisibilityTimeout for the message is beyond the limit [{VISIBILITY_CAP_MS // 1000} seconds]"
                    )
                conn.execute("UPDATE messages SET visible_at=? WHERE id=?", (now + timeout * 1000, row_id))
                depth = self.depths.queues[meta.id]
                self.depths.show(depth, row[1], now)
                self.depths.hide(depth, INFLIGHT, now + timeout * 1000, 1, now)
                self.depths.forget_row(depth, row_id, now + timeout * 1000 if timeout > 0 else None)
                if meta.fifo and row[2] is not None:
                    self._refresh_group(conn, meta, row[2], now)
                out.append(None)
            except SqsError as exc:
                out.append(exc)
        return out

    # -- message move tasks ------------------------------------------------------------------------

    def move_batch(
        self, conn: sqlite3.Connection, source: str, destination: str | None, limit: int
    ) -> tuple[int, set[str]]:
        """Move up to `limit` deliverable messages out of a dead-letter queue; (moved, queues that got some)."""
        meta = self.queue(source)
        now = self.now_ms()
        rows = conn.execute(
            "SELECT id, dlq_source, group_id FROM messages WHERE queue_id=? AND visible_at<=? "
            "ORDER BY visible_at, id LIMIT ?",
            (meta.id, now, limit),
        ).fetchall()
        moved = 0
        touched: set[str] = set()
        for row_id, dlq_source, group in rows:
            target_name = destination
            if target_name is None:
                if not dlq_source:
                    raise SqsError(
                        "InvalidParameterValue",
                        "A message in the dead-letter queue has no source queue to return to; give a DestinationArn.",
                    )
                target_name = dlq_source.rsplit(":", 1)[1]
            target = self.queues.get(target_name)
            if target is None:
                raise SqsError("ResourceNotFoundException", f"The destination queue {target_name} does not exist.")
            new_id = self.allocate_ids(conn, 1)
            # AWS: a redriven message is a new message (new MessageId, retention from now) and queues
            # behind what the destination already holds (a new id: SequenceNumber and FIFO order).
            conn.execute(
                f"UPDATE messages SET id=?, queue_id=?, visible_at=?, sent_at=?, message_id=?, receipt={UNRECEIVED}, "
                "receive_count=0, first_receive=sent_at, dlq_source=NULL WHERE id=?",
                (new_id, target.id, now + target.delay_ms, now, self._message_id(new_id), row_id),
            )
            if target.fifo and group is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO fifo_groups (queue_id, group_id, next_at) VALUES (?,?,?)",
                    (target.id, group, now + target.delay_ms),
                )
            if meta.fifo and group is not None:
                self._refresh_group(conn, meta, group, now)
            self.depths.add(self.depths.queues[meta.id], -1)  # (a visible one)
            self.depths.forget_row(self.depths.queues[meta.id], row_id, None)
            target_depth = self.depths.queues[target.id]
            self.depths.add(target_depth, 1)
            self.depths.hide(target_depth, DELAYED, now + target.delay_ms, 1, now)
            moved += 1
            touched.add(target.name)
        return moved, touched

    def count_messages(self, conn: sqlite3.Connection, name: str) -> int:
        return self.depths.queues[self.queue(name).id].total


def validate_tags(tags: Mapping[str, str], queue: str = "") -> None:
    """AWS: at most 50 tags; keys 1..128 characters, values up to 256."""
    if len(tags) > 50:
        raise invalid_parameter(f"Too many tags added for queue {queue}.")  # AWS's (and moto's) wording
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise invalid_parameter(f"Tag key {key!r} is invalid: it must be 1 to 128 characters.")
        if not isinstance(value, str) or len(value) > 256:
            raise invalid_parameter(f"Tag value for key {key!r} is invalid: it must be at most 256 characters.")


def sequence_number(row_id: int) -> str:
    """FIFO SequenceNumber: a large, strictly increasing decimal string, as AWS gives."""
    return f"{row_id:020d}"
