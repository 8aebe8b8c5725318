"""`scte queues` and `scte dlq ...`: the console's queue and dead-letter operations from a terminal.

They act on the running system through the broker's own API, as the console does (`scte.web.broker_admin`):
SigV4 with the operator's key, by default the install's admin key `<data>/keys/broker/admin.json` (0600,
written by `scte up`; never printed), on the broker `scte up` started (`<data>/run/processes.json`), or
the one named by `--endpoint` / `AWS_ENDPOINT_URL` with `--key-file`. Nothing reads the broker's database.

    scte queues                              every queue: waiting, in flight, delayed, oldest message, DLQ
    scte dlq list                            the dead-letter queues and their depth
    scte dlq show notifications-dlq          its messages, envelope and failure decoded
    scte dlq redrive notifications-dlq ID…   those messages back to the queue they failed in (--all: all)
    scte dlq replay notifications-dlq ID     its event published again to its topic (asks first)
    scte dlq purge notifications-dlq         delete every message (asks first; --yes in scripts)

A bad argument is a clear message and exit status 2 (a usage error) or 1 (the broker refused or is not
there), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # imported when a command runs: `scte up` and the others do not pay for aiobotocore
    from scte.web.broker_admin import BrokerAdmin, DeadLetter, QueueRow

__all__ = ["dlq_app", "queues_app"]

queues_app = typer.Typer(
    invoke_without_command=True, help="The broker's queues: waiting, in flight, delayed, oldest message."
)
dlq_app = typer.Typer(no_args_is_help=True, help="Dead-letter queues: list, show, redrive, replay, purge.")

T = TypeVar("T")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="The install's data directory (default $SCTE_DATA_DIR or ./var).")
]
EndpointOpt = Annotated[
    str | None,
    typer.Option("--endpoint", help="The broker's URL (default: the one `scte up` started, or $AWS_ENDPOINT_URL)."),
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="JSON file of the operator's key (default <data>/keys/broker/admin.json)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]
DlqArg = Annotated[str, typer.Argument(help="The dead-letter queue, e.g. notifications-dlq or members-dlq.fifo.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"scte: {message}", err=True)
    return typer.Exit(code)


def _admin(data: Path | None, endpoint: str | None, key_file: Path | None) -> BrokerAdmin:
    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    if endpoint is None:
        registry = directory / "run" / "processes.json"
        try:
            endpoint = json.loads(registry.read_text(encoding="utf-8"))["env"]["AWS_ENDPOINT_URL"]
        except (OSError, ValueError, KeyError, TypeError):
            endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise _fail(f"no running system in {directory} (start it with `scte up`, or give --endpoint)")
    if not re.match(r"^https?://[^\s/]+", endpoint):
        raise _fail(f"--endpoint {endpoint!r} is not an http(s) URL", 2)
    key = key_file or directory / "keys" / "broker" / "admin.json"
    if not key.is_file():
        raise _fail(f"no operator key at {key} (give --key-file, or --data of the install)")
    from scte.web.broker_admin import BrokerAdmin

    return BrokerAdmin(endpoint, key)


def _run(admin: BrokerAdmin, action: Callable[[BrokerAdmin], Awaitable[T]]) -> T:
    from scte.web.broker_admin import BrokerUnavailable, QueueNotFound

    async def go() -> T:
        try:
            return await action(admin)
        finally:
            await admin.close()

    try:
        return asyncio.run(go())
    except QueueNotFound as exc:
        raise _fail(f"no such queue or topic: {exc}".rstrip(": ")) from None
    except BrokerUnavailable as exc:
        raise _fail(f"the broker refused or did not answer ({exc})") from None


def _dlq(name: str) -> str:
    from scte.web.broker_admin import is_dead_letter_queue

    if not _QUEUE_NAME.match(name):
        raise _fail(f"{name!r} is not a queue name (letters, digits, - and _, up to 80, optional .fifo)", 2)
    if not is_dead_letter_queue(name):
        raise _fail(f"{name} is not a dead-letter queue (their names end in -dlq or -dlq.fifo)", 2)
    return name


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 1:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _queue_json(q: QueueRow) -> dict[str, Any]:
    return {
        "name": q.name,
        "waiting": q.visible,
        "in_flight": q.in_flight,
        "delayed": q.delayed,
        "oldest_age_seconds": q.oldest_age,
        "dead_letter_queue": q.dead_letter_queue,
    }


def _print_queues(rows: list[QueueRow], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps([_queue_json(q) for q in rows], indent=2))
        return
    depth = {q.name: q.visible + q.in_flight + q.delayed for q in rows}
    table = Table(title=title)
    for column in ("queue", "waiting", "in flight", "delayed", "oldest"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    table.add_column("dead letters")
    for q in rows:
        dlq = f"{depth.get(q.dead_letter_queue, 0)} in {q.dead_letter_queue}" if q.dead_letter_queue else "-"
        table.add_row(q.name, str(q.visible), str(q.in_flight), str(q.delayed), _age(q.oldest_age), dlq)
    Console(width=140).print(table)


@queues_app.callback()
def queues(
    ctx: typer.Context,
    data: DataOpt = None,
    endpoint: EndpointOpt = None,
    key_file: KeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every queue of the broker: messages waiting, in flight, delayed, the oldest message's age, its DLQ."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = (data, endpoint, key_file, as_json)
        return
    rows = _run(_admin(data, endpoint, key_file), lambda admin: admin.queues())
    _print_queues(rows, as_json, "queues")


@queues_app.command("ls")
def queues_ls(ctx: typer.Context) -> None:
    """The same as `scte queues`."""
    data, endpoint, key_file, as_json = ctx.obj
    rows = _run(_admin(data, endpoint, key_file), lambda admin: admin.queues())
    _print_queues(rows, as_json, "queues")


@dlq_app.command("list")
def dlq_list(
    data: DataOpt = None, endpoint: EndpointOpt = None, key_file: KeyFileOpt = None, as_json: JsonOpt = False
) -> None:
    """The dead-letter queues and how many messages each holds."""
    rows = _run(_admin(data, endpoint, key_file), lambda admin: admin.queues())
    _print_queues([q for q in rows if q.is_dlq], as_json, "dead-letter queues")


dlq_app.command("ls", help="The same as `scte dlq list`.")(dlq_list)


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    out = asdict(letter)
    out.update(
        event_type=letter.event_type,
        source=letter.source,
        subject=letter.subject,
        correlation_id=letter.correlation_id,
        attempts=letter.attempts,
    )
    return out


@dlq_app.command("show")
def dlq_show(
    queue: DlqArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=80, help="At most this many messages.")] = 20,
    data: DataOpt = None,
    endpoint: EndpointOpt = None,
    key_file: KeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The messages of a dead-letter queue (left in place) with their envelope and failure decoded."""
    name = _dlq(queue)
    letters = _run(_admin(data, endpoint, key_file), lambda admin: admin.dead_letters(name, limit))
    if as_json:
        typer.echo(json.dumps([_letter_json(x) for x in letters], indent=2))
        return
    console = Console(width=140, highlight=False)
    console.print(f"{len(letters)} message{'' if len(letters) == 1 else 's'} in {name}", markup=False)
    for letter in letters:
        failure = letter.failure
        console.print("")
        for label, value in (
            ("message id", letter.message_id),
            ("type", letter.event_type),
            ("source", letter.source),
            ("subject", letter.subject),
            ("correlation id", letter.correlation_id),
            ("event time", letter.event_time),
            ("attempts", letter.attempts),
            ("reason", failure.get("reason", "")),
            ("error", f"{failure.get('error_type', '')}: {failure.get('error', '')}".strip(": ")),
            ("consumer", failure.get("consumer", "")),
            ("failed at", failure.get("failed_at", "")),
            ("body", letter.body if len(letter.body) <= 300 else letter.body[:300] + "…"),
        ):
            if value:
                console.print(f"  {label:15} {value}", markup=False)


