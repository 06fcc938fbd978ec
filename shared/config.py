"""Configuration from environment variables: the one place that parses them.

Every setting has a default that works on one machine; the README's
configuration table lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Values that make one machine work out of the box. They are public (they are
# in the repository): ``SFERA_ENV=production`` refuses to start with any of them
# (shared/production.py).
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-in-production"
DEV_CODE_SECRET = "dev-only-code-secret-change-me"
DEV_SFU_TOKEN_SECRET = "dev-only-sfu-token-secret-change-me"
DEV_SECRETS_KEY = "ZGV2LW9ubHktc2ZlcmEtc2VjcmV0cy1rZXktY2hhbmc="  # Fernet key of b"dev-only-sfera-secrets-key-chang"
ENVIRONMENTS = ("development", "production")


def _env_str(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    value = (os.environ if environ is None else environ).get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    amqp_uri: str
    persistence: str  # "sqlite" | "postgres" | "memory"
    postgres_host: str
    postgres_port: int
    postgres_db: str
    postgres_user: str
    postgres_password: str
    jwt_secret: str
    jwt_issuer: str
    access_token_ttl: int
    metrics_port: int  # 0: do not serve
    log_level: str
    env: str = "development"  # "development" | "production" (SFERA_ENV)
    code_secret: str = DEV_CODE_SECRET
    link_secret: str = DEV_CODE_SECRET
    sfu_token_secret: str = DEV_SFU_TOKEN_SECRET
    secrets_keys: tuple[str, ...] = (DEV_SECRETS_KEY,)  # newest first (SFERA_SECRETS_KEYS)
    metrics_host: str = "127.0.0.1"  # the address /metrics and /healthz listen on (SFERA_METRICS_HOST; pods: 0.0.0.0)

    @property
    def outbox_dir(self) -> Path:
        """The dev inbox: SMS, flash calls and e-mails written as files."""
        return self.var_dir / "outbox"


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of this process (or of the given environment, e.g. a child's)."""

    env_str = partial(_env_str, environ=environ)
    env_int = partial(_env_int, environ=environ)
    var_dir = Path(env_str("SFERA_VAR_DIR", str(REPO_ROOT / "var")))
    code_secret = env_str("SFERA_CODE_SECRET", DEV_CODE_SECRET)
    return Settings(
        var_dir=var_dir,
        amqp_uri=env_str("SFERA_AMQP_URI", "amqp://guest:guest@127.0.0.1:5682/"),
        persistence=env_str("PERSISTENCE", "sqlite"),
        postgres_host=env_str("SFERA_PG_HOST", "127.0.0.1"),
        postgres_port=env_int("SFERA_PG_PORT", 5442),
        postgres_db=env_str("SFERA_PG_DB", "sfera"),
        postgres_user=env_str("SFERA_PG_USER", "sfera"),
        postgres_password=env_str("SFERA_PG_PASSWORD", "sfera"),
        jwt_secret=env_str("SFERA_JWT_SECRET", DEV_JWT_SECRET),
        jwt_issuer=env_str("SFERA_JWT_ISSUER", "sfera-identity"),
        access_token_ttl=env_int("SFERA_ACCESS_TOKEN_TTL", 900),
        metrics_port=env_int("SFERA_METRICS_PORT", 0),
        metrics_host=env_str("SFERA_METRICS_HOST", "127.0.0.1"),
        log_level=env_str("SFERA_LOG_LEVEL", "INFO"),
        env=env_str("SFERA_ENV", "development"),
        code_secret=code_secret,
        link_secret=env_str("SFERA_LINK_SECRET", code_secret),
        sfu_token_secret=env_str("SFERA_SFU_TOKEN_SECRET", DEV_SFU_TOKEN_SECRET),
        secrets_keys=tuple(k.strip() for k in env_str("SFERA_SECRETS_KEYS", DEV_SECRETS_KEY).split(",") if k.strip()),
    )


def env_str(name: str, default: str) -> str:
    return _env_str(name, default)


def env_int(name: str, default: int) -> int:
    return _env_int(name, default)
