"""The learning service's reference and demonstration data: one exam per certification program and a
catalogue of about twenty courses with their recertification-unit values.

Exams are reference data (a program without its exam cannot be earned) and are loaded on every start;
courses are demonstration data, loaded when the catalogue is empty. Both loads are idempotent.
"""

from __future__ import annotations

from sqlalchemy import func, select

from scte.bus.contracts import Event
from scte.bus.envelope import Envelope
from scte.kit.app import ServiceContext

from . import db
from .handlers import upsert_course, upsert_exam
from .questions import demo_paper, paper, replace_paper

__all__ = ["COURSES", "EXAMS", "seed"]

EXAMS: tuple[tuple[str, str, int], ...] = (
    ("BPI", "Broadband Premises Installer exam", 50),
    ("BPT", "Broadband Premises Technician exam", 50),
    ("BPE", "Broadband Premises Expert exam", 50),
    ("BDS", "Broadband Distribution Specialist exam", 50),
    ("BTS", "Broadband Transport Specialist exam", 50),
    ("BTCS", "Broadband TelecomCenter Specialist exam", 50),
    ("DEP", "DOCSIS Engineering Professional exam", 50),
    ("DVEP", "Digital Video Engineering Professional exam", 50),
    ("IPEP", "Internet Protocol Engineering Professional exam", 50),
    ("BCE", "Broadband Communications Engineer exam", 100),
)
"""(program code = exam id, title, questions)."""

COURSES: tuple[tuple[str, str, int, str, int | None], ...] = (
    ("fiber-fundamentals", "Fiber Optic Fundamentals", 3, "Light, loss budgets, connectors and splicing.", None),
    ("docsis-31-essentials", "DOCSIS 3.1 Essentials", 4, "OFDM, OFDMA, profiles and PNM in practice.", None),
    ("docsis-40-fdx", "DOCSIS 4.0: Full Duplex and Extended Spectrum", 5, "FDX, ESD and the 1.8 GHz plant.", 40),
    ("hfc-network-design", "HFC Network Design", 4, "Node splits, amplifier cascades, RF levels.", None),
    ("rf-signal-leakage", "RF Signal Leakage and Ingress", 2, "CLI, leakage detection and FCC compliance.", None),
    ("ip-networking-101", "IP Networking for Cable Technicians", 3, "Addressing, routing, DHCP and DNS.", None),
    (
        "ipv6-deployment",
        "IPv6 Deployment in Cable Networks",
        3,
        "Dual stack, prefix delegation, troubleshooting.",
        None,
    ),
    ("remote-phy", "Distributed Access Architecture: Remote PHY", 4, "R-PHY nodes, CIN design, timing.", 30),
    ("remote-macphy", "Remote MACPHY and Virtual CMTS", 4, "R-MACPHY, vCMTS and cloud-native cores.", 30),
    ("pon-for-cable", "PON for Cable Operators", 4, "GPON, XGS-PON, 10G-EPON and DPoE.", None),
    ("video-compression", "Digital Video Compression", 3, "MPEG-2, H.264, HEVC and ABR packaging.", None),
    ("ip-video-delivery", "IP Video Delivery", 3, "Multicast ABR, CDNs and QoE measurement.", None),
    ("network-security", "Network Security for Operators", 4, "DDoS, BGP hygiene, zero trust.", None),
    ("wifi-in-home", "In-Home Wi-Fi Performance", 2, "Wi-Fi 6/6E/7, mesh and troubleshooting.", None),
    ("safety-on-the-plant", "Safety on the Outside Plant", 2, "Pole climbing, bucket trucks, OSHA rules.", None),
    ("power-and-grounding", "Powering and Grounding", 2, "Plant powering, bonding and lightning protection.", None),
    ("proactive-network-maintenance", "Proactive Network Maintenance", 3, "PNM data, MER, pre-equalization.", None),
    ("energy-management", "Energy Management in Access Networks", 2, "Measuring and reducing plant power.", None),
    (
        "customer-premises-install",
        "Customer Premises Installation",
        2,
        "Drops, grounding, gateways, service calls.",
        None,
    ),
    ("ethernet-transport", "Carrier Ethernet Transport", 3, "MEF services, timing and backhaul.", None),
    ("leadership-for-engineers", "Leadership for Engineers", 1, "Leading technical teams.", None),
)
"""(course id, title, units, description, capacity or None for unlimited)."""


async def seed(context: ServiceContext, *, courses: bool = True) -> int:
    """Load the exams, and the demonstration courses when the catalogue is empty; how many courses."""
    now = context.clock.now()
    loaded = 0
    async with context.sessionmaker() as session, session.begin():

        async def publish(event: Event, *, topic: str) -> Envelope:
            return await context.publisher.publish(session, event, topic=topic)

        for exam_id, title, questions in EXAMS:
            # a paper staff set decides the question count; a new exam gets the demonstration paper
            existing = await paper(session, exam_id)
            await upsert_exam(session, exam_id=exam_id, title=title, questions=len(existing) or questions)
            if not existing:
                await replace_paper(session, exam_id, demo_paper(questions))
        if courses and not await session.scalar(select(func.count()).select_from(db.courses)):
            for course_id, title, units, description, capacity in COURSES:
                await upsert_course(
                    session,
                    publish,
                    course_id=course_id,
                    title=title,
                    units=units,
                    description=description,
                    capacity=capacity,
                    now=now,
                )
                loaded += 1
    return loaded
