"""The accounts' input rules: the password policy (zxcvbn), e-mail normalisation against look-alikes,
display names without control or bidirectional characters; and the bounded hashing pool."""

from __future__ import annotations

import asyncio
import time

import pytest

from scte.services.members.domain import MembersError, Profile, normalize_email, password_problems, validate_profile
from scte.services.members.hashing import UNUSABLE_HASH, HashingBusy, HashingPool, hash_password
from scte.services.members.password_policy import user_inputs

EMAIL, NAME = "janedoe@example.com", "Jane Doe"

# --- passwords -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "a long enough passphrase 42", "x7#Lq9!vRz2@Wm", "k" * 3 + "ZebraQuilt-81"],
)
def test_long_unusual_passwords_are_accepted(password: str) -> None:
    assert password_problems(password, EMAIL, NAME) == []


@pytest.mark.parametrize(
    "password",
    ["abababababab", "qwertyqwerty", "123412341234", "P@ssw0rd2024", "Password1234", "aaaaaaaaaaaaaa", "k" * 11 + "!"],
)
def test_guessable_passwords_are_refused(password: str) -> None:
    problems = password_problems(password, EMAIL, NAME)
    assert problems and "too easy to guess" in problems[0], problems


@pytest.mark.parametrize(
    "password",
    ["janedoe12345", "JaneDoe!2024x", "my-janedoe-secret", "I am Jane Doe!!", "doe jane example", "example.com-jane1"],
)
def test_passwords_built_from_the_email_or_name_are_refused(password: str) -> None:
    problems = password_problems(password, EMAIL, NAME)
    assert problems, password
    assert any(("e-mail address or name" in p) or ("too easy" in p) for p in problems), problems


def test_the_email_and_name_words_are_the_user_inputs() -> None:
    words = user_inputs("jane.doe+x@acme-cable.example", "Jane Q Doe")
    assert {"jane.doe+x", "jane", "doe", "acme-cable", "janeqdoe"} <= set(words)
    assert "q" not in words and "x" not in words  # too short to matter


def test_length_bounds() -> None:
    assert password_problems("Zq8#vK2!mW4") == ["use at least 12 characters"]  # 11, strong otherwise
    assert password_problems("Zq8#vK2!mW4$") == []
    assert password_problems("correct horse battery staple " * 4 + "x" * 12) == []  # 128
    assert password_problems("correct horse battery staple " * 4 + "x" * 13) == ["use at most 128 characters"]


def test_a_long_password_is_estimated_quickly() -> None:
    started = time.perf_counter()
    password_problems("ab" * 64)
    assert time.perf_counter() - started < 5  # zxcvbn sees at most 72 characters (about 70 ms, not seconds)


# --- e-mail addresses ----------------------------------------------------------------------------


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"


@pytest.mark.parametrize(
    "spelling",
    [
        "\u017ftaff@scte.example",  # LATIN SMALL LETTER LONG S
        "\uff53taff@scte.example",  # FULLWIDTH LATIN SMALL LETTER S
        "staff@\uff53cte.example",
        "STAFF@scte.example",
        "STAFF@SCTE.EXAMPLE".translate({c: c + 0xFEE0 for c in range(0x41, 0x5B)}),  # full-width,
    ],
)
def test_lookalike_spellings_meet_the_same_account(spelling: str) -> None:
    assert normalize_email(spelling) == "staff@scte.example"


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("staff@scte.example.", "period"),
        ("\u0455taff@scte.example", "Internationalized"),  # CYRILLIC SMALL LETTER DZE looks like s
        ("st\u00adaff@scte.example", "Internationalized"),  # SOFT HYPHEN, invisible
        ("staff\x00@scte.example", "not a usable"),
        ("", "not a usable"),
        ("jane", "not a usable"),
        ("jane@", "not a usable"),
        ("@example.com", "not a usable"),
        ("jane@example", "not a usable"),
        ("a b@example.com", "not a usable"),
        ("jane@localhost", "not a usable"),
        ("jane@scte.test", "special-use"),
        ("x" * 250 + "@example.com", "254"),
    ],
)
def test_unusable_emails_are_refused(email: str, why: str) -> None:
    with pytest.raises(MembersError, match=why):
        normalize_email(email)


