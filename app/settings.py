"""Every setting of the app, read from the environment in one place (documented in docs/operations.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Push services a tracker may subscribe with (OPD_WEB_PUSH_HOSTS): the server POSTs to whatever
# endpoint a subscription names, so only these hosts are accepted, never an internal address.
DEFAULT_PUSH_HOSTS = ("fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com",
                      "*.notify.windows.com", "*.push.apple.com")


class Secret(str):
    """A string that does not print itself."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else int(raw)


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else float(raw)


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (os.environ.get(name) or default).strip().lower()
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


# name -> one-line description; tests check that docs/operations.md mentions every one.
DOCUMENTED_SETTINGS = {
    "DATABASE_URL": "PostgreSQL DSN; unset runs the embedded PostgreSQL under var/",
    "REDIS_URL": "Redis URL; unset uses the in-process bus (one worker only)",
    "PORT": "HTTP port for `serve` and the Procfile (default 8000)",
    "HOST": "bind address for `serve` (default 127.0.0.1)",
    "OPD_VAR_DIR": "where the embedded PostgreSQL keeps its data (default ./var)",
    "OPD_SECRET_KEY": "signs session cookies; unset generates one kept in var/secret_key",
    "OPD_PUBLIC_URL": "base URL printed in links and QR codes (default http://HOST:PORT)",
    "OPD_WORKERS": "uvicorn worker processes for `serve` (needs REDIS_URL when > 1)",
    "OPD_COALESCE_MS": "how long the queue engine gathers changes before a recompute (default 10)",
    "OPD_SAFETY_REFRESH_S": "full recompute of every active queue this often (default 30)",
    "OPD_ETA_TICK_S": "recompute active queues this often so ETAs follow long consultations (default 20)",
    "OPD_WS_SEND_TIMEOUT_S": "a client whose send blocks this long is disconnected (default 10)",
    "OPD_WS_PING_S": "server ping interval for WebSocket clients (default 20)",
    "OPD_DISPATCHER": "auto: this process sends the outbox's messages; off: it does not (a `python -m app dispatcher` "
                      "process does)",
    "OPD_ENGINE": "auto: this process may become the queue engine; off: never (a `python -m app engine` process is)",
    "OPD_GC_FREEZE_S": "freeze long-lived objects out of the garbage collector this often; 0 = off (default 10)",
    "OPD_GC_FULL_S": "one full garbage collection this often, the only long pause (default 3600)",
    "OPD_DB_WAIT_S": "an API request waits at most this long for a database connection, then gets 503 busy with "
                     "Retry-After (default 2)",
    "OPD_WS_MAX_MESSAGE_BYTES": "largest client message accepted (default 4096)",
    "OPD_LOGIN_ATTEMPTS_PER_ADDRESS": "sign-in attempts per client address per 5 minutes, per process (default 20)",
    "OPD_LEADER_LOCK_KEY": "key of the engine lease that elects the queue engine (default 727001)",
    "OPD_TRUSTED_PROXIES": "comma-separated proxy addresses whose X-Forwarded-* headers are trusted",
    "OPD_LOG_LEVEL": "log level (default INFO)",
    "OPD_LOG_FORMAT": "text (default) or json: one JSON object per log line, with the request id",
    "OPD_METRICS_TOKEN": "GET /metrics answers only `Authorization: Bearer <this>`; unset, only requests from loopback",
    "PROMETHEUS_MULTIPROC_DIR": "an empty directory shared by the processes of one machine (workers, engine) so "
                                "/metrics adds them up; `serve --workers N` sets var/metrics itself",
    "OPD_CLOCK_OFFSET_S": "tests and demos only: seconds added to the clock of the app and its database sessions "
                          "(`up --clock`, `test --clock`); never set in production",
    "OPD_API_KEY": "admin API key used by `python -m app simulate` when --key is not given",
    "OPD_BUS_NAMESPACE": "prefix of this deployment's Redis keys and channel (default opd)",
    "OPD_NOTIFY_PROVIDER": "message providers, comma-separated: log, webhook, twilio, msg91, exotel, gupshup, whatsapp "
                           "(default log)",
    "OPD_NOTIFY_LOG_FILE": "the log provider appends messages to this file instead of the log (demo: var/messages.log)",
    "OPD_NOTIFY_WEBHOOK_URL": "where the webhook provider POSTs each message as JSON",
    "OPD_NOTIFY_WEBHOOK_SECRET": "HMAC-SHA256 key signing webhook posts and checking delivery receipts",
    "OPD_NOTIFY_MAX_RETRIES": "retries after a failed send before a message is FAILED (default 6)",
    "OPD_NOTIFY_RETRY_BASE_S": "first retry delay; each later one doubles (default 30)",
    "OPD_NOTIFY_TIMEOUT_S": "a provider request taking longer counts as a retryable failure (default 10)",
    "OPD_NOTIFY_LEASE_S": "a claimed message not finished within this is sent again (default 120)",
    "OPD_NOTIFY_POLL_S": "how often each process looks for due messages (default 2)",
    "OPD_NOTIFY_COUNTRY_CODE": "country code put before phone numbers without a leading + (default 91)",
    "OPD_TWILIO_BASE_URL": "Twilio API base URL (default https://api.twilio.com)",
    "OPD_TWILIO_ACCOUNT_SID": "Twilio account SID (user name of the API's basic auth)",
    "OPD_TWILIO_AUTH_TOKEN": "Twilio auth token (password of the API's basic auth)",
    "OPD_TWILIO_FROM": "the Twilio number or sender ID SMS are sent from (or OPD_TWILIO_MESSAGING_SERVICE_SID)",
    "OPD_TWILIO_MESSAGING_SERVICE_SID": "Twilio Messaging Service (MG…) that picks the sender, instead of "
                                        "OPD_TWILIO_FROM",
    "OPD_WHATSAPP_BASE_URL": "WhatsApp Cloud API base URL (default https://graph.facebook.com)",
    "OPD_WHATSAPP_API_VERSION": "Graph API version in the WhatsApp URL (default v21.0)",
    "OPD_WHATSAPP_PHONE_NUMBER_ID": "the WhatsApp Business phone number id messages are sent from",
    "OPD_WHATSAPP_TOKEN": "WhatsApp Cloud API access token (sent as a Bearer token)",
    "OPD_WHATSAPP_APP_SECRET": "Meta app secret: checks X-Hub-Signature-256 of the WhatsApp webhook",
    "OPD_WHATSAPP_VERIFY_TOKEN": "the verify token typed in Meta's webhook set-up (answers its challenge)",
    "OPD_MSG91_BASE_URL": "MSG91 API base URL (default https://control.msg91.com)",
    "OPD_MSG91_AUTHKEY": "MSG91 auth key (sent as the authkey header)",
    "OPD_EXOTEL_BASE_URL": "Exotel API base URL (default https://api.exotel.com; Mumbai: https://api.in.exotel.com)",
    "OPD_EXOTEL_SID": "Exotel account SID",
    "OPD_EXOTEL_API_KEY": "Exotel API key (user name of the API's basic auth)",
    "OPD_EXOTEL_API_TOKEN": "Exotel API token (password of the API's basic auth)",
    "OPD_GUPSHUP_BASE_URL": "Gupshup Enterprise SMS base URL (default https://enterprise.smsgupshup.com)",
    "OPD_GUPSHUP_USERID": "Gupshup Enterprise account user id",
    "OPD_GUPSHUP_PASSWORD": "Gupshup Enterprise account password",
    "OPD_NOTIFY_RECEIPT_TOKEN": "secret in the delivery-receipt URLs given to MSG91, Exotel and Gupshup (they "
                                "sign nothing)",
    "OPD_VAPID_PRIVATE_KEY": "Web Push: the VAPID private key (PEM); unset, one is generated once and kept in the "
                             "database (table web_push_vapid)",
    "OPD_VAPID_SUBJECT": "Web Push: contact sent to push services, mailto: or https: (default: the public URL when "
                         "it is https, else mailto:opd@localhost)",
    "OPD_WEB_PUSH_HOSTS": "Web Push: comma-separated push-service hosts a tracker may subscribe with (`*.` for "
                          "subdomains; default Google's, Mozilla's, Apple's and Microsoft's)",
}


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    var_dir: Path = REPO_ROOT / "var"
    secret_key: Secret | None = None
    public_url: str | None = None
    workers: int = 1
    coalesce_ms: int = 10
    safety_refresh_s: float = 30.0
    eta_tick_s: float = 20.0
    ws_send_timeout_s: float = 10.0
    ws_ping_s: float = 20.0
    gc_freeze_s: float = 10.0
    engine: str = "auto"
    gc_full_s: float = 3600.0
    ws_max_message_bytes: int = 4096
    db_wait_s: float = 2.0
    login_attempts_per_address: int = 20
    leader_lock_key: int = 727001
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    log_format: str = "text"
    dispatcher: str = "auto"
    metrics_token: Secret | None = None
    bus_namespace: str = "opd"
    notify_provider: tuple[str, ...] = ("log",)
    notify_log_file: Path | None = None   # the log provider's messages go here instead of the log
    notify_webhook_url: str | None = None
    notify_webhook_secret: Secret | None = None
    notify_max_retries: int = 6
    notify_retry_base_s: float = 30.0
    notify_timeout_s: float = 10.0
    notify_lease_s: float = 120.0
    notify_poll_s: float = 2.0
    notify_country_code: str = "91"
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: Secret | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    whatsapp_base_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v21.0"
    whatsapp_phone_number_id: str | None = None
    whatsapp_token: Secret | None = None
    whatsapp_app_secret: Secret | None = None
    whatsapp_verify_token: Secret | None = None
    msg91_base_url: str = "https://control.msg91.com"
    msg91_authkey: Secret | None = None
    exotel_base_url: str = "https://api.exotel.com"
    exotel_sid: str | None = None
    exotel_api_key: str | None = None
    exotel_api_token: Secret | None = None
    gupshup_base_url: str = "https://enterprise.smsgupshup.com"
    gupshup_userid: str | None = None
    gupshup_password: Secret | None = None
    notify_receipt_token: Secret | None = None
    vapid_private_key: Secret | None = None
    vapid_subject: str | None = None
    web_push_hosts: tuple[str, ...] = DEFAULT_PUSH_HOSTS

    @classmethod
    def from_env(cls) -> Settings:
        secret = os.environ.get("OPD_SECRET_KEY")
        proxies = os.environ.get("OPD_TRUSTED_PROXIES", "")
        providers = os.environ.get("OPD_NOTIFY_PROVIDER") or "log"
        push_hosts = os.environ.get("OPD_WEB_PUSH_HOSTS") or ""

        def secret_or_none(name: str) -> Secret | None:
            return Secret(os.environ[name]) if os.environ.get(name) else None

        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            redis_url=os.environ.get("REDIS_URL") or None,
            host=os.environ.get("HOST", "127.0.0.1"),
            port=_int("PORT", 8000),
            var_dir=Path(os.environ.get("OPD_VAR_DIR") or REPO_ROOT / "var"),
            secret_key=Secret(secret) if secret else None,
            public_url=os.environ.get("OPD_PUBLIC_URL") or None,
            workers=_int("OPD_WORKERS", 1),
            coalesce_ms=_int("OPD_COALESCE_MS", 10),
            safety_refresh_s=_float("OPD_SAFETY_REFRESH_S", 30.0),
            eta_tick_s=_float("OPD_ETA_TICK_S", 20.0),
            ws_send_timeout_s=_float("OPD_WS_SEND_TIMEOUT_S", 10.0),
            ws_ping_s=_float("OPD_WS_PING_S", 20.0),
            gc_freeze_s=_float("OPD_GC_FREEZE_S", 10.0),
            engine=_choice("OPD_ENGINE", ("auto", "off"), "auto"),
            gc_full_s=_float("OPD_GC_FULL_S", 3600.0),
            ws_max_message_bytes=_int("OPD_WS_MAX_MESSAGE_BYTES", 4096),
            db_wait_s=_float("OPD_DB_WAIT_S", 2.0),
            login_attempts_per_address=_int("OPD_LOGIN_ATTEMPTS_PER_ADDRESS", 20),
            leader_lock_key=_int("OPD_LEADER_LOCK_KEY", 727001),
            trusted_proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
            log_level=os.environ.get("OPD_LOG_LEVEL", "INFO"),
            log_format=_choice("OPD_LOG_FORMAT", ("text", "json"), "text"),
            dispatcher=_choice("OPD_DISPATCHER", ("auto", "off"), "auto"),
            metrics_token=secret_or_none("OPD_METRICS_TOKEN"),
            bus_namespace=os.environ.get("OPD_BUS_NAMESPACE") or "opd",
            notify_provider=tuple(p.strip().lower() for p in providers.split(",") if p.strip()),
            notify_log_file=Path(os.environ["OPD_NOTIFY_LOG_FILE"]) if os.environ.get("OPD_NOTIFY_LOG_FILE") else None,
            notify_webhook_url=os.environ.get("OPD_NOTIFY_WEBHOOK_URL") or None,
            notify_webhook_secret=secret_or_none("OPD_NOTIFY_WEBHOOK_SECRET"),
            notify_max_retries=_int("OPD_NOTIFY_MAX_RETRIES", 6),
            notify_retry_base_s=_float("OPD_NOTIFY_RETRY_BASE_S", 30.0),
            notify_timeout_s=_float("OPD_NOTIFY_TIMEOUT_S", 10.0),
            notify_lease_s=_float("OPD_NOTIFY_LEASE_S", 120.0),
            notify_poll_s=_float("OPD_NOTIFY_POLL_S", 2.0),
            notify_country_code=(os.environ.get("OPD_NOTIFY_COUNTRY_CODE") or "91").lstrip("+"),
            twilio_base_url=os.environ.get("OPD_TWILIO_BASE_URL") or "https://api.twilio.com",
            twilio_account_sid=os.environ.get("OPD_TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=secret_or_none("OPD_TWILIO_AUTH_TOKEN"),
            twilio_from=os.environ.get("OPD_TWILIO_FROM") or None,
            twilio_messaging_service_sid=os.environ.get("OPD_TWILIO_MESSAGING_SERVICE_SID") or None,
            whatsapp_base_url=os.environ.get("OPD_WHATSAPP_BASE_URL") or "https://graph.facebook.com",
            whatsapp_api_version=os.environ.get("OPD_WHATSAPP_API_VERSION") or "v21.0",
            whatsapp_phone_number_id=os.environ.get("OPD_WHATSAPP_PHONE_NUMBER_ID") or None,
            whatsapp_token=secret_or_none("OPD_WHATSAPP_TOKEN"),
            whatsapp_app_secret=secret_or_none("OPD_WHATSAPP_APP_SECRET"),
            whatsapp_verify_token=secret_or_none("OPD_WHATSAPP_VERIFY_TOKEN"),
            msg91_base_url=os.environ.get("OPD_MSG91_BASE_URL") or "https://control.msg91.com",
            msg91_authkey=secret_or_none("OPD_MSG91_AUTHKEY"),
            exotel_base_url=os.environ.get("OPD_EXOTEL_BASE_URL") or "https://api.exotel.com",
            exotel_sid=os.environ.get("OPD_EXOTEL_SID") or None,
            exotel_api_key=os.environ.get("OPD_EXOTEL_API_KEY") or None,
            exotel_api_token=secret_or_none("OPD_EXOTEL_API_TOKEN"),
            gupshup_base_url=os.environ.get("OPD_GUPSHUP_BASE_URL") or "https://enterprise.smsgupshup.com",
            gupshup_userid=os.environ.get("OPD_GUPSHUP_USERID") or None,
            gupshup_password=secret_or_none("OPD_GUPSHUP_PASSWORD"),
            notify_receipt_token=secret_or_none("OPD_NOTIFY_RECEIPT_TOKEN"),
            vapid_private_key=secret_or_none("OPD_VAPID_PRIVATE_KEY"),
            vapid_subject=os.environ.get("OPD_VAPID_SUBJECT") or None,
            web_push_hosts=tuple(h.strip() for h in push_hosts.split(",") if h.strip()) if push_hosts
            else DEFAULT_PUSH_HOSTS,
        )

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
