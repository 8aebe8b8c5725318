"""The exam papers: each exam's multiple-choice questions, the key, and scoring a member's answers.

An exam's paper is its rows in `exam_questions` (staff replace it with `PUT /exams/{id}/questions`);
the key never leaves the service except to staff. The demonstration papers are drawn from
`DEMO_BANK` when an exam has none, so a fresh install can be sat end to end from the portal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import db
from .domain import LearningError

__all__ = ["DEMO_BANK", "MAX_CHOICES", "Question", "demo_paper", "paper", "replace_paper", "score_answers"]

MAX_CHOICES = 6


@dataclass(frozen=True, slots=True)
class Question:
    number: int
    prompt: str
    choices: tuple[str, ...]
    answer: int
    """The index of the right choice in `choices`."""

    def __post_init__(self) -> None:
        if not 2 <= len(self.choices) <= MAX_CHOICES:
            raise LearningError(f"question {self.number} needs 2 to {MAX_CHOICES} choices")
        if not 0 <= self.answer < len(self.choices):
            raise LearningError(f"question {self.number}'s answer is not one of its {len(self.choices)} choices")


DEMO_BANK: tuple[tuple[str, tuple[str, ...], int], ...] = (
    (
        "What is the characteristic impedance of the coaxial cable used in cable distribution?",
        ("50 Ω", "75 Ω", "93 Ω", "300 Ω"),
        1,
    ),
    (
        "What does DOCSIS stand for?",
        (
            "Digital Optical Cable System Interface Standard",
            "Data Over Cable Service Interface Specification",
            "Distributed Operations Cable Service Integration Suite",
            "Data Over Coax Signal Interchange Scheme",
        ),
        1,
    ),
    ("Which connector terminates most subscriber drop cables?", ("BNC", "RJ-45", "F-connector", "SC"), 2),
    ("In which unit are RF signal levels in cable systems usually given?", ("dBm", "dBmV", "dBi", "dBc"), 1),
    ("0 dBmV is defined as:", ("1 mV across 75 Ω", "1 mW into 50 Ω", "1 V across 75 Ω", "1 µV across 50 Ω"), 0),
    (
        "What does HFC stand for?",
        ("High-frequency carrier", "Hybrid fiber-coaxial", "Headend fiber channel", "Hybrid frequency conversion"),
        1,
    ),
    (
        "The loss of a coaxial cable, in dB per 100 ft, rises with:",
        ("Frequency", "Signal level", "Temperature only", "Nothing: it is constant"),
        0,
    ),
    (
        "What does the fiber node of an HFC network convert?",
        ("RF to baseband video", "Optical signals to RF and back", "AC power to DC", "IPv4 to IPv6"),
        1,
    ),
    ("Which modulation does DOCSIS 3.1 use downstream?", ("AM-VSB", "FM", "OFDM", "QPSK only"), 2),
    (
        "What does the CMTS do?",
        (
            "Terminates the cable modems' links at the headend or hub",
            "Measures tilt at the tap",
            "Powers the amplifiers",
            "Encodes MPEG video",
        ),
        0,
    ),
    (
        "A drop is bonded to the building's grounding electrode system to:",
        (
            "Raise signal levels",
            "Limit voltage differences from surges and faults",
            "Reduce ingress at high frequencies",
            "Meet the DOCSIS specification",
        ),
        1,
    ),
    ("A two-way splitter's loss to each output is about:", ("0.5 dB", "3.5 dB", "7 dB", "10 dB"), 1),
)
"""(prompt, choices, index of the right choice): general broadband knowledge for the demonstration papers."""


def demo_paper(questions: int) -> list[Question]:
    """A paper of `questions` questions drawn in turn from `DEMO_BANK` (numbered from 1)."""
    paper: list[Question] = []
    for number in range(1, questions + 1):
        prompt, choices, answer = DEMO_BANK[(number - 1) % len(DEMO_BANK)]
        paper.append(Question(number, prompt, choices, answer))
    return paper


def _row(row: object) -> Question:
    values = dict(row)  # type: ignore[call-overload]
    return Question(values["number"], values["prompt"], tuple(json.loads(values["choices"])), values["answer"])


async def paper(session: AsyncSession, exam_id: str) -> list[Question]:
    """The exam's questions in order; empty when it has none."""
    rows = (
        await session.execute(
            select(db.exam_questions).where(db.exam_questions.c.exam_id == exam_id).order_by(db.exam_questions.c.number)
        )
    ).mappings()
    return [_row(r) for r in rows]


async def replace_paper(session: AsyncSession, exam_id: str, questions: Sequence[Question]) -> None:
    """The exam's paper becomes `questions`; its question count follows (scores are out of it)."""
    if not questions:
        raise LearningError("a paper has at least one question")
    await session.execute(delete(db.exam_questions).where(db.exam_questions.c.exam_id == exam_id))
    await session.execute(
        insert(db.exam_questions),
        [
            {
                "exam_id": exam_id,
                "number": q.number,
                "prompt": q.prompt,
                "choices": json.dumps(list(q.choices)),
                "answer": q.answer,
            }
            for q in questions
        ],
    )
    await session.execute(update(db.exams).where(db.exams.c.exam_id == exam_id).values(questions=len(questions)))


def score_answers(questions: Sequence[Question], answers: Sequence[int | None]) -> int:
    """How many answers are right; `None` is a question left unanswered. One answer per question."""
    if len(answers) != len(questions):
        raise LearningError(f"the paper has {len(questions)} questions: give one answer (or none) for each")
    correct = 0
    for question, answer in zip(questions, answers, strict=True):
        if answer is None:
            continue
        if not 0 <= answer < len(question.choices):
            raise LearningError(f"question {question.number} has no choice {answer}")
        correct += answer == question.answer
    return correct
