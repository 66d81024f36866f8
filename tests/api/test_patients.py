"""Patients over HTTP (app/api/patients.py): register, find by phone or UHID, read."""

from __future__ import annotations

import httpx

from tests.api.helpers import API, issue


async def test_register_find_and_get_a_patient(receptionist: httpx.AsyncClient) -> None:
    created = await receptionist.post(
        f"{API}/patients",
        json={
            "name": "Meena Pillai",
            "phone": "+919812345670",
            "uhid": "MRN/2024-17",
            "gender": "FEMALE",
            "date_of_birth": "1961-04-09",
            "preferred_language": "hi",
        },
    )
    assert created.status_code == 201, created.text
    patient = created.json()
    assert (patient["name"], patient["uhid"], patient["gender"], patient["date_of_birth"]) == (
        "Meena Pillai",
        "MRN/2024-17",
        "FEMALE",
        "1961-04-09",
    )

    by_phone = await receptionist.get(f"{API}/patients", params={"phone": "+919812345670"})
    assert by_phone.status_code == 200
    assert [p["patient_id"] for p in by_phone.json()] == [patient["patient_id"]]

    by_uhid = await receptionist.get(f"{API}/patients", params={"uhid": "MRN/2024-17"})
    assert [p["patient_id"] for p in by_uhid.json()] == [patient["patient_id"]]

    assert (
        await receptionist.get(f"{API}/patients", params={"phone": "+919800000000"})
    ).json() == []

    read = await receptionist.get(f"{API}/patients/{patient['patient_id']}")
    assert read.status_code == 200
    assert read.json() == patient


async def test_register_without_uhid_generates_one(admin: httpx.AsyncClient) -> None:
    created = await admin.post(f"{API}/patients", json={"name": "Ravi", "phone": "9876501234"})
    assert created.status_code == 201, created.text
    assert created.json()["uhid"]
    assert created.json()["preferred_language"] == "en"


async def test_token_for_a_known_uhid_reuses_the_patient(
    receptionist: httpx.AsyncClient, hospital
) -> None:
    patient = {"name": "Kiran Rao", "phone": "9811122233", "uhid": "UH-555"}
    first = await issue(receptionist, hospital.doctor, patient=patient)
    second = await issue(receptionist, hospital.doctors[1], patient=patient)
    assert first["patient_id"] == second["patient_id"]
    found = (await receptionist.get(f"{API}/patients", params={"uhid": "UH-555"})).json()
    assert len(found) == 1


async def test_phone_numbers_as_people_write_them_are_stored_one_way(receptionist: httpx.AsyncClient) -> None:
    """Issue 13: "98765 43210" is how Indians write a number; it must not be refused."""
    for written in ("98765 43210", "+91-98765-43210", "098765 43210", "(0091) 9876543210"):
        created = await receptionist.post(f"{API}/patients", json={"name": f"P {written}", "phone": written})
        assert created.status_code == 201, (written, created.text)
        assert created.json()["phone"] == "+919876543210", written
    found = (await receptionist.get(f"{API}/patients", params={"phone": "98765-43210"})).json()
    assert len(found) == 4
    refused = await receptionist.post(f"{API}/patients", json={"name": "X", "phone": "12345 67890"})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["field"] == "phone" and "10-digit mobile number" in error["message"], error


async def test_the_same_name_and_phone_again_is_the_same_patient(receptionist: httpx.AsyncClient, hospital) -> None:
    """Issue 13: registering the same person twice at the desk made two patient records."""
    first = await issue(receptionist, hospital.doctor, patient={"name": "Sunita Devi", "phone": "98111 22334"})
    second = await issue(receptionist, hospital.doctors[1],
                         patient={"name": "sunita devi ", "phone": "+919811122334"})
    assert first["patient_id"] == second["patient_id"]
    other = await issue(receptionist, hospital.doctors[1], patient={"name": "Anil Devi", "phone": "9811122334"})
    assert other["patient_id"] != first["patient_id"]  # a family shares a phone: a new record
