"""The command line: `python -m app <command>` (see README and docs/operations.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.settings import Settings


def database_url(settings: Settings) -> str:
    from app.main import resolve_database_url

    return resolve_database_url(settings)


async def _with_pool(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from app.db.migrate import upgrade
    from app.db.pool import create_pool

    dsn = database_url(settings)
    await upgrade(dsn)
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        return await work(pool)
    finally:
        await pool.close()


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.migrate import upgrade

    applied = asyncio.run(upgrade(database_url(settings)))
    print("applied: " + (", ".join(applied) if applied else "nothing new") + " (functions.sql re-applied when changed)")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.queries import query
    from app.demo import load_demo

    async def work(pool: Any) -> str:
        # The demo's registered texts and messages carry tracking links under the public URL.
        await pool.execute(query("publish_public_url"), settings.base_url())
        return await load_demo(pool)

    summary = asyncio.run(_with_pool(settings, work))
    print(summary)
    return 0


async def _hospital_id(pool: Any, code: str) -> Any:
    hospital_id = await pool.fetchval("SELECT hospital_id FROM hospitals WHERE code = $1", code)
    if hospital_id is None:
        raise SystemExit(f"no hospital with code {code!r} (load the demo with `python -m app demo`)")
    return hospital_id


def cmd_apikey_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.security.identity import create_api_key

    async def work(pool: Any) -> str:
        hospital_id = await _hospital_id(pool, args.hospital)
        doctor_id = None
        if args.role == "doctor":
            if not args.doctor:
                raise SystemExit("--role doctor needs --doctor <emp_code>")
            doctor_id = await pool.fetchval(
                "SELECT doctor_id FROM doctors WHERE hospital_id = $1 AND emp_code = $2",
                hospital_id, args.doctor)
            if doctor_id is None:
                raise SystemExit(f"no doctor with emp_code {args.doctor!r}")
        async with pool.acquire() as conn:
            _, key = await create_api_key(conn, hospital_id, role=args.role, doctor_id=doctor_id,
                                          label=args.label)
        return key

    print(asyncio.run(_with_pool(settings, work)))
    return 0


def cmd_apikey_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(pool: Any) -> list[Any]:
        hospital_id = await _hospital_id(pool, args.hospital)
        return list(await pool.fetch(
            """SELECT key_id, key_prefix, role, label, created_at, last_used_at, revoked_at
               FROM api_keys WHERE hospital_id = $1 ORDER BY created_at""", hospital_id))

    for row in asyncio.run(_with_pool(settings, work)):
        state = "revoked" if row["revoked_at"] else "active"
        print(f"{row['key_id']}  {row['key_prefix']}…  {row['role']:<12} {state:<8} {row['label']}")
    return 0


def cmd_apikey_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(pool: Any) -> str:
        return str(await pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id::text = $1 OR key_prefix = $1",
            args.key))

    result = asyncio.run(_with_pool(settings, work))
    print("revoked" if result != "UPDATE 0" else "no such key")
    return 0 if result != "UPDATE 0" else 1


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.errors import ApiError
    from app.security.accounts import create_user

    async def work(pool: Any) -> str:
        hospital_id = await _hospital_id(pool, args.hospital)
        doctor_id = None
        if args.doctor:
            doctor_id = await pool.fetchval(
                "SELECT doctor_id FROM doctors WHERE hospital_id = $1 AND emp_code = $2", hospital_id, args.doctor)
            if doctor_id is None:
                raise SystemExit(f"no doctor with emp_code {args.doctor!r}")
        async with pool.acquire() as conn:
            try:
                user = await create_user(conn, hospital_id, args.username, args.password, args.role, doctor_id)
            except (ApiError, ValueError) as exc:
                raise SystemExit(str(exc)) from None
        return f"created {user['role']} {user['username']} ({user['user_id']})"

    print(asyncio.run(_with_pool(settings, work)))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    if workers > 1 and not settings.redis_url:
        print("more than one worker needs REDIS_URL: without Redis, live updates cannot cross "
              "processes", file=sys.stderr)
        return 2
    dsn = database_url(settings)
    # The app reads DATABASE_URL; pointing it at the server resolved here means every worker
    # shares the embedded PostgreSQL this process started.
    os.environ["DATABASE_URL"] = dsn
    os.environ.setdefault("OPD_PUBLIC_URL", f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}")  # noqa: S104
    banner = None
    if args.demo:
        from app.db.queries import query
        from app.demo import demo_banner, load_demo

        # The demo's hundreds of patient messages go to a file, not over the server's log.
        os.environ.setdefault("OPD_NOTIFY_LOG_FILE", str(settings.var_dir / "messages.log"))

        async def demo(pool: Any) -> str:
            # Before the demo's messages are made: their tracking links need the host.
            await pool.execute(query("publish_public_url"), os.environ["OPD_PUBLIC_URL"])
            await load_demo(pool)
            return await demo_banner(pool, os.environ["OPD_PUBLIC_URL"], settings.var_dir / "demo-api-key",
                                     Path(os.environ["OPD_NOTIFY_LOG_FILE"]))

        banner = asyncio.run(_with_pool(Settings.from_env(), demo))
        print(banner, flush=True)
        # Again once the server answers: the last thing on the screen, not scrolled away by
        # the start-up log.
        threading.Thread(target=_print_when_up, args=(os.environ["OPD_PUBLIC_URL"], banner), daemon=True).start()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics adds the workers up from files they each write (app/metrics.py); emptied at
        # each start, as the library requires.
        metrics_dir = settings.var_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run("app.main:app", host=host, port=port, workers=workers, proxy_headers=True,
                forwarded_allow_ips=",".join(settings.trusted_proxies) or "127.0.0.1",
                # Compression off: it would compress each frame again for every client, undoing
                # "serialize once per topic" (docs/performance.md).
                ws_max_size=64 * 1024, ws_per_message_deflate=False, ws_ping_interval=settings.ws_ping_s,
                ws_ping_timeout=settings.ws_ping_s, log_level=settings.log_level.lower())
    if not settings.database_url:
        print(f"\nThe embedded PostgreSQL ({settings.var_dir / 'pgdata'}) is still running, so the next start is "
              "quick. Stop it with: python3 -m app down", flush=True)
    return 0


def _print_when_up(base_url: str, banner: str, timeout_s: float = 120.0) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2):  # noqa: S310 - our own URL
                break
        except OSError:
            time.sleep(0.5)
    else:
        return
    time.sleep(1.0)  # the start-up lines of the engine and the dispatcher come first
    print(banner, flush=True)


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop the embedded PostgreSQL that `up` / `serve` started (it outlives them by design)."""
    from app.db.embedded import stop_embedded

    print(stop_embedded(settings.var_dir))
    return 0


