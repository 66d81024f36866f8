"""Every rule of the schema, broken on purpose with plain SQL: the database must refuse it."""

from __future__ import annotations

import uuid
from datetime import time

import asyncpg
import pytest

from tests.db.helpers import raises_sqlstate, set_status
from tests.support import factory

pytestmark = pytest.mark.calendar

NOT_NULL = "23502"
FOREIGN_KEY = "23503"
UNIQUE = "23505"
CHECK = "23514"


async def refused(
    conn: asyncpg.Connection, sqlstate: str, sql: str, *args: object, constraint: str | None = None
) -> asyncpg.PostgresError:
    """Run sql in a savepoint and assert it fails with sqlstate (and constraint, if given)."""
    with raises_sqlstate(sqlstate) as info:
        async with conn.transaction():
            await conn.execute(sql, *args)
    if constraint is not None:
        assert info.value.constraint_name == constraint, info.value
    error: asyncpg.PostgresError = info.value
    return error


async def populated_hospital(
    pool: asyncpg.Pool,
) -> tuple[factory.Hospital, uuid.UUID, asyncpg.Record]:
    """A hospital with one row in every table it owns; returns (hospital, staff user, token)."""
    hospital = await factory.make_hospital(pool)
    token = await factory.issue(pool, hospital)
    hid = hospital.hospital_id
    user_id = await pool.fetchval(
        """INSERT INTO staff_users (hospital_id, username, password_hash, role)
           VALUES ($1, $2, 'x', 'admin') RETURNING user_id""",
        hid,
        f"u_{hospital.code.lower()}",
    )
    await pool.execute(
        """INSERT INTO schedule_exceptions (doctor_id, exception_type, start_datetime, end_datetime)
           VALUES ($1, 'TRAINING', opd_now(), opd_now() + interval '1 hour')""",
        hospital.doctor.doctor_id,
    )
    await pool.execute(
        "INSERT INTO doctor_performance_metrics (doctor_id, metric_date) VALUES ($1, current_date)",
        hospital.doctor.doctor_id,
    )
    await pool.execute(
        "INSERT INTO system_alerts (hospital_id, alert_type, message) VALUES ($1, 'LONG_WAIT', '')",
        hid,
    )
    await pool.execute(
        """INSERT INTO notifications_log (patient_id, token_id, channel, event_type, message)
           VALUES ($1, $2, 'SMS', 'CALL_NOW', 'x')""",
        token["patient_id"],
        token["token_id"],
    )
    await pool.execute(
        "INSERT INTO login_events (username, user_id, succeeded) VALUES ($1, $2, true)",
        f"u_{hospital.code.lower()}",
        user_id,
    )
    return hospital, user_id, token


async def parent_index(conn: asyncpg.Connection, error: asyncpg.PostgresError) -> str:
    """The partitioned index on tokens that a violated partition index belongs to."""
    name: str = await conn.fetchval(
        "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = to_regclass($1)",
        error.constraint_name,
    )
    return name


# Per table, how to find this test's row (formatted with our own UUIDs: no user input).
IN_HOSPITAL = "dept_id IN (SELECT dept_id FROM departments WHERE hospital_id = '{hospital}')"
ROW_OF_TABLE = {
    "hospitals": "hospital_id = '{hospital}'",
    "departments": "hospital_id = '{hospital}'",
    "cabins": IN_HOSPITAL,
    "staff_users": "user_id = '{user}'",
    "api_keys": "hospital_id = '{hospital}'",
    "doctors": "doctor_id = '{doctor}'",
    "cabin_doctors": "doctor_id = '{doctor}'",
    "patients": "hospital_id = '{hospital}'",
    "token_counters": IN_HOSPITAL,
    "tokens": "token_id = '{token}'",
    "token_history": "token_id = '{token}'",
    "schedule_exceptions": "doctor_id = '{doctor}'",
    "doctor_performance_metrics": "doctor_id = '{doctor}'",
    "system_alerts": "hospital_id = '{hospital}'",
    "notifications_log": "token_id = '{token}'",
    "login_events": "user_id = '{user}'",
}


