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
