"""Resolve where a platform's URLs and client credentials come from.

Secrets are read from an environment variable or a file (or, for the twin, from the
endpoints file it writes), never from the experiment. ``Connection`` describes how to
reach a platform without holding the secret, so it can be written to the journal and
used again by ``ccharness rollback``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import AuthError, ConfigError
from harness.platforms.auth import ClientCredentials


@dataclass(frozen=True)
class Connection:
    """Everything needed to reach a platform again; safe to journal (no secret)."""

    platform: str            # twin | genesys | cxone
    api: str                 # genesys | cxone
    base_url: str
    token_url: str
    events_url: str
    endpoints_file: str | None = None
    client_id: str | None = None
    client_id_env: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    scopes: tuple[str, ...] = ()
    request_timeout_s: float = 5.0
    max_retries: int = 5
    api_call_budget: int = 1000

    def to_json(self) -> dict:
        d = asdict(self)
        d["scopes"] = list(self.scopes)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Connection":
        d = dict(d)
        d["scopes"] = tuple(d.get("scopes") or ())
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def credentials(self) -> ClientCredentials:
        """Read the secret now (from env, file or the twin's endpoints file)."""
        if self.endpoints_file and not (self.client_secret_env or self.client_secret_file):
            data = read_endpoints(self.endpoints_file)
            return ClientCredentials(data["client_id"], data["client_secret"], self.scopes)
        client_id = self.client_id or os.environ.get(self.client_id_env or "", "")
        if not client_id:
            raise AuthError(f"client id not found (environment variable {self.client_id_env!r} is unset)")
        if self.client_secret_env:
            secret = os.environ.get(self.client_secret_env)
            if not secret:
                raise AuthError(f"environment variable {self.client_secret_env!r} is unset or empty")
        else:
            try:
                secret = Path(self.client_secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise AuthError(f"cannot read the client secret file {self.client_secret_file!r}: "
                                f"{exc.strerror}") from None
            if not secret:
                raise AuthError(f"the client secret file {self.client_secret_file!r} is empty")
        return ClientCredentials(client_id, secret, self.scopes)


def read_endpoints(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("the twin's endpoints file does not exist (is `ccharness emulator "
                          "--endpoints-file` running?)", path=path) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the twin's endpoints file: {exc}", path=path) from None
    if not isinstance(data, dict) or "rest_base_url" not in data:
        raise ConfigError("not a twin endpoints file (no rest_base_url)", path=path)
    return data


def connection_for(platform, endpoints_file: str | None = None) -> Connection:
    """Build a Connection from an experiment's ``Platform`` (schema), with an optional
    endpoints-file override (``ccharness run --endpoints-file``)."""
    creds = platform.credentials
    endpoints_file = endpoints_file or platform.endpoints_file
    base_url, token_url, events_url = platform.base_url, platform.token_url, platform.events_url
    if platform.name.value == "twin" and endpoints_file:
        data = read_endpoints(endpoints_file)
        base_url = base_url or data["rest_base_url"]
        token_url = token_url or data.get("token_url")
        events_url = events_url or data.get("events_url")
    else:
        endpoints_file = None
    base_url = base_url.rstrip("/")
    return Connection(
        platform=platform.name.value, api=platform.api.value, base_url=base_url,
        token_url=token_url or base_url + "/oauth/token",
        events_url=events_url or base_url + "/api/v2/events/stream",
        endpoints_file=str(Path(endpoints_file).resolve()) if endpoints_file else None,
        client_id=creds.client_id, client_id_env=creds.client_id_env,
        client_secret_env=creds.client_secret_env,
        client_secret_file=str(Path(creds.client_secret_file).resolve()) if creds.client_secret_file else None,
        scopes=creds.scopes, request_timeout_s=platform.request_timeout_s,
        max_retries=platform.max_retries, api_call_budget=platform.api_call_budget)
