"""Every setting of the app, declared once: its environment variable, default, meaning and how its
text is read. The table in docs/operations.md is generated from here (`python -m app settings-table`,
held by tests/test_settings_documented.py), so code and documentation cannot disagree."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# Push services a tracker may subscribe with (OPD_WEB_PUSH_HOSTS): the server POSTs to whatever
# endpoint a subscription names, so only these hosts are accepted, never an internal address.
DEFAULT_PUSH_HOSTS = ("fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com",
                      "*.notify.windows.com", "*.push.apple.com")


class Secret(str):
    """A string that does not print itself."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def _comma_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _lower_list(raw: str) -> tuple[str, ...]:
    return tuple(part.lower() for part in _comma_list(raw))


def _bounded_int(raw: str, low: int, high: int) -> int:
    value = int(raw)
    if not low <= value <= high:
        raise ValueError(f"{raw!r} is not between {low} and {high}")
    return value


def _at_least_a_tenth(raw: str) -> float:
    value = float(raw)
    if not value >= 0.1:
        raise ValueError(f"{raw!r} is less than 0.1 seconds")
    return value


def _country_code(raw: str) -> str:
    return raw.strip().lstrip("+")


def setting(env: str, default: Any, meaning: str, *, parse: Callable[[str], Any] | None = None,
            choices: tuple[str, ...] | None = None, shown: str | None = None) -> Any:
    """A Settings field read from the environment variable `env` (unset or empty: the default).
    Its text is read by `parse`, else by the field's type; `choices` lists the values allowed;
    `shown` is the default as the documentation writes it, when not the value itself."""
    metadata = {"env": env, "meaning": meaning, "parse": parse, "choices": choices, "shown": shown}
    return field(default=default, metadata=metadata)


# Read outside Settings: by the metrics library, by the test runner and demo, by the simulator.
OTHER_SETTINGS = {
    "PROMETHEUS_MULTIPROC_DIR": (
        "an empty directory shared by the processes of one machine so `/metrics` adds them up; "
        "`serve --workers N` sets `var/metrics` itself"),
    "OPD_CLOCK_OFFSET_S": (
        "tests and demos only: seconds added to the clock of the app and of its database "
        "sessions (`opd.clock_offset`); set by `python3 -m app up --clock ISO` and `python3 -m "
        "app test --clock ISO`; never set in production"),
    "OPD_API_KEY": (
        "admin API key used by `python -m app simulate` when `--key` is not given"),
}


