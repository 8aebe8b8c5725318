"""`scte seed`: demonstration data for a fresh platform.

- members: the staff account (a random password, returned in the report for `scte up` to show once,
  stored only as its hash) and a few hundred generated demo members that cannot sign in (an
  unusable hash: no install has a known credential), written by the members service's own code into
  its database (with their member.registered events in its outbox, so every other service hears of
  them as of anyone who registered);
- courses (about 20, with their recertification-unit values) and companies (a few, each with an
  admin and employees) through the gateway's REST API, as staff;
- certification programs are SCTE's real ones and come with the certification service (its domain).

Names, courses and companies are the same on every fresh start; member ids come from the operating
system's CSPRNG (uuid4), so no two installs share one.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

__all__ = ["COURSES", "STAFF_EMAIL", "SeedReport", "seed"]

STAFF_EMAIL = "staff@scte.example"

_FIRST = [
    "Alex",
    "Ana",
    "Ben",
    "Carla",
    "Chen",
    "Dana",
    "Eli",
    "Fatima",
    "Grace",
    "Hiro",
    "Ines",
    "Jamal",
    "Kara",
    "Liam",
    "Maya",
    "Noah",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Victor",
    "Wen",
    "Xavier",
    "Yara",
    "Zoe",
]
_LAST = [
    "Adams",
    "Baker",
    "Chavez",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Huang",
    "Ito",
    "Johnson",
    "Khan",
    "Lopez",
    "Martin",
    "Nguyen",
    "Okafor",
    "Patel",
    "Quist",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Varga",
    "Walker",
    "Xu",
    "Young",
    "Zimmerman",
]
_CITIES = (("Exton", "US"), ("Denver", "US"), ("Atlanta", "US"), ("Toronto", "CA"), ("London", "GB"), ("Austin", "US"))

COURSES: tuple[tuple[str, str, int], ...] = (
    ("bpi-fundamentals", "Broadband Premises Installer Fundamentals", 3),
    ("bpt-troubleshooting", "Broadband Premises Technician Troubleshooting", 3),
    ("bpe-design", "Broadband Premises Expert: Network Design", 4),
    ("bds-rf-basics", "Broadband Distribution: RF Basics", 2),
    ("bds-node-splits", "Node Splits and Segmentation", 2),
    ("bts-transport", "Broadband Transport Specialist Essentials", 3),
    ("btcs-telecom", "Broadband Telecom Center Specialist", 3),
    ("dep-docsis31", "DOCSIS 3.1 Engineering", 4),
    ("dvep-video", "Digital Video Engineering Professional Review", 4),
    ("ipep-ip-networks", "IP Networks for Cable Engineers", 4),
    ("bce-energy", "Broadband Cable Energy Management", 3),
    ("fiber-splicing", "Fiber Optic Splicing and Testing", 2),
    ("pon-intro", "Introduction to PON and FTTH", 2),
    ("safety-aerial", "Aerial Plant Safety", 1),
    ("wifi-home", "Home Wi-Fi Performance", 1),
    ("cybersecurity-ops", "Cybersecurity for Network Operations", 3),
    ("leakage-ingress", "Signal Leakage and Ingress Control", 2),
    ("remote-phy", "Distributed Access Architecture and Remote PHY", 3),
    ("customer-premises", "Customer Premises Best Practices", 1),
    ("grounding-bonding", "Grounding and Bonding", 1),
)

_COMPANIES = ("Comcast Demo", "Charter Demo", "Cox Demo", "Rogers Demo", "Liberty Demo")


@dataclass
class SeedReport:
    staff_email: str = STAFF_EMAIL
    staff_password: str | None = field(default=None, repr=False)
    """The staff account's password when this seed created it: shown once, never written anywhere."""
    members: int = 0
    courses: int = 0
    companies: int = 0
    skipped: list[str] = field(default_factory=list)

    def public(self) -> dict[str, object]:
        """What may be written down (the `.seeded` marker): everything but the password."""
        return {
            "staff_email": self.staff_email,
            "members": self.members,
            "courses": self.courses,
            "companies": self.companies,
            "skipped": list(self.skipped),
        }


