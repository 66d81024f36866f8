"""Public topics carry no personal data: a patient's token: topic shows only their own token,
and no token, board or door topic ever carries a patient's name or phone number."""

from __future__ import annotations

import json

from tests.live.actions import call_next, issue_token, token_action, wait_converged
from tests.live.conftest import staff_http
from tests.support import factory
from tests.support.ws_client import live_client

# Distinctive, so that any appearance in a frame is a leak and not a coincidence.
PATIENTS = [("Zephyrine Quillfeather", "+919811100001"), ("Barnabus Oxleywhite", "+919811100002"),
            ("Ottoline Marchbanks", "+919811100003"), ("Perpetua Vandersloot", "+919811100004"),
            ("Leopold Fitzwaring", "+919811100005"), ("Wilhelmina Crookshank", "+919811100006")]


def personal_strings() -> list[str]:
    words = [part for name, _ in PATIENTS for part in name.split()]
    phones = [phone for _, phone in PATIENTS] + [phone[3:] for _, phone in PATIENTS]
    return words + phones


async def test_public_topics_never_carry_names_or_phones(server, hospital, admin):
    first, second = hospital.doctors
    board_topics = [f"department:{hospital.dept_id}", f"hospital:{hospital.hospital_id}",
                    f"cabin:{first.cabin_id}", f"cabin:{second.cabin_id}"]
    async with live_client(server.ws_url, hospital.keys["admin"]) as boards, \
            live_client(server.ws_url) as phones:
        for topic in board_topics:
            await boards.subscribed(topic)
        for topic in (f"doctor:{first.doctor_id}", f"doctor:{second.doctor_id}"):
            await boards.subscribed(topic)  # needed by wait_converged; staff-only, not checked
        tokens = []
        for n, (name, phone) in enumerate(PATIENTS):
            doctor = first if n < 4 else second
            tokens.append(await issue_token(admin, doctor.doctor_id, name=name, phone=phone,
                                            visit_reason="chest pain"))
            await phones.subscribed(f"token:{tokens[-1]['tracking_code']}")

        await call_next(admin, first.doctor_id)
        await token_action(admin, tokens[0]["token_id"], "start")
        await call_next(admin, first.doctor_id, complete_current=True)
        await token_action(admin, tokens[1]["token_id"], "recall")
        await token_action(admin, tokens[3]["token_id"], "transfer",
                           {"to_doctor_id": str(second.doctor_id)})
        await call_next(admin, second.doctor_id)
        await token_action(admin, tokens[4]["token_id"], "no-show")
        await token_action(admin, tokens[5]["token_id"], "cancel", {"reason": "left"})
        codes = [t["tracking_code"] for t in tokens]
        await wait_converged(boards, phones, admin, hospital, codes)

        public = [m for m in boards.messages + phones.messages
                  if m["type"] == "snapshot" and not m["topic"].startswith("doctor:")]
        assert {m["topic"].split(":")[0] for m in public} == {"department", "hospital", "cabin",
                                                               "token"}
        secrets_ = personal_strings() + codes + ["chest pain"]
        for message in public:
            text = json.dumps(message["data"], ensure_ascii=False)
            leaked = [s for s in secrets_ if s in text]
            assert leaked == [], f"{message['topic']} carries {leaked}"
            assert "patient" not in text and "phone" not in text and "uhid" not in text

        # A token topic is about its own token: other tokens appear only as "now serving".
        by_code = {t["tracking_code"]: t for t in tokens}
        for message in phones.messages:
            if message["type"] != "snapshot":
                continue
            own = by_code[message["topic"].removeprefix("token:")]
            data = message["data"]
            assert data["token_number"] == own["token_number"]
            assert data["token_id"] == own["token_id"]
            others = [t for t in tokens if t is not own]
            shown = json.dumps({k: v for k, v in data.items() if k != "now_serving"})
            assert not [t["token_number"] for t in others if t["token_number"] in shown]
            assert not [t["token_id"] for t in others if t["token_id"] in shown]


async def test_boards_that_show_names_show_first_name_and_initial_only(server, pool, admin):
    """A hospital may opt in to names on boards: 'Zephyrine Q.', never the surname or phone."""
    hospital = await factory.make_hospital(pool, shows_names=True)
    key = hospital.keys["admin"]
    doctor = hospital.doctor
    board = f"department:{hospital.dept_id}"
    async with live_client(server.ws_url, key) as boards, \
            staff_http(server, key) as http:
        await boards.subscribed(board)
        tokens = [await issue_token(http, doctor.doctor_id, name=name, phone=phone)
                  for name, phone in PATIENTS[:3]]
        await call_next(http, doctor.doctor_id)
        expected_next = ["Barnabus O.", "Ottoline M."]
        await boards.data_where(board, lambda d: [n["display_name"] for n in d["desks"][0]["next"]]
                                == expected_next and d["desks"][0]["now_serving"] is not None)
        assert boards.snapshots[board]["data"]["desks"][0]["now_serving"]["display_name"] \
            == "Zephyrine Q."
        surnames_and_phones = [name.split()[-1] for name, _ in PATIENTS] + \
            [phone[3:] for _, phone in PATIENTS]
        for message in boards.snapshots_of(board):
            text = json.dumps(message["data"])
            assert [s for s in surnames_and_phones if s in text] == []
        assert len(tokens) == 3