async def test_every_not_null_column_refuses_null(pool: asyncpg.Pool) -> None:
    hospital, user_id, token = await populated_hospital(pool)
    ids = {
        "hospital": hospital.hospital_id,
        "doctor": hospital.doctor.doctor_id,
        "token": token["token_id"],
        "user": user_id,
    }
    columns = await pool.fetch(
        """SELECT c.relname AS table_name, a.attname AS column_name
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           WHERE c.relname = ANY($1::text[]) AND a.attnum > 0 AND NOT a.attisdropped
             AND a.attnotnull
           ORDER BY 1, a.attnum""",
        list(ROW_OF_TABLE),
    )
    assert len(columns) > 100
    async with pool.acquire() as conn, conn.transaction():
        # Triggers off (history's append-only trigger would answer first): this is about the
        # NOT NULL constraints themselves. Everything is rolled back.
        await conn.execute("SET LOCAL session_replication_role = replica")
        for col in columns:
            table, column = col["table_name"], col["column_name"]
            where = ROW_OF_TABLE[table].format(**ids)
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}") >= 1, col
            # NULL in the partition key cannot even be routed to a partition.
            expected = CHECK if (table, column) == ("tokens", "visit_date") else NOT_NULL
            await refused(conn, expected, f'UPDATE {table} SET "{column}" = NULL WHERE {where}')