async def _seed_members(settings: Any, count: int, rng: random.Random) -> tuple[list[str], str]:
    """`count` demo members, through the members service's code; (member ids, staff id if staff exists)."""
    from scte.bus.publisher import Publisher
    from scte.bus.topology import Topology
    from scte.contracts.members import MemberProfileUpdated, MemberRegistered
    from scte.kit.db import create_engine, sessionmaker, upgrade
    from scte.platform import TOPICS
    from scte.services.members.db import members
    from scte.services.members.hashing import UNUSABLE_HASH

    url = settings.database_url("members")
    await upgrade("scte.services.members", url)
    engine = create_engine(url)
    publisher = Publisher("members", Topology(TOPICS))
    now = datetime.now(UTC)
    ids: list[str] = []
    staff_id = ""
    try:
        async with sessionmaker(engine)() as session, session.begin():
            existing = set((await session.execute(select(members.c.email))).scalars())
            people: list[tuple[str, str, list[str], tuple[str, str] | None]] = []
            for i in range(count):
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                people.append(
                    (f"{first}.{last}.{i}@members.example".lower(), f"{first} {last}", ["member"], rng.choice(_CITIES))
                )
            for email, name, roles, place in people:
                if email in existing:
                    continue
                member_id = uuid.uuid4().hex  # os.urandom: not guessable, not shared between installs
                listed = place is not None and rng.random() < 0.7
                await session.execute(
                    members.insert().values(
                        id=member_id,
                        email=email,
                        password_hash=UNUSABLE_HASH,  # demo members do not sign in
                        display_name=name,
                        city=place[0] if place else None,
                        country=place[1] if place else None,
                        listed_in_directory=listed,
                        roles=roles,
                        company_id=None,
                        status="prospect",
                        designations=[],
                        registered_at=now,
                        updated_at=now,
                    )
                )
                await publisher.publish(
                    session,
                    MemberRegistered(member_id=member_id, email=email, display_name=name, registered_at=now),
                    topic="members",
                )
                if place is not None:
                    await publisher.publish(
                        session,
                        MemberProfileUpdated(
                            member_id=member_id,
                            display_name=name,
                            city=place[0],
                            country=place[1],
                            listed_in_directory=listed,
                            updated_at=now,
                        ),
                        topic="members",
                    )
                ids.append(member_id)
            staff_id = str(await session.scalar(select(members.c.id).where(members.c.email == STAFF_EMAIL)) or "")
    finally:
        await engine.dispose()
    return ids, staff_id


async def seed(
    gateway_url: str, data_dir: Path, *, members: int = 300, step: Callable[[str], None] | None = None
) -> SeedReport:
    """Load the demonstration data into a running platform (`scte up` calls it on first start);
    `step` is told which part is being loaded (scte up's progress line)."""
    say = step or (lambda _part: None)
    from scte.admin import AdminError, create_staff
    from scte.kit.auth import TokenIssuer
    from scte.kit.settings import Settings

    settings = Settings(data_dir=data_dir)
    rng = random.Random(6)
    report = SeedReport()
    try:
        staff = await create_staff(data_dir, STAFF_EMAIL)
        report.staff_password = staff.password
    except AdminError:
        pass  # made by an earlier, interrupted seed: its password was shown then
    say(f"{members} members")
    member_ids, staff_id = await _seed_members(settings, members, rng)
    report.members = len(member_ids)
    token = TokenIssuer.from_file(settings.private_key_path).issue(staff_id, ["member", "staff"])
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as client:
        say("courses")
        for course_id, title, units in COURSES:
            response = await client.put(
                f"/api/learning/courses/{course_id}",
                json={"title": title, "units": units, "description": f"{title}: {units} recertification units."},
            )
            if response.status_code >= 400:
                report.skipped.append(f"courses: learning answered {response.status_code}")
                break
            report.courses += 1
        say("companies and their employees")
        for index, name in enumerate(_COMPANIES):
            admin = member_ids[index] if index < len(member_ids) else None
            response = await client.post("/api/companies/companies", json={"name": name, "admin_member_id": admin})
            if response.status_code >= 400:
                report.skipped.append(f"companies: companies answered {response.status_code}")
                break
            report.companies += 1
            company_id = response.json().get("company_id")
            for member_id in member_ids[len(_COMPANIES) + index * 20 : len(_COMPANIES) + (index + 1) * 20]:
                await client.post(f"/api/companies/companies/{company_id}/employees", json={"member_id": member_id})
    return report
