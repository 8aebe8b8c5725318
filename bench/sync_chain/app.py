"""The stand-in services of the synchronous chain (see the package docstring)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from scte.kit.auth import AuthError, Principal, TokenVerifier
from scte.kit.db import create_engine, sessionmaker
from scte.services.certification.domain import PROGRAMS, ExamEffect, Program, award, milestones
from scte.services.learning.domain import ExamAttempt, attempts_available, score_attempt
from scte.services.members.domain import HeldCertification, designations
from scte.services.notifications.providers import Outgoing, SmtpProvider
from scte.services.notifications.render import render

__all__ = ["CHAIN", "ROLES", "build_app"]

CHAIN = ("certification", "members", "notifications", "search", "companies", "reports")
ROLES = ("learning", *CHAIN)

md = MetaData()

# learning
exams = Table("exams", md, Column("exam_id", String, primary_key=True), Column("questions", Integer, nullable=False))
exam_fees = Table(
    "exam_fees",
    md,
    Column("fee_id", String, primary_key=True),
    Column("member_id", String, index=True, nullable=False),
    Column("exam_id", String, nullable=False),
)
attempts = Table(
    "attempts",
    md,
    Column("attempt_id", String, primary_key=True),
    Column("exam_id", String, nullable=False),
    Column("member_id", String, index=True, nullable=False),
    Column("correct", Integer, nullable=False),
    Column("questions", Integer, nullable=False),
    Column("score_percent", String, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String, nullable=False),
)
# certification
certifications = Table(
    "certifications",
    md,
    Column("certification_id", String, primary_key=True),
    Column("member_id", String, index=True, nullable=False),
    Column("program", String, nullable=False),
    Column("originally_awarded_on", Date, nullable=False),
    Column("cycle_start", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("attempt_id", String),
)
schedule = Table(
    "schedule",
    md,
    Column("id", String, primary_key=True),
    Column("certification_id", String, index=True, nullable=False),
    Column("kind", String, nullable=False),
    Column("due_on", Date, nullable=False),
)
# members, notifications, search, companies: the member as each one knows them
people = Table(
    "people",
    md,
    Column("member_id", String, primary_key=True),
    Column("email", String, nullable=False),
    Column("display_name", String, nullable=False),
    Column("company_id", String, index=True),
    Column("company_admin", Boolean, nullable=False, default=False),
    Column("city", String),
    Column("country", String),
    Column("designations", String, nullable=False, default=""),
)
held = Table(
    "held",
    md,
    Column("member_id", String, primary_key=True),
    Column("program", String, primary_key=True),
    Column("certification_id", String, nullable=False),
    Column("expires_on", Date, nullable=False),
)
deliveries = Table(
    "deliveries",
    md,
    Column("notification_id", String, primary_key=True),
    Column("recipient_id", String, nullable=False),
    Column("template", String, nullable=False),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("subject", String),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
)
rollups = Table(
    "rollups",
    md,
    Column("company_id", String, primary_key=True),
    Column("certified", String, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)
counters = Table(
    "counters",
    md,
    Column("report", String, primary_key=True),
    Column("key", String, primary_key=True),
    Column("month", String, primary_key=True),
    Column("value", Integer, nullable=False),
)

FTS = "CREATE VIRTUAL TABLE IF NOT EXISTS directory USING fts5(member_id UNINDEXED, name, designations, city, country)"


class Stand:
    """What one stand-in process holds: its database, the token verifier, its clients."""

    def __init__(
        self, role: str, data_dir: Path, public_key: Path, smtp_port: int, downstream: dict[str, str], mode: str
    ) -> None:
        self.role = role
        self.engine: AsyncEngine = create_engine(
            f"sqlite+scte:///{data_dir / role}.db"
        )  # the inline driver, as the services
        self.sessions: async_sessionmaker[AsyncSession] = sessionmaker(self.engine)
        self.verifier = TokenVerifier.from_file(public_key)
        self.smtp = SmtpProvider("127.0.0.1", smtp_port)
        self.downstream = downstream
        self.mode = mode
        self.http: httpx.AsyncClient | None = None

    def principal(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "a bearer token is needed")
        try:
            return self.verifier.verify(authorization.removeprefix("Bearer "))
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from exc


def build_app(
    role: str,
    data_dir: Path,
    public_key: Path,
    *,
    smtp_port: int = 1025,
    downstream: dict[str, str] | None = None,
    mode: str = "serial",
    timeout: float = 5.0,
) -> FastAPI:
    stand = Stand(role, data_dir, public_key, smtp_port, downstream or {}, mode)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with stand.engine.begin() as conn:
            await conn.run_sync(md.create_all)
            await conn.execute(text(FTS))
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=256)
        stand.http = httpx.AsyncClient(timeout=timeout, limits=limits)
        yield
        await stand.http.aclose()
        await stand.engine.dispose()

    app = FastAPI(title=f"sync-chain {role}", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "role": role}

    @app.put("/prep/members/{member_id}")
    async def prep_member(
        member_id: str, body: dict[str, Any], authorization: str | None = Header(None)
    ) -> dict[str, str]:
        """The read model the real service would have built from member.registered and friends."""
        stand.principal(authorization)
        async with stand.sessions() as session, session.begin():
            await session.execute(
                insert(people).prefix_with("OR REPLACE"),
                {
                    "member_id": member_id,
                    "email": body["email"],
                    "display_name": body["display_name"],
                    "company_id": body.get("company_id"),
                    "company_admin": bool(body.get("company_admin", False)),
                    "city": body.get("city"),
                    "country": body.get("country"),
                    "designations": "",
                },
            )
            if role == "search":
                await session.execute(text("DELETE FROM directory WHERE member_id = :m"), {"m": member_id})
                await session.execute(
                    text("INSERT INTO directory VALUES (:m, :n, '', :c, :k)"),
                    {"m": member_id, "n": body["display_name"], "c": body.get("city"), "k": body.get("country")},
                )
            if role == "learning":
                for exam_id in body.get("exam_fees", []):
                    await session.execute(
                        insert(exam_fees).values(fee_id=uuid.uuid4().hex, member_id=member_id, exam_id=exam_id)
                    )
        return {"status": "ok"}

    @app.put("/prep/exams/{exam_id}")
    async def prep_exam(exam_id: str, body: dict[str, Any], authorization: str | None = Header(None)) -> dict[str, str]:
        stand.principal(authorization)
        async with stand.sessions() as session, session.begin():
            await session.execute(
                insert(exams).prefix_with("OR REPLACE").values(exam_id=exam_id, questions=body["questions"])
            )
        return {"status": "ok"}

    if role == "learning":
        _learning_routes(app, stand)
    elif role == "certification":
        _certification_routes(app, stand)
    elif role == "members":
        _members_routes(app, stand)
    elif role == "notifications":
        _notifications_routes(app, stand)
    elif role == "search":
        _search_routes(app, stand)
    elif role == "companies":
        _companies_routes(app, stand)
    elif role == "reports":
        _reports_routes(app, stand)
    else:
        raise ValueError(f"unknown role {role}")
    return app


# --- learning: the member's request, then the chain ------------------------------------------------


class ChainFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


def _learning_routes(app: FastAPI, stand: Stand) -> None:
    async def call(step: str, path: str, payload: dict[str, Any], authorization: str) -> dict[str, Any]:
        assert stand.http is not None
        try:
            r = await stand.http.post(
                stand.downstream[step] + path, json=payload, headers={"Authorization": authorization}
            )
        except httpx.TimeoutException as exc:
            raise ChainFailed(step, f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ChainFailed(step, f"unreachable ({type(exc).__name__})") from exc
        if r.status_code >= 300:
            raise ChainFailed(step, f"HTTP {r.status_code}: {r.text[:200]}")
        return dict(r.json())

    @app.post("/exams/{exam_id}/attempts", status_code=201)
    async def post_attempt(exam_id: str, body: dict[str, Any], request: Request) -> Any:
        authorization = request.headers.get("authorization")
        principal = stand.principal(authorization)
        assert authorization is not None
        if "staff" not in principal.roles:
            raise HTTPException(403, "staff only")
        member_id, correct = str(body["member_id"]), int(body["correct"])
        taken_at = datetime.now(UTC)
        async with stand.sessions() as session, session.begin():
            exam = (await session.execute(select(exams).where(exams.c.exam_id == exam_id))).mappings().first()
            if exam is None:
                raise HTTPException(404, f"no exam {exam_id}")
            fees = await session.scalar(
                select(func.count())
                .select_from(exam_fees)
                .where(exam_fees.c.member_id == member_id, exam_fees.c.exam_id == exam_id)
            )
            taken = await session.scalar(
                select(func.count())
                .select_from(attempts)
                .where(attempts.c.member_id == member_id, attempts.c.exam_id == exam_id)
            )
            if attempts_available(fees or 0, taken or 0) < 1:
                raise HTTPException(409, f"member {member_id} has no paid exam fee left for exam {exam_id}")
            attempt_id = uuid.uuid4().hex
            result = score_attempt(ExamAttempt(attempt_id, member_id, exam_id, correct, exam["questions"], taken_at))
            await session.execute(
                insert(attempts).values(
                    attempt_id=attempt_id,
                    exam_id=exam_id,
                    member_id=member_id,
                    correct=correct,
                    questions=exam["questions"],
                    score_percent=str(result.percent),
                    passed=result.passed,
                    taken_at=taken_at,
                    recorded_by=principal.member_id,
                )
            )
        passed = {
            "attempt_id": attempt_id,
            "member_id": member_id,
            "program": exam_id,
            "score_percent": str(result.percent),
            "taken_at": taken_at.isoformat(),
        }
        done: list[str] = []
        try:
            if result.passed:
                awarded = await call("certification", "/awards", passed, authorization)
                done.append("certification")
                if awarded.get("awarded"):
                    await call("members", "/certifications", awarded, authorization)
                    done.append("members")
                    rest: list[tuple[str, str, dict[str, Any]]] = [
                        ("notifications", "/notices", {"exam_passed": passed, "awarded": awarded}),
                        ("search", "/certifications", awarded),
                        ("companies", "/certifications", awarded),
                        ("reports", "/awards", awarded),
                    ]
                    if stand.mode == "fanout":
                        results = await asyncio.gather(
                            *(call(s, p, d, authorization) for s, p, d in rest), return_exceptions=True
                        )
                        failed = [r for r in results if isinstance(r, BaseException)]
                        done += [
                            s for (s, _p, _d), r in zip(rest, results, strict=True) if not isinstance(r, BaseException)
                        ]
                        if failed:
                            raise failed[0]
                    else:
                        for step, path, payload in rest:
                            await call(step, path, payload, authorization)
                            done.append(step)
        except ChainFailed as exc:
            status = 504 if exc.reason.startswith("timeout") else 502
            return JSONResponse(
                {"error": "chain_failed", "step": exc.step, "message": exc.reason, "done": done}, status_code=status
            )
        return {
            "attempt_id": attempt_id,
            "exam_id": exam_id,
            "member_id": member_id,
            "correct": correct,
            "questions": exam["questions"],
            "score_percent": str(result.percent),
            "passed": result.passed,
            "taken_at": taken_at.isoformat(),
            "done": done,
        }


# --- the downstream stand-ins ------------------------------------------------------------------------


def _certification_routes(app: FastAPI, stand: Stand) -> None:
    @app.post("/awards")
    async def awards(body: dict[str, Any], request: Request) -> dict[str, Any]:
        stand.principal(request.headers.get("authorization"))
        program = Program(body["program"])
        on = datetime.fromisoformat(body["taken_at"]).date()
        async with stand.sessions() as session, session.begin():
            current = (
                await session.execute(
                    select(certifications).where(
                        certifications.c.member_id == body["member_id"], certifications.c.program == program.value
                    )
                )
            ).first()
            effect = ExamEffect.AWARD if current is None else ExamEffect.NONE
            if effect is not ExamEffect.AWARD:
                return {"awarded": False}
            cert = award(uuid.uuid4().hex, body["member_id"], program, on)
            await session.execute(
                insert(certifications).values(
                    certification_id=cert.certification_id,
                    member_id=cert.member_id,
                    program=program.value,
                    originally_awarded_on=cert.originally_awarded_on,
                    cycle_start=cert.cycle_start,
                    expires_on=cert.expires_on,
                    attempt_id=body["attempt_id"],
                )
            )
            for milestone in milestones(cert):
                await session.execute(
                    insert(schedule).values(
                        id=uuid.uuid4().hex,
                        certification_id=cert.certification_id,
                        kind=milestone.kind.value,
                        due_on=milestone.on,
                    )
                )
        return {
            "awarded": True,
            "certification_id": cert.certification_id,
            "member_id": cert.member_id,
            "program": program.value,
            "program_name": PROGRAMS[program].name,
            "awarded_on": on.isoformat(),
            "expires_on": cert.expires_on.isoformat(),
            "attempt_id": body["attempt_id"],
        }


async def _hold(session: AsyncSession, body: dict[str, Any]) -> None:
    await session.execute(
        insert(held)
        .prefix_with("OR REPLACE")
        .values(
            member_id=body["member_id"],
            program=body["program"],
            certification_id=body["certification_id"],
            expires_on=date.fromisoformat(body["expires_on"]),
        )
    )


async def _designations(session: AsyncSession, member_id: str) -> str:
    programs = (await session.execute(select(held.c.program).where(held.c.member_id == member_id))).scalars().all()
    return " ".join(designations(HeldCertification(p) for p in programs))


def _members_routes(app: FastAPI, stand: Stand) -> None:
    @app.post("/certifications")
    async def certified(body: dict[str, Any], request: Request) -> dict[str, Any]:
        stand.principal(request.headers.get("authorization"))
        async with stand.sessions() as session, session.begin():
            await _hold(session, body)
            codes = await _designations(session, body["member_id"])
            await session.execute(
                update(people).where(people.c.member_id == body["member_id"]).values(designations=codes)
            )
        return {"member_id": body["member_id"], "designations": codes.split()}


def _notifications_routes(app: FastAPI, stand: Stand) -> None:
    async def deliver(recipient: Any, member: Any, template: str, event: dict[str, Any]) -> None:
        notification_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        async with stand.sessions() as session, session.begin():
            await session.execute(
                insert(deliveries).values(
                    notification_id=notification_id,
                    recipient_id=recipient.member_id,
                    template=template,
                    status="sending",
                    attempts=1,
                    created_at=now,
                )
            )
        context = {
            "event": event,
            "recipient": {"member_id": recipient.member_id, "display_name": recipient.display_name},
            "member": {"member_id": member.member_id, "display_name": member.display_name},
        }
        rendered = render(template, context)
        await stand.smtp.send(
            Outgoing(notification_id, recipient.email, rendered.subject, rendered.text, rendered.html)
        )
        async with stand.sessions() as session, session.begin():
            await session.execute(
                update(deliveries)
                .where(deliveries.c.notification_id == notification_id)
                .values(status="sent", subject=rendered.subject, sent_at=datetime.now(UTC))
            )

    @app.post("/notices")
    async def notices(body: dict[str, Any], request: Request) -> dict[str, Any]:
        stand.principal(request.headers.get("authorization"))
        passed, awarded = body["exam_passed"], body["awarded"]
        async with stand.sessions() as session:
            member = (await session.execute(select(people).where(people.c.member_id == passed["member_id"]))).first()
            if member is None:
                raise HTTPException(404, "unknown member")
            admins = (
                (
                    await session.execute(
                        select(people).where(people.c.company_id == member.company_id, people.c.company_admin)
                    )
                ).all()
                if member.company_id
                else []
            )
        await deliver(member, member, "exam_passed", passed)
        await deliver(member, member, "certification_awarded", awarded)
        for admin in admins:
            await deliver(admin, member, "employee_certified", awarded)
        return {"sent": 2 + len(admins)}


def _search_routes(app: FastAPI, stand: Stand) -> None:
    @app.post("/certifications")
    async def certified(body: dict[str, Any], request: Request) -> dict[str, Any]:
        stand.principal(request.headers.get("authorization"))
        async with stand.sessions() as session, session.begin():
            await _hold(session, body)
            codes = await _designations(session, body["member_id"])
            person = (await session.execute(select(people).where(people.c.member_id == body["member_id"]))).first()
            if person is None:
                return {"indexed": False}
            await session.execute(text("DELETE FROM directory WHERE member_id = :m"), {"m": person.member_id})
            await session.execute(
                text("INSERT INTO directory VALUES (:m, :n, :d, :c, :k)"),
                {"m": person.member_id, "n": person.display_name, "d": codes, "c": person.city, "k": person.country},
            )
        return {"indexed": True}


def _companies_routes(app: FastAPI, stand: Stand) -> None:
    @app.post("/certifications")
    async def certified(body: dict[str, Any], request: Request) -> dict[str, Any]:
        stand.principal(request.headers.get("authorization"))
        async with stand.sessions() as session, session.begin():
            await _hold(session, body)
            company = await session.scalar(select(people.c.company_id).where(people.c.member_id == body["member_id"]))
            if company is None:
                return {"changed": False}
            rows = (
                await session.execute(
                    select(held.c.program, func.count(func.distinct(held.c.member_id)))
                    .join(people, people.c.member_id == held.c.member_id)
                    .where(people.c.company_id == company, held.c.expires_on > date.today())
                    .group_by(held.c.program)
                    .order_by(held.c.program)
                )
            ).all()
            certified_now = ",".join(f"{p}={n}" for p, n in rows)
            before = await session.scalar(select(rollups.c.certified).where(rollups.c.company_id == company))
            changed = before != certified_now
            if changed:
                await session.execute(
                    insert(rollups)
                    .prefix_with("OR REPLACE")
                    .values(company_id=company, certified=certified_now, changed_at=datetime.now(UTC))
                )
        return {"changed": changed, "company_id": company, "certified": certified_now}


def _reports_routes(app: FastAPI, stand: Stand) -> None:
    @app.post("/awards")
    async def awards(body: dict[str, Any], request: Request) -> dict[str, Any]:
        stand.principal(request.headers.get("authorization"))
        month = body["awarded_on"][:7]
        async with stand.sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO counters (report, key, month, value) VALUES ('awards', :k, :m, 1) "
                    "ON CONFLICT (report, key, month) DO UPDATE SET value = value + 1"
                ),
                {"k": body["program"], "m": month},
            )
        return {"counted": True}
