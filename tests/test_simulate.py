"""`python -m app simulate` moves every doctor of the demo hospital, including those the demo
leaves with a patient called and not seen, and its summary counts what the API refused."""

from __future__ import annotations

import argparse

import asyncpg

from app.api.auth import create_api_key
from app.demo import HOSPITAL_CODE, load_demo
from app.simulate import run_simulation
from tests.support.app_server import AppServer


async def test_every_demo_doctor_moves_within_simulated_minutes(server: AppServer, pool: asyncpg.Pool,
                                                                capsys: object) -> None:
    await load_demo(pool)
    hospital_id = await pool.fetchval("SELECT hospital_id FROM hospitals WHERE code = $1", HOSPITAL_CODE)
    async with pool.acquire() as conn:
        _, key = await create_api_key(conn, hospital_id, role="admin")
    started = await pool.fetchval("SELECT opd_now()")
    # 50 simulated minutes in 10 real seconds: the late doctor starts 30 minutes in.
    args = argparse.Namespace(url=server.base_url, key=key, speed=300.0, minutes=50.0, seed=3)
    assert await run_simulation(args) == 0
    on_shift = await pool.fetch(
        """SELECT d.doctor_id, d.name FROM doctors d JOIN cabin_doctors a USING (doctor_id)
           WHERE d.hospital_id = $1 AND a.shift_date = hospital_today($1)""", hospital_id)
    moved = {r["doctor_id"] for r in await pool.fetch(
        """SELECT DISTINCT t.doctor_id FROM token_history h JOIN tokens t USING (token_id)
           WHERE t.hospital_id = $1 AND h.changed_at >= $2 AND h.new_status = 'WAITING'""",
        hospital_id, started)}
    assert [r["name"] for r in on_shift if r["doctor_id"] not in moved] == []
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "refused (4xx):" in out and "done:" in out
