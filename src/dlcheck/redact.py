"""Keep secrets from the environment out of every output format.

Two layers: variables whose *name* looks secret are never shown with their value, and every
rendered document is scrubbed of the *values* of such variables (so a token that leaks into,
say, a command line or an error message is still masked).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

MASK = "****"

_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|(^|_)PASS($|_)|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|"
    r"(^|_)KEY($|_)|CREDENTIAL|(^|_)AUTH|SESSION|COOKIE|SIGNATURE|WEBHOOK|(^|_)PAT($|_)|"
    r"(^|_)DSN($|_)|CONNECTION_STRING)",
    re.IGNORECASE,
)
# Values that are secrets whatever the variable is called.
_SECRET_VALUE = re.compile(
    r"^(hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|sk-[A-Za-z0-9_-]{16,}|"
    r"AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{16,}|"
    r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\..*)$"
)
# user:password@host in URLs (proxies, database URLs, pip index URLs).
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s:]+:[^/@\s]+)@"
)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def is_secret(name: str, value: str) -> bool:
    return is_secret_name(name) or bool(_SECRET_VALUE.match(value.strip()))


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment that must never appear in output, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if len(v) >= 4 and is_secret(k, v)}
    for v in env.values():
        for m in _URL_CREDENTIALS.finditer(v):
            password = m.group("cred").split(":", 1)[1]
            if len(password) >= 4:
                values.add(password)
    return sorted(values, key=len, reverse=True)


def redact_value(name: str, value: str) -> str:
    """The value of one variable as it may be shown."""
    if is_secret(name, value):
        return MASK
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{MASK}@", value)


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Mask every secret value of the environment wherever it appears in ``text``."""
    for value in secret_values(environ):
        text = text.replace(value, MASK)
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