async def test_hospital_checks(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    hid = hospital.hospital_id
    async with pool.acquire() as conn:
        upd = "UPDATE hospitals SET {} WHERE hospital_id = $1"
        await refused(
            conn,
            CHECK,
            upd.format("geofence_radius = 0"),
            hid,
            constraint="hospitals_geofence_radius_check",
        )
        await refused(conn, CHECK, upd.format("geofence_radius = -5"), hid)
        await refused(
            conn, CHECK, upd.format("latitude = 90.5"), hid, constraint="hospitals_latitude_check"
        )
        await refused(conn, CHECK, upd.format("latitude = -90.00000001"), hid)
        await refused(
            conn,
            CHECK,
            upd.format("longitude = 180.5"),
            hid,
            constraint="hospitals_longitude_check",
        )
        await refused(conn, CHECK, upd.format("longitude = -181"), hid)
        await refused(
            conn,
            CHECK,
            upd.format("timezone = 'Mars/Olympus_Mons'"),
            hid,
            constraint="chk_hospital_timezone",
        )
        await refused(
            conn, CHECK, upd.format("timezone = 'IST+99'"), hid, constraint="chk_hospital_timezone"
        )
        await refused(conn, CHECK, upd.format("status = 'CLOSED'"), hid)
        # Boundaries and real zones are fine.
        await conn.execute(
            upd.format(
                "latitude = -90, longitude = 180, geofence_radius = 1, "
                "timezone = 'America/St_Johns'"
            ),
            hid,
        )


async def test_department_cabin_doctor_patient_checks(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    did, doc = hospital.dept_id, hospital.doctor.doctor_id
    async with pool.acquire() as conn:
        dept = "UPDATE departments SET {} WHERE dept_id = $1"
        await refused(
            conn,
            CHECK,
            dept.format("color_code = 'blue'"),
            did,
            constraint="departments_color_code_check",
        )
        await refused(conn, CHECK, dept.format("color_code = '#12345G'"), did)
        await refused(conn, CHECK, dept.format("color_code = '#12345'"), did)
        await refused(
            conn, CHECK, dept.format("code = 'card'"), did, constraint="departments_code_check"
        )
        await refused(conn, CHECK, dept.format("avg_consultation_time = 0"), did)
        await refused(conn, CHECK, dept.format("buffer_time = -1"), did)
        await refused(conn, CHECK, dept.format("max_tokens_per_day = 0"), did)
        await conn.execute(dept.format("color_code = '#a0B1c2'"), did)

        await refused(
            conn,
            CHECK,
            "UPDATE cabins SET capacity = 0 WHERE cabin_id = $1",
            hospital.doctor.cabin_id,
        )
        await refused(
            conn,
            CHECK,
            "UPDATE cabins SET equipment = '{}' WHERE cabin_id = $1",
            hospital.doctor.cabin_id,
        )
        await refused(conn, CHECK, "UPDATE doctors SET phone = 'call me' WHERE doctor_id = $1", doc)
        await refused(
            conn, CHECK, "UPDATE doctors SET status = 'RETIRED' WHERE doctor_id = $1", doc
        )
        await refused(
            conn, CHECK, "UPDATE doctors SET max_tokens_per_session = 0 WHERE doctor_id = $1", doc
        )

        pid = await factory.make_patient(pool, hospital)
        await refused(conn, CHECK, "UPDATE patients SET name = '   ' WHERE patient_id = $1", pid)
        await refused(
            conn, CHECK, "UPDATE patients SET uhid = 'has space' WHERE patient_id = $1", pid
        )
        await refused(conn, CHECK, "UPDATE patients SET gender = 'X' WHERE patient_id = $1", pid)


async def test_shift_end_after_start_and_exception_types(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    doc, cabin = hospital.doctor.doctor_id, hospital.doctor.cabin_id
    async with pool.acquire() as conn:
        shift = """INSERT INTO cabin_doctors
                       (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time)
                   VALUES ($1, $2, current_date + 3, $3, $4)"""
        await refused(
            conn, CHECK, shift, cabin, doc, time(14), time(9), constraint="cabin_doctors_check"
        )
        await refused(
            conn, CHECK, shift, cabin, doc, time(9), time(9), constraint="cabin_doctors_check"
        )
        await conn.execute(shift, cabin, doc, time(9), time(9, 1))

        leave = """INSERT INTO schedule_exceptions
                       (doctor_id, exception_type, start_datetime, end_datetime)
                   VALUES ($1, $2, opd_now(), opd_now() + make_interval(mins => $3))"""
        await refused(conn, CHECK, leave, doc, "VACATION", 60, constraint="chk_exception_type")
        await refused(conn, CHECK, leave, doc, "planned_leave", 60, constraint="chk_exception_type")
        await refused(
            conn, CHECK, leave, doc, "PLANNED_LEAVE", 0, constraint="schedule_exceptions_check"
        )
        for kind in ("PLANNED_LEAVE", "UNPLANNED_LEAVE", "EMERGENCY", "TRAINING", "SURGERY"):
            await conn.execute(leave, doc, kind, 60)


async def test_token_checks(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    walk_in = await factory.issue(pool, hospital)
    emergency = await factory.issue(pool, hospital, booking_type="EMERGENCY", priority=1)
    assert emergency["priority"] == 3  # the emergency rule, applied on issue
    async with pool.acquire() as conn:
        tok = "UPDATE tokens SET {} WHERE token_id = $1"
        # Through the triggers, as any client would.
        await refused(conn, CHECK, tok.format("priority = 4"), walk_in["token_id"])
        await refused(conn, CHECK, tok.format("priority = 0"), walk_in["token_id"])
        err = await refused(conn, "OPD10", tok.format("status = 'LOST'"), walk_in["token_id"])
        assert "cannot go from CHECKED_IN to LOST" in str(err)
        await refused(conn, "OPD16", tok.format("priority = 1"), emergency["token_id"])
        await refused(conn, CHECK, tok.format("check_in_latitude = 91"), walk_in["token_id"])
        await refused(conn, CHECK, tok.format("check_in_longitude = -180.1"), walk_in["token_id"])
        await refused(conn, CHECK, tok.format("notes = '[]'"), walk_in["token_id"])

        # The constraints themselves, with triggers out of the way.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await refused(
                conn,
                CHECK,
                tok.format("status = 'LOST'"),
                walk_in["token_id"],
                constraint="chk_status",
            )
            await refused(
                conn,
                CHECK,
                tok.format("priority = 1"),
                emergency["token_id"],
                constraint="chk_emergency_priority",
            )
            await refused(
                conn,
                CHECK,
                tok.format("booking_type = 'EMERGENCY'"),
                walk_in["token_id"],
                constraint="chk_emergency_priority",
            )
            await refused(conn, CHECK, tok.format("booking_type = 'PHONE'"), walk_in["token_id"])
            await refused(conn, CHECK, tok.format("serial = 0"), walk_in["token_id"])
            await refused(
                conn,
                CHECK,
                tok.format(
                    "consultation_start_time = opd_now(), "
                    "consultation_end_time = opd_now() - interval '1 minute'"
                ),
                walk_in["token_id"],
                constraint="chk_consultation_order",
            )
            await conn.execute("RESET session_replication_role")

        # A new token cannot start mid-lifecycle.
        patient = await factory.make_patient(pool, hospital)
        await refused(
            conn,
            "OPD10",
            """INSERT INTO tokens (hospital_id, patient_id, doctor_id, status, token_number,
                                   serial, tracking_code, visit_date)
               VALUES ($1, $2, $3, 'WAITING', 'x', 1, 'x', hospital_today($1))""",
            hospital.hospital_id,
            patient,
            hospital.doctor.doctor_id,
        )


async def test_codes_are_unique_per_hospital_not_globally(pool: asyncpg.Pool) -> None:
    first = await factory.make_hospital(pool, doctors=1)
    second = await factory.make_hospital(pool, doctors=1)
    # Both hospitals have department CARD and doctor E1 (the factory made them).
    assert first.dept_code == second.dept_code == "CARD"
    assert first.doctor.emp_code == second.doctor.emp_code == "E1"
    async with pool.acquire() as conn:
        await refused(
            conn,
            UNIQUE,
            """INSERT INTO departments (hospital_id, name, code, avg_consultation_time)
               VALUES ($1, 'Cardiology 2', 'CARD', 10)""",
            first.hospital_id,
            constraint="departments_hospital_id_code_key",
        )
        await refused(
            conn,
            UNIQUE,
            """INSERT INTO doctors (hospital_id, emp_code, name, specialization,
                                    primary_dept_id, phone)
               VALUES ($1, 'E1', 'Dr. Two', 'Cardiology', $2, '9000000000')""",
            first.hospital_id,
            first.dept_id,
            constraint="doctors_hospital_id_emp_code_key",
        )
        await refused(
            conn,
            UNIQUE,
            "INSERT INTO cabins (dept_id, cabin_number) VALUES ($1, 'C-101')",
            first.dept_id,
            constraint="cabins_dept_id_cabin_number_key",
        )
        await refused(
            conn,
            UNIQUE,
            """INSERT INTO hospitals (code, name, address, latitude, longitude)
               VALUES ($1, 'Dup', 'x', 0, 0)""",
            first.code,
            constraint="hospitals_code_key",
        )

        patient = """INSERT INTO patients (hospital_id, uhid, name, phone)
               VALUES ($1, $2, 'P', '9000000001')"""
        uhid = f"UH-{first.code}"
        await conn.execute(patient, first.hospital_id, uhid)
        await conn.execute(patient, second.hospital_id, uhid)
        await refused(
            conn,
            UNIQUE,
            patient,
            first.hospital_id,
            uhid,
            constraint="patients_hospital_id_uhid_key",
        )

        user = """INSERT INTO staff_users (hospital_id, username, password_hash, role)
                  VALUES ($1, $2, 'x', 'admin')"""
        await conn.execute(user, first.hospital_id, f"desk_{first.code}")
        await refused(conn, UNIQUE, user, second.hospital_id, f"desk_{first.code}")


async def test_foreign_keys(pool: asyncpg.Pool) -> None:
    first = await factory.make_hospital(pool, doctors=1)
    second = await factory.make_hospital(pool, doctors=1)
    nowhere = uuid.uuid4()
    async with pool.acquire() as conn:
        await refused(
            conn,
            FOREIGN_KEY,
            """INSERT INTO departments (hospital_id, name, code, avg_consultation_time)
               VALUES ($1, 'X', 'X', 10)""",
            nowhere,
        )
        # A doctor's department must be in the doctor's hospital.
        await refused(
            conn,
            FOREIGN_KEY,
            """INSERT INTO doctors (hospital_id, emp_code, name, specialization,
                                   primary_dept_id, phone)
               VALUES ($1, 'E9', 'Dr. X', 'X', $2, '9000000000')""",
            first.hospital_id,
            second.dept_id,
        )
        await refused(
            conn,
            FOREIGN_KEY,
            """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date,
                                          shift_start_time, shift_end_time)
               VALUES ($1, $2, current_date, '09:00', '10:00')""",
            nowhere,
            first.doctor.doctor_id,
        )
        # A token's patient must belong to the token's hospital.
        stranger = await factory.make_patient(pool, second)
        await refused(
            conn,
            FOREIGN_KEY,
            "SELECT (issue_token($1, $2, $3, NULL, 'WALK_IN', 1, NULL, 'x')).token_id",
            first.hospital_id,
            stranger,
            first.doctor.doctor_id,
        )
        # A doctor's API key or login must name a doctor of the same hospital.
        await refused(
            conn,
            FOREIGN_KEY,
            """INSERT INTO api_keys (hospital_id, role, doctor_id, key_prefix, key_hash)
               VALUES ($1, 'doctor', $2, 'x', $3)""",
            first.hospital_id,
            second.doctor.doctor_id,
            uuid.uuid4().bytes,
        )
        await refused(
            conn,
            FOREIGN_KEY,
            """INSERT INTO staff_users (hospital_id, username, password_hash, role,
                                   doctor_id)
               VALUES ($1, $2, 'x', 'doctor', $3)""",
            first.hospital_id,
            f"doc_{first.code}",
            second.doctor.doctor_id,
        )
        token = await factory.issue(pool, first)
        await refused(
            conn,
            FOREIGN_KEY,
            """INSERT INTO token_history (token_id, visit_date, new_status, changed_by)
               VALUES ($1, $2, 'BOOKED', $3)""",
            token["token_id"],
            token["visit_date"],
            nowhere,
        )
        # Hospitals with doctors and patients are not deleted by accident.
        await refused(
            conn, FOREIGN_KEY, "DELETE FROM hospitals WHERE hospital_id = $1", first.hospital_id
        )


async def test_role_doctor_iff_doctor_id(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    hid, doc = hospital.hospital_id, hospital.doctor.doctor_id
    async with pool.acquire() as conn:
        key = """INSERT INTO api_keys (hospital_id, role, doctor_id, key_prefix, key_hash)
                 VALUES ($1, $2, $3, 'x', $4)"""
        await refused(
            conn, CHECK, key, hid, "doctor", None, uuid.uuid4().bytes, constraint="api_keys_check"
        )
        await refused(
            conn, CHECK, key, hid, "admin", doc, uuid.uuid4().bytes, constraint="api_keys_check"
        )
        await refused(conn, CHECK, key, hid, "janitor", None, uuid.uuid4().bytes)
        await conn.execute(key, hid, "doctor", doc, uuid.uuid4().bytes)

        user = """INSERT INTO staff_users (hospital_id, username, password_hash, role, doctor_id)
                  VALUES ($1, $2, 'x', $3, $4)"""
        name = f"dr_{hospital.code}"
        await refused(conn, CHECK, user, hid, name, "doctor", None, constraint="staff_users_check")
        await refused(
            conn, CHECK, user, hid, name, "receptionist", doc, constraint="staff_users_check"
        )
        await refused(
            conn, CHECK, user, hid, "a b", "admin", None, constraint="staff_users_username_check"
        )
        await conn.execute(user, hid, name, "doctor", doc)


async def test_token_numbers_never_repeat(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    first = await factory.issue(pool, hospital)
    # Wind the counter back: the unique index still refuses a second CARD-001.
    await pool.execute(
        "UPDATE token_counters SET last_number = 0 WHERE dept_id = $1", hospital.dept_id
    )
    async with pool.acquire() as conn:
        patient = await factory.make_patient(pool, hospital)
        err = await refused(
            conn,
            UNIQUE,
            "SELECT (issue_token($1, $2, $3, NULL, 'WALK_IN', 1, NULL, 'x')).token_id",
            hospital.hospital_id,
            patient,
            hospital.doctor.doctor_id,
        )
        assert await parent_index(conn, err) == "uq_token_number"
    assert first["token_number"] == "CARD-001"


async def test_one_called_or_in_consultation_per_doctor(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    a = await factory.issue(pool, hospital)
    b = await factory.issue(pool, hospital)
    other_doctor = await factory.issue(pool, hospital, doctor=hospital.doctors[1])
    await set_status(pool, a["token_id"], "WAITING")
    async with pool.acquire() as conn:
        # Plain SQL skips call_next_token's check; the unique index still holds.
        err = await refused(
            conn, UNIQUE, "UPDATE tokens SET status = 'WAITING' WHERE token_id = $1", b["token_id"]
        )
        assert await parent_index(conn, err) == "uq_token_one_active_per_doctor"
        await set_status(conn, a["token_id"], "IN_CONSULTATION")
        await refused(
            conn,
            UNIQUE,
            "UPDATE tokens SET status = 'IN_CONSULTATION' WHERE token_id = $1",
            b["token_id"],
        )
        # Another doctor is not affected.
        await set_status(conn, other_doctor["token_id"], "WAITING")
        await set_status(conn, a["token_id"], "COMPLETED")
        await set_status(conn, b["token_id"], "WAITING")


IDENTITY_CHANGES = {
    "token_number": "token_number = 'CARD-999'",
    "serial": "serial = serial + 100",
    "visit_date": "visit_date = visit_date + 1",
    "tracking_code": "tracking_code = 'forged'",
    "patient_id": "patient_id = $2",
    "hospital_id": "hospital_id = $3",
    "booking_type": "booking_type = 'ONLINE'",
    "token_id": "token_id = gen_random_uuid()",
}


ENGINE_COLUMNS = {"queue_position", "estimated_wait_time", "eta_updated_at", "notified_expected_at"}


def without_engine_columns(row: asyncpg.Record) -> dict:
    return {k: v for k, v in dict(row).items() if k not in ENGINE_COLUMNS}


@pytest.mark.parametrize("column", sorted(IDENTITY_CHANGES))
async def test_token_identity_never_changes(pool: asyncpg.Pool, column: str) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    other = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)
    patient = await factory.make_patient(pool, hospital)
    async with pool.acquire() as conn:
        sql = f"UPDATE tokens SET {IDENTITY_CHANGES[column]} WHERE token_id = $1"
        sql += " AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL"
        err = await refused(conn, "OPD10", sql, token["token_id"], patient, other.hospital_id)
        assert "identity" in str(err)
    after = await pool.fetchrow("SELECT * FROM tokens WHERE token_id = $1", token["token_id"])
    # The suite's running server may write the queue engine's columns back at any moment; every
    # other column must be exactly as issued.
    assert without_engine_columns(after) == without_engine_columns(token)


async def test_token_department_never_changes(pool: asyncpg.Pool) -> None:
    # CARD-001 is numbered by its department's counter; moving it to another department of the
    # same hospital would break numbering (uq_token_number) and the doctor/department pairing.
    hospital = await factory.make_hospital(pool, doctors=1)
    other_dept = await pool.fetchval(
        """INSERT INTO departments (hospital_id, name, code, avg_consultation_time)
           VALUES ($1, 'General', 'GEN', 10) RETURNING dept_id""",
        hospital.hospital_id,
    )
    token = await factory.issue(pool, hospital)
    async with pool.acquire() as conn:
        await refused(
            conn,
            "OPD10",
            "UPDATE tokens SET dept_id = $2 WHERE token_id = $1",
            token["token_id"],
            other_dept,
        )


async def test_token_history_cannot_be_updated(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)
    async with pool.acquire() as conn:
        err = await refused(
            conn,
            "OPD10",
            "UPDATE token_history SET new_status = 'COMPLETED' WHERE token_id = $1",
            token["token_id"],
        )
        assert "append-only" in str(err)


async def test_token_history_cannot_be_deleted(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)
    async with pool.acquire() as conn:
        await refused(
            conn, "OPD10", "DELETE FROM token_history WHERE token_id = $1", token["token_id"]
        )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM token_history WHERE token_id = $1", token["token_id"]
        )
        == 1
    )