def cmd_engine(args: argparse.Namespace, settings: Settings) -> int:
    """The queue engine alone, in its own process (app/live/engine_process.py)."""
    from app import logs
    from app.live.engine_process import EngineNeedsRedis, run_engine_process

    logs.configure(settings.log_level, settings.log_format)
    try:
        asyncio.run(run_engine_process(settings, database_url(settings)))
    except EngineNeedsRedis as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def cmd_dispatcher(args: argparse.Namespace, settings: Settings) -> int:
    """Only the notifications outbox, in its own process (app/notify/dispatcher.py)."""
    from app import logs
    from app.notify.dispatcher import run_dispatcher_process

    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(run_dispatcher_process(settings, database_url(settings)))
    return 0


def cmd_abdm_bridge(args: argparse.Namespace, settings: Settings) -> int:
    """Tell the ABDM gateway where to call this server (docs/abdm.md)."""
    from app.abdm.gateway import AbdmConfigError, GatewayError, gateway_from_settings

    async def register() -> int:
        gateway = gateway_from_settings(settings)
        if gateway is None:
            print("OPD_ABDM_GATEWAY_URL is not set: Scan & Share is off", file=sys.stderr)
            return 2
        try:
            status = await gateway.register_bridge(args.url or settings.base_url())
        finally:
            await gateway.close()
        print(f"bridge URL {args.url or settings.base_url()}: the gateway answered HTTP {status}")
        return 0 if 200 <= status < 300 else 1

    try:
        return asyncio.run(register())
    except (AbdmConfigError, GatewayError) as exc:
        print(str(exc), file=sys.stderr)
        return 2


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """A pg_dump archive of the database (app/db/backup.py)."""
    from app.db.backup import BackupError, backup

    try:
        path = asyncio.run(backup(database_url(settings), Path(args.out) if args.out else None,
                                  settings.var_dir / "backups"))
    except BackupError as exc:
        print(f"backup refused: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """An archive into an empty database, then brought up to date (app/db/backup.py)."""
    from app.db.backup import BackupError, restore

    try:
        applied = asyncio.run(restore(database_url(settings), Path(args.archive)))
    except BackupError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 2
    print(f"restored {args.archive}" + (f"; upgraded with {', '.join(applied)}" if applied else ""))
    return 0


def cmd_maintenance(args: argparse.Namespace, settings: Settings) -> int:
    """Partitions ready, old tokens archived, metrics and alerts up to date; safe to run anytime."""
    import json

    async def work(pool: Any) -> dict[str, Any]:
        report: dict[str, Any] = {}
        report["partitions_created"] = await pool.fetchval("SELECT ensure_token_partitions(2)")
        archived, rounds = 0, []
        while True:  # small batches: short transactions beside live traffic
            result = await pool.fetchval("SELECT archive_old_tokens($1, $2)", args.keep_days, args.batch)
            rounds.append(result)
            archived += result["archived"]
            if result["archived"] < args.batch:
                break
        report["archived_tokens"] = archived
        report["dropped_partitions"] = [p for r in rounds for p in r["dropped_partitions"]]
        report["archive_cutoff"] = rounds[-1]["cutoff"]
        metrics = {}
        for row in await pool.fetch("SELECT hospital_id, code, hospital_today(hospital_id) AS today FROM hospitals"):
            done = 0
            for days_back in (1, 0):  # yesterday's final figures and today's so far
                done += await pool.fetchval("SELECT compute_doctor_metrics($1, $2::date - $3::int)",
                                            row["hospital_id"], row["today"], days_back)
            metrics[row["code"]] = {"doctor_days": done,
                                    "open_alerts": await pool.fetchval("SELECT check_hospital_alerts($1)",
                                                                       row["hospital_id"])}
        report["hospitals"] = metrics
        return report

    print(json.dumps(asyncio.run(_with_pool(settings, work)), indent=2, default=str))
    return 0


def cmd_eta_report(args: argparse.Namespace, settings: Settings) -> int:
    """How accurate the ETAs shown to patients were (docs/eta.md)."""
    from app.eta_report import eta_report, format_report

    async def work(pool: Any) -> str:
        try:
            first, last, report = await eta_report(pool, args.hospital, args.first, args.last)
        except ValueError as exc:
            raise SystemExit(f"eta-report: {exc}") from None
        return format_report(first, last, report)

    print(asyncio.run(_with_pool(settings, work)))
    return 0


def cmd_messages_preview(args: argparse.Namespace, settings: Settings) -> int:
    """Each message as each provider would receive it, sent nowhere (docs/operations.md)."""
    from app.notify.preview import PreviewError, format_preview, preview_messages

    async def work(pool: Any) -> str:
        hospital_id = await _hospital_id(pool, args.hospital)
        try:
            return format_preview(await preview_messages(pool, settings, hospital_id, args.event, args.language))
        except PreviewError as exc:
            raise SystemExit(f"messages-preview: {exc}") from None

    print(asyncio.run(_with_pool(settings, work)))
    return 0


def cmd_settings_table(args: argparse.Namespace, settings: Settings) -> int:
    """The settings table of docs/operations.md, generated from app/settings.py."""
    from app.settings import settings_table

    print(settings_table())
    return 0


def _iso_date(text: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from app.simulate import run_simulation

    return asyncio.run(run_simulation(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="OPD Queue Board")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply sql/ to DATABASE_URL").set_defaults(func=cmd_db_upgrade)

    sub.add_parser("demo", help="load the demo hospital DEMO (idempotent)").set_defaults(func=cmd_demo)
    sub.add_parser("down", help="stop the embedded PostgreSQL that `up` or `serve` started").set_defaults(
        func=cmd_down)

    apikey = sub.add_parser("apikey", help="staff API keys").add_subparsers(dest="apikey_command", required=True)
    create = apikey.add_parser("create", help="print a new API key, alone on stdout")
    create.add_argument("--hospital", required=True, help="hospital code, e.g. DEMO")
    create.add_argument("--role", default="admin", choices=["admin", "receptionist", "doctor"])
    create.add_argument("--doctor", help="the doctor's emp_code, for --role doctor")
    create.add_argument("--label", default="", help="a note to recognise the key by")
    create.set_defaults(func=cmd_apikey_create)
    listing = apikey.add_parser("list", help="list a hospital's keys")
    listing.add_argument("--hospital", required=True)
    listing.set_defaults(func=cmd_apikey_list)
    revoke = apikey.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key")
    revoke.set_defaults(func=cmd_apikey_revoke)

    user = sub.add_parser("user", help="staff accounts").add_subparsers(dest="user_command", required=True)
    user_create = user.add_parser("create", help="create a staff account (the first admin, or for scripts)")
    user_create.add_argument("--hospital", required=True, help="hospital code, e.g. DEMO")
    user_create.add_argument("--role", required=True, choices=["admin", "receptionist", "doctor"])
    user_create.add_argument("--username", required=True)
    user_create.add_argument("--password", required=True)
    user_create.add_argument("--doctor", help="the doctor's emp_code, for --role doctor")
    user_create.set_defaults(func=cmd_user_create)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--demo", action="store_true", help="load the demo hospital first and print its URLs")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("engine", help="run only the queue engine (web processes then set OPD_ENGINE=off)"
                   ).set_defaults(func=cmd_engine)
    sub.add_parser("dispatcher", help="run only the message outbox (web processes then set OPD_DISPATCHER=off)"
                   ).set_defaults(func=cmd_dispatcher)

    bridge = sub.add_parser("abdm-bridge", help="register this server's URL with the ABDM gateway (Scan & Share)")
    bridge.add_argument("--url", help="the public base URL the gateway calls (default: OPD_PUBLIC_URL)")
    bridge.set_defaults(func=cmd_abdm_bridge)

    backup = sub.add_parser("backup", help="write a pg_dump archive of the database (var/backups/ by default)")
    backup.add_argument("--out", help="the archive's file name (must not exist yet)")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="restore an archive into DATABASE_URL, which must be empty")
    restore.add_argument("archive")
    restore.set_defaults(func=cmd_restore)

    maintenance = sub.add_parser("maintenance", help="partitions, archive, metrics, alerts (safe to run anytime)")
    maintenance.add_argument("--keep-days", type=int, default=90, help="archive tokens older than this")
    maintenance.add_argument("--batch", type=int, default=5000, help="tokens moved per transaction")
    maintenance.set_defaults(func=cmd_maintenance)

    report = sub.add_parser("eta-report", help="how accurate the ETAs shown to patients were")
    report.add_argument("--hospital", help="hospital code (default: every hospital)")
    report.add_argument("--from", dest="first", type=_iso_date, 
                        help="first day, YYYY-MM-DD (default: 6 days before --to)")
    report.add_argument("--to", dest="last", type=_iso_date, help="last day, YYYY-MM-DD (default: today)")
    report.set_defaults(func=cmd_eta_report)

    preview = sub.add_parser("messages-preview", help="each message as each SMS/WhatsApp/push provider would "
                             "receive it (sent nowhere)")
    preview.add_argument("--hospital", default="DEMO", help="hospital code (default DEMO)")
    preview.add_argument("--event", default="TOKEN_CREATED",
                         help="TOKEN_CREATED (default), T_MINUS_3, CALL_NOW, DELAYED, RESCHEDULED or CANCELLED")
    preview.add_argument("--language", default="en", choices=("en", "hi"))
    preview.set_defaults(func=cmd_messages_preview)

    sub.add_parser("settings-table", help="print the settings table of docs/operations.md (from app/settings.py)"
                   ).set_defaults(func=cmd_settings_table)

    simulate = sub.add_parser("simulate", help="drive the demo hospital like a real OPD morning")
    simulate.add_argument("--url", default=None, help="server base URL (default OPD_PUBLIC_URL or http://127.0.0.1:8000)")
    simulate.add_argument("--key", default=os.environ.get("OPD_API_KEY"), help="admin API key (or OPD_API_KEY)")
    simulate.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    simulate.add_argument("--minutes", type=float, default=None,
                          help="simulated minutes to run (default: until stopped with Ctrl+C)")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args, Settings.from_env())
    return result