@dataclass(frozen=True)
class Settings:
    database_url: str | None = setting(
        "DATABASE_URL", None,
        "PostgreSQL DSN (15 or newer); unset runs the embedded PostgreSQL 18 under `var/`")
    redis_url: str | None = setting(
        "REDIS_URL", None,
        "Redis URL: `redis://host:6379/0`, or `unix:///path/redis.sock` when Redis runs on the same "
        "machine (docs/operations.md, \"Database sessions\"); unset uses the in-process bus (one worker only)")
    host: str = setting(
        "HOST", "127.0.0.1",
        "bind address for `serve`")
    port: int = setting(
        "PORT", 8000,
        "HTTP port for `serve` and the Procfile")
    var_dir: Path = setting(
        "OPD_VAR_DIR", REPO_ROOT / "var",
        "where the embedded PostgreSQL keeps its data and the generated secret key",
        shown="./var")
    secret_key: Secret | None = setting(
        "OPD_SECRET_KEY", None,
        "signs session cookies; unset generates one kept in `var/secret_key` (set it when running "
        "several nodes)")
    public_url: str | None = setting(
        "OPD_PUBLIC_URL", None,
        "base URL used in tracking links and QR codes")
    workers: int = setting(
        "OPD_WORKERS", 1,
        "uvicorn worker processes for `serve` (needs `REDIS_URL` when > 1)")
    coalesce_ms: int = setting(
        "OPD_COALESCE_MS", 3,
        "how long the engine gathers changes before recomputing (changes to a doctor whose "
        "recompute is under way wait for it anyway)")
    safety_refresh_s: float = setting(
        "OPD_SAFETY_REFRESH_S", 30.0,
        "full recompute this often")
    eta_tick_s: float = setting(
        "OPD_ETA_TICK_S", 20.0,
        "recompute active queues this often")
    ws_send_timeout_s: float = setting(
        "OPD_WS_SEND_TIMEOUT_S", 10.0,
        "a WebSocket client whose send blocks this long is disconnected")
    watch_refresh_s: float = setting(
        "OPD_WATCH_REFRESH_S", 10.0,
        "how often each process tells the engines every patient view and whole-hospital topic "
        "it has subscribers for (the engines publish only watched ones; the same value in every "
        "process)",
        parse=_at_least_a_tenth)
    ws_ping_s: float = setting(
        "OPD_WS_PING_S", 20.0,
        "WebSocket ping interval and timeout")
    gc_freeze_s: float = setting(
        "OPD_GC_FREEZE_S", 1.0,
        "every this many seconds, the objects of the last interval are frozen out of Python's "
        "garbage collector, so that no collection walks more than that interval's (0: Python's "
        "default collector)")
    engine: str = setting(
        "OPD_ENGINE", "auto",
        "`auto` (default): this process may become the queue engine (the lease holder); `off`: it "
        "never does, because a `python -m app engine` process does. On a quiet 2-core machine at "
        "100 changes/s and 10,000 screens both ways meet the 100 ms p99 (one process 71–76 ms, "
        "engine process 76–98 ms); with other work on the machine the engine process holds up "
        "better (docs/operations.md, \"Running\")",
        choices=("auto", "off"))
    gc_full_s: float = setting(
        "OPD_GC_FULL_S", 3600.0,
        "one full garbage collection this often: the only long pause, about 1 s per 10,000 "
        "connections; it frees reference cycles that died after being frozen")
    ws_max_message_bytes: int = setting(
        "OPD_WS_MAX_MESSAGE_BYTES", 4096,
        "largest client message accepted")
    db_wait_s: float = setting(
        "OPD_DB_WAIT_S", 2.0,
        "an API request waits at most this long for a free database connection (the pool has 24 "
        "per process), then gets `503 {\"code\": \"busy\"}` with `Retry-After: 1` — nothing of it "
        "ran, and the staff pages send it again twice by themselves. Without a bound, a database "
        "slowed by a backup or another program let clicks queue for many seconds and the backlog "
        "outlast the burst (issue 19)")
    login_attempts_per_address: int = setting(
        "OPD_LOGIN_ATTEMPTS_PER_ADDRESS", 20,
        "sign-in attempts per client address per 5 minutes, per process. The test suite raises it "
        "for its shared server, whose sign-ins all come from 127.0.0.1")
    engine_pool_size: int = setting(
        "OPD_ENGINE_POOL_SIZE", 16,
        "database connections of a `python -m app engine` process, opened and warmed at start: its "
        "recomputes (12 at once per shard it leads) and the write-back. Each shard it may lead adds "
        "one more (LISTEN and lease)",
        parse=lambda raw: _bounded_int(raw, 2, 200))
    engine_shards: int = setting(
        "OPD_ENGINE_SHARDS", 1,
        "hospitals are hashed to this many shards of the queue engine, each led by one process at "
        "a time; engine processes share them out evenly and take over a lost one's within seconds "
        "(docs/architecture.md, \"Shards\"). 1 (default): one process computes every hospital. "
        "For many hospitals on one database; every engine process must have the same value "
        "(1–64)",
        parse=lambda raw: _bounded_int(raw, 1, 64))
    abdm_gateway_url: str | None = setting(
        "OPD_ABDM_GATEWAY_URL", None,
        "ABDM Scan & Share (docs/abdm.md): the gateway's base URL — `https://dev.abdm.gov.in` in "
        "the sandbox, `https://live.abdm.gov.in` in production. Unset: Scan & Share is off and "
        "`/api/v3/hip/patient/share` answers 404")
    abdm_client_id: str | None = setting(
        "OPD_ABDM_CLIENT_ID", None,
        "the bridge's client id, given by ABDM when the software is registered")
    abdm_client_secret: Secret | None = setting(
        "OPD_ABDM_CLIENT_SECRET", None,
        "the bridge's client secret (with the client id, it opens a gateway session)")
    abdm_cm_id: str = setting(
        "OPD_ABDM_CM_ID", "sbx",
        "`X-CM-ID` on every gateway call: `sbx` in the sandbox, `abdm` in production")
    abdm_share_url: str = setting(
        "OPD_ABDM_SHARE_URL", "https://phrsbx.abdm.gov.in/share-profile",
        "what a counter's QR code opens (with `?hip-id=…&counter-id=…`): the sandbox PHR's "
        "share-profile page; in production `https://phr.abdm.gov.in/share-profile`")
    leader_lock_key: int = setting(
        "OPD_LEADER_LOCK_KEY", 727001,
        "the key of the engine lease (`engine_lease.lease_key`) that elects the engine leader "
        "(shard k's lease: this + k), and of the advisory lock that refuses a second process on "
        "the in-process bus")
    trusted_proxies: tuple[str, ...] = setting(
        "OPD_TRUSTED_PROXIES", (),
        "comma-separated proxy addresses whose `X-Forwarded-*` headers are trusted",
        parse=_comma_list)
    log_level: str = setting(
        "OPD_LOG_LEVEL", "INFO",
        "log level")
    log_format: str = setting(
        "OPD_LOG_FORMAT", "text",
        "`text` (default) or `json`: one JSON object per line with the request id (\"Logs\" above)",
        choices=("text", "json"))
    dispatcher: str = setting(
        "OPD_DISPATCHER", "auto",
        "`auto` (default): this process sends the outbox; `off`: a `python -m app dispatcher` "
        "process does",
        choices=("auto", "off"))
    metrics_token: Secret | None = setting(
        "OPD_METRICS_TOKEN", None,
        "`/metrics` then answers only `Authorization: Bearer <this>`; unset, only loopback")
    bus_namespace: str = setting(
        "OPD_BUS_NAMESPACE", "opd",
        "prefix of this deployment's Redis keys and channel")
    notify_provider: tuple[str, ...] = setting(
        "OPD_NOTIFY_PROVIDER", ("log",),
        "where patient messages go, comma-separated: `log`, `webhook`, `twilio`, `msg91`, "
        "`exotel`, `gupshup`, `whatsapp`",
        parse=_lower_list)
    notify_log_file: Path | None = setting(
        "OPD_NOTIFY_LOG_FILE", None,
        "the `log` provider appends messages to this file instead of logging them (`up` / `serve "
        "--demo`: `var/messages.log`)")
    notify_webhook_url: str | None = setting(
        "OPD_NOTIFY_WEBHOOK_URL", None,
        "the URL the `webhook` provider POSTs each message to")
    notify_webhook_secret: Secret | None = setting(
        "OPD_NOTIFY_WEBHOOK_SECRET", None,
        "HMAC-SHA256 key: signs webhook posts and checks delivery receipts (unset: receipts are "
        "refused)")
    notify_max_retries: int = setting(
        "OPD_NOTIFY_MAX_RETRIES", 6,
        "retries after a retryable failure before a message is `FAILED`")
    notify_retry_base_s: float = setting(
        "OPD_NOTIFY_RETRY_BASE_S", 30.0,
        "delay before the first retry; each later one doubles, at most an hour")
    notify_timeout_s: float = setting(
        "OPD_NOTIFY_TIMEOUT_S", 10.0,
        "a provider request taking longer fails, retryably")
    notify_lease_s: float = setting(
        "OPD_NOTIFY_LEASE_S", 120.0,
        "a claimed message without a result after this is sent again; must exceed the timeout")
    notify_poll_s: float = setting(
        "OPD_NOTIFY_POLL_S", 2.0,
        "how often each process looks for due messages")
    notify_country_code: str = setting(
        "OPD_NOTIFY_COUNTRY_CODE", "91",
        "country code put before stored phone numbers that lack a leading `+`",
        parse=_country_code)
    twilio_base_url: str = setting(
        "OPD_TWILIO_BASE_URL", "https://api.twilio.com",
        "Twilio API base URL")
    twilio_account_sid: str | None = setting(
        "OPD_TWILIO_ACCOUNT_SID", None,
        "Twilio account SID (basic-auth user)")
    twilio_auth_token: Secret | None = setting(
        "OPD_TWILIO_AUTH_TOKEN", None,
        "Twilio auth token (basic-auth password)")
    twilio_from: str | None = setting(
        "OPD_TWILIO_FROM", None,
        "the Twilio number or sender ID SMS are sent from")
    twilio_messaging_service_sid: str | None = setting(
        "OPD_TWILIO_MESSAGING_SERVICE_SID", None,
        "a Twilio Messaging Service (`MG…`) that picks the sender, instead of `OPD_TWILIO_FROM`")
    whatsapp_base_url: str = setting(
        "OPD_WHATSAPP_BASE_URL", "https://graph.facebook.com",
        "WhatsApp Cloud API base URL")
    whatsapp_api_version: str = setting(
        "OPD_WHATSAPP_API_VERSION", "v21.0",
        "Graph API version in the URL")
    whatsapp_phone_number_id: str | None = setting(
        "OPD_WHATSAPP_PHONE_NUMBER_ID", None,
        "the WhatsApp Business phone number id messages are sent from")
    whatsapp_token: Secret | None = setting(
        "OPD_WHATSAPP_TOKEN", None,
        "WhatsApp Cloud API access token (sent as `Authorization: Bearer`)")
    whatsapp_app_secret: Secret | None = setting(
        "OPD_WHATSAPP_APP_SECRET", None,
        "Meta app secret: checks `X-Hub-Signature-256` on the WhatsApp webhook")
    whatsapp_verify_token: Secret | None = setting(
        "OPD_WHATSAPP_VERIFY_TOKEN", None,
        "the verify token typed in Meta's webhook set-up; answers its `hub.challenge`")
    msg91_base_url: str = setting(
        "OPD_MSG91_BASE_URL", "https://control.msg91.com",
        "MSG91 API base URL")
    msg91_authkey: Secret | None = setting(
        "OPD_MSG91_AUTHKEY", None,
        "MSG91 auth key (sent as the authkey header)")
    exotel_base_url: str = setting(
        "OPD_EXOTEL_BASE_URL", "https://api.exotel.com",
        "Exotel API base URL")
    exotel_sid: str | None = setting(
        "OPD_EXOTEL_SID", None,
        "Exotel account SID")
    exotel_api_key: str | None = setting(
        "OPD_EXOTEL_API_KEY", None,
        "Exotel API key (user of the basic auth)")
    exotel_api_token: Secret | None = setting(
        "OPD_EXOTEL_API_TOKEN", None,
        "Exotel API token (password of the basic auth)")
    gupshup_base_url: str = setting(
        "OPD_GUPSHUP_BASE_URL", "https://enterprise.smsgupshup.com",
        "Gupshup Enterprise SMS base URL")
    gupshup_userid: str | None = setting(
        "OPD_GUPSHUP_USERID", None,
        "Gupshup Enterprise account user id")
    gupshup_password: Secret | None = setting(
        "OPD_GUPSHUP_PASSWORD", None,
        "Gupshup Enterprise account password")
    notify_receipt_token: Secret | None = setting(
        "OPD_NOTIFY_RECEIPT_TOKEN", None,
        "secret path segment of the MSG91, Exotel and Gupshup delivery-report URLs (they sign "
        "nothing)")
    vapid_private_key: Secret | None = setting(
        "OPD_VAPID_PRIVATE_KEY", None,
        "Web Push: this deployment's VAPID private key (PEM); unset, one is generated the first "
        "time and kept in the database (`web_push_vapid`), shared by every process and node. "
        "Changing it orphans every existing subscription")
    vapid_subject: str | None = setting(
        "OPD_VAPID_SUBJECT", None,
        "Web Push: the contact push services may write to, `mailto:` or `https:` (default: the "
        "public URL when it is https, else `mailto:opd@localhost`)")
    web_push_hosts: tuple[str, ...] = setting(
        "OPD_WEB_PUSH_HOSTS", DEFAULT_PUSH_HOSTS,
        "Web Push: comma-separated push-service hosts a tracker may subscribe with, `*.` for "
        "subdomains",
        parse=_comma_list)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        values = {}
        for spec in dataclasses.fields(cls):
            raw = environ.get(spec.metadata["env"])
            if raw is not None and raw.strip() != "":
                values[spec.name] = _read(spec, raw)
        return cls(**values)

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def _read(spec: dataclasses.Field[Any], raw: str) -> Any:
    """A setting's value from its text; a clear ValueError naming the variable otherwise."""
    env, parse, choices = spec.metadata["env"], spec.metadata["parse"], spec.metadata["choices"]
    if choices is not None:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"{env} must be one of {', '.join(choices)}, not {value!r}")
        return value
    if parse is not None:
        try:
            return parse(raw)
        except ValueError as exc:
            raise ValueError(f"{env}: {exc}") from None
    kind = str(spec.type).replace(" | None", "")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{env} must be a number, not {raw!r}") from None
    if kind == "Secret":
        return Secret(raw)
    if kind == "Path":
        return Path(raw)
    return raw


# Environment variable -> meaning, for every setting the app reads.
DOCUMENTED_SETTINGS = {spec.metadata["env"]: spec.metadata["meaning"] for spec in dataclasses.fields(Settings)}
DOCUMENTED_SETTINGS.update(OTHER_SETTINGS)


def _shown_default(spec: dataclasses.Field[Any]) -> str:
    if spec.metadata["shown"] is not None:
        return f"`{spec.metadata['shown']}`"
    value = spec.default
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return ", ".join(f"`{v}`" for v in value) or "none"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def settings_table() -> str:
    """The settings table of docs/operations.md (`python -m app settings-table`)."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for spec in dataclasses.fields(Settings):
        lines.append(f"| `{spec.metadata['env']}` | {_shown_default(spec)} | {spec.metadata['meaning']} |")
    for env, meaning in OTHER_SETTINGS.items():
        lines.append(f"| `{env}` | unset | {meaning} |")
    return "\n".join(lines)