def _message_ids(ids: list[str]) -> list[str]:
    bad = [i for i in ids if not _MESSAGE_ID.match(i)]
    if bad:
        raise _fail(f"not a message id: {bad[0]!r}", 2)
    return list(dict.fromkeys(ids))


@dlq_app.command("redrive")
def dlq_redrive(
    queue: DlqArg,
    message_ids: Annotated[list[str] | None, typer.Argument(help="The messages to move (see `scte dlq show`).")] = None,
    all_messages: Annotated[bool, typer.Option("--all", help="Every message (a message move task).")] = False,
    data: DataOpt = None,
    endpoint: EndpointOpt = None,
    key_file: KeyFileOpt = None,
) -> None:
    """Move messages back to the queue they failed in (the one whose RedrivePolicy names this DLQ)."""
    name = _dlq(queue)
    ids = _message_ids(message_ids or [])
    if all_messages == bool(ids):
        raise _fail("name the messages to redrive, or give --all (not both)", 2)
    admin = _admin(data, endpoint, key_file)
    if all_messages:
        handle = _run(admin, lambda a: a.redrive_all(name))
        typer.echo(f"moving every message of {name} back (move task {handle})")
        return
    moved = _run(admin, lambda a: a.redrive(name, ids))
    typer.echo(f"{moved} of {len(ids)} message{'' if len(ids) == 1 else 's'} moved back from {name}")
    if moved < len(ids):
        raise typer.Exit(1)


@dlq_app.command("replay")
def dlq_replay(
    queue: DlqArg,
    message_id: Annotated[str, typer.Argument(help="The message whose event is published again.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    data: DataOpt = None,
    endpoint: EndpointOpt = None,
    key_file: KeyFileOpt = None,
) -> None:
    """Publish a dead letter's event again to its topic (every subscriber gets it; those that handled it
    already drop it: the event keeps its id), then delete it from the DLQ."""
    name = _dlq(queue)
    [mid] = _message_ids([message_id])
    if not yes and not typer.confirm(f"Publish the event of {mid} again to its topic?", default=False):
        raise _fail("not replayed", 1)
    done, topic = _run(_admin(data, endpoint, key_file), lambda a: a.replay(name, mid))
    if not done:
        raise _fail(f"no message {mid} in {name}")
    typer.echo(f"published again to {topic}; removed from {name}")


@dlq_app.command("purge")
def dlq_purge(
    queue: DlqArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    data: DataOpt = None,
    endpoint: EndpointOpt = None,
    key_file: KeyFileOpt = None,
) -> None:
    """Delete every message of a dead-letter queue."""
    name = _dlq(queue)
    if not yes and not typer.confirm(f"Delete every message of {name}?", default=False):
        raise _fail("not purged", 1)
    _run(_admin(data, endpoint, key_file), lambda a: a.purge(name))
    typer.echo(f"purged {name}")
