"""Settings of the reference backend, read from ``BATCHQA_*`` environment variables."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .faults import parse_faults


class Settings(BaseSettings):
    """Embedded defaults: one process, SQLite and local files under ``data_dir``; nothing to set up."""

    model_config = SettingsConfigDict(env_prefix="BATCHQA_", extra="ignore")

    data_dir: Path = Field(default=Path(".batchqa-data"), description="Where SQLite, uploads and keys live.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir.")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(default=None, description="Base URL used in links; default from host/port.")

    secret_key: str | None = Field(default=None, description="Token signing key; default: generated once.")
    token_ttl_seconds: int = 12 * 3600
    registration_open: bool = True
    cookie_secure: bool = False
    # Login throttling (OWASP): consecutive failures per key before a lockout, and the lockout's bounds.
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins for one account from one address.")
    login_max_failures_per_address: int = Field(default=50, ge=1, description="Failed logins from one address.")
    login_max_failures_per_account: int = Field(default=50, ge=1, description="Failed logins for one account.")
    login_lockout_seconds: float = Field(default=30.0, gt=0, description="First lockout; doubles each time.")
    login_lockout_max_seconds: float = Field(default=300.0, gt=0, description="The longest lockout.")
    login_forget_seconds: float = Field(default=900.0, gt=0, description="Failures older than this are forgotten.")

    max_prompts: int = 1000
    max_upload_bytes: int = 10 * 1024 * 1024
    max_prompt_chars: int | None = Field(
        default=None, description="Characters per prompt the provider takes; longer rows fail. Unset: no limit."
    )

    download_link_ttl_seconds: int = Field(default=900, description="Lifetime of a signed download link.")
    download_link_max_ttl_seconds: int = Field(default=7 * 24 * 3600, description="Longest lifetime a client may ask.")

    provider_kind: str = Field(default="rules", description="rules (built-in enhancer) or openai (HTTP).")
    openai_base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:11434/v1")
    openai_api_key: str | None = None
    openai_model: str | None = None
    provider_latency_ms: float = 0.0
    provider_batch_size: int = 10
    provider_failure_rate: float = 0.0
    provider_seed: int = 0
    worker_concurrency: int = 10
    lease_seconds: float = 60.0

    # Real-time progress.
    heartbeat_seconds: float = Field(default=1.0, description="Longest silence on a progress socket.")
    ws_coalesce_ms: float = Field(default=250.0, description="Progress pushes are merged within this window.")
    allowed_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to open sockets; empty = same host only."
    )
    ws_max_message_bytes: int = 4096
    ws_max_messages_per_second: float = 20.0

    # Distributed mode: each is independent; unset means the embedded default.
    queue_url: str | None = Field(default=None, description="redis://... to use Redis and worker processes.")
    storage_url: str | None = Field(default=None, description="s3://bucket[/prefix]; default: files in data_dir.")
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    user_quota_bytes: int = Field(default=1024 * 1024 * 1024, description="Stored bytes allowed per user.")
    embedded_workers: bool = Field(default=True, description="Run the worker pool inside the API process.")

    # Notifications. With no SMTP host, mail is written as .eml files to data_dir/mail-outbox.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: str = Field(default="none", description="none, starttls or ssl.")
    smtp_from: str = "batchqa <noreply@batchqa.local>"
    smtp_timeout_seconds: float = 10.0
    webhook_timeout_seconds: float = 5.0
    notify_poll_seconds: float = 0.25
    notify_retry_base_seconds: float = 0.5
    notify_retry_max_seconds: float = 30.0
    notify_max_attempts: int = 20

    log_level: str = "INFO"

    faults: str = Field(
        default="",
        description="Named defects to switch on for testing the tests, e.g. 'slow_requests=50,drop_first_row'; "
        "see reference_backend/faults.py. Empty (the default) is a correct backend.",
    )

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, value: str) -> str:
        # Refuse a misspelt fault at start-up rather than run a backend that silently lacks it.
        return ",".join(parse_faults(value).describe())

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'batchqa.sqlite3').resolve()}"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def signing_key(self) -> str:
        """The configured key, else one generated on first use and kept in the data dir.

        Keeping it on disk means a restarted server still honours the tokens it issued.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