def test_a_lookalike_domain_is_stored_in_its_ascii_form() -> None:
    # a Cyrillic letter in the domain cannot pass for scte.example: it is stored (and shown) as punycode
    assert normalize_email("staff@\u0455cte.example") == "staff@xn--cte-ehd.example"


# --- display names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Jane\x00Doe", "control"),
        ("Jane\nDoe", "control"),
        ("Jane\u202eeoD", "bidirectional"),  # RIGHT-TO-LEFT OVERRIDE
        ("\u2066Jane\u2069", "bidirectional"),  # LEFT-TO-RIGHT ISOLATE ... POP DIRECTIONAL ISOLATE
        ("Jane\u200fDoe", "bidirectional"),  # RIGHT-TO-LEFT MARK
    ],
)
def test_display_names_refuse_control_and_bidi_characters(name: str, why: str) -> None:
    with pytest.raises(MembersError, match=why):
        validate_profile(Profile("m-1", EMAIL, name))
    with pytest.raises(MembersError, match=why):
        validate_profile(Profile("m-1", EMAIL, "Jane", city=name))


def test_display_names_in_other_scripts_are_kept() -> None:
    assert validate_profile(Profile("m-1", EMAIL, "  José   Åström ")).display_name == "José Åström"
    assert validate_profile(Profile("m-1", EMAIL, "محمد علي")).display_name == "محمد علي"


# --- the hashing pool ------------------------------------------------------------------------------


async def test_the_pool_verifies_and_refuses() -> None:
    pool = HashingPool(workers=1, queue=1)
    try:
        stored = await pool.hash("correct horse battery staple")
        assert await pool.verify(stored, "correct horse battery staple") == (True, False)
        assert await pool.verify(stored, "correct horse battery stapl") == (False, False)
        assert await pool.verify(None, "anything") == (False, False)
        assert await pool.verify(UNUSABLE_HASH, "") == (False, False)
        assert await pool.verify("not a hash", "x") == (False, False)
    finally:
        pool.close()


async def test_a_full_pool_refuses_at_once_and_recovers() -> None:
    pool = HashingPool(workers=1, queue=2, max_wait=600)  # the count bounds it here, whatever the pace
    stored = hash_password("correct horse battery staple")
    try:
        busy = [asyncio.create_task(pool.verify(stored, f"guess {i}")) for i in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(HashingBusy) as refused:
            await pool.verify(stored, "one too many")
        assert refused.value.retry_after >= 1
        assert [await task for task in busy] == [(False, False)] * 3
        assert pool.pending == 0
        assert await pool.verify(stored, "correct horse battery staple") == (True, False)
    finally:
        pool.close()


async def test_a_caller_that_gives_up_keeps_its_slot_until_the_hash_ends() -> None:
    pool = HashingPool(workers=1, queue=0, max_wait=600)
    stored = hash_password("correct horse battery staple")
    try:
        task = asyncio.create_task(pool.verify(stored, "guess"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(HashingBusy):  # the thread still hashes: its slot is not free yet
            await pool.verify(stored, "next")
        for _ in range(1000):  # the hash ends within a second or so
            if not pool.pending:
                break
            await asyncio.sleep(0.01)
        assert pool.pending == 0
    finally:
        pool.close()


async def test_a_hash_expected_to_wait_too_long_is_refused() -> None:
    pool = HashingPool(workers=1, queue=16, max_wait=0.05)
    stored = hash_password("correct horse battery staple")
    try:
        await pool.verify(stored, "sets the pace")  # one hash: the pace is known (tens of ms at least)
        pool._pace = 1.0  # as on a busy host: a second per hash
        running = asyncio.create_task(pool.verify(stored, "runs at once"))
        await asyncio.sleep(0)
        with pytest.raises(HashingBusy) as refused:  # one ahead of it: about a second's wait > 0.05 s
            await pool.verify(stored, "would wait")
        assert refused.value.retry_after >= 1
        assert await running == (False, False)
    finally:
        pool.close()
