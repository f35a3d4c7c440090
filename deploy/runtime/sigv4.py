"""AWS Signature Version 4 for S3 requests, in the standard library.

Follows AWS's "Signature Version 4 signing process" for the S3 flavour: the path is
URI-encoded once and never normalised, query parameters are sorted by encoded name then
value, header values are trimmed with inner runs of spaces collapsed. Tested against AWS's
published test vectors (tests/runtime/data) and against botocore's signer as an oracle.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str | None = None


def _uri_encode(text: str, safe: str) -> str:
    return quote(text, safe=safe + "-_.~")


def canonical_uri(path: str, *, s3: bool = True) -> str:
    """The path URI-encoded segment by segment ("/" kept); S3 does not normalise or double-encode."""
    encoded = _uri_encode(path or "/", safe="/")
    return encoded if s3 else _uri_encode(encoded, safe="/")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((_uri_encode(k, ""), _uri_encode(v, "")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(canonical header block, signed header list); repeated names join with commas."""
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.strip().lower(), []).append(_SPACES.sub(" ", value.strip()))
    names = sorted(merged)
    block = "".join(f"{name}:{','.join(merged[name])}\n" for name in names)
    return block, ";".join(names)


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@dataclass(frozen=True)
class Signed:
    canonical_request: str
    string_to_sign: str
    signature: str
    authorization: str


def sign(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    payload_hash: str,
    credentials: Credentials,
    region: str,
    service: str,
    amz_date: str,
    s3: bool = True,
) -> Signed:
    """Sign one request. ``headers`` must already hold every header to sign (host, x-amz-date, ...)."""
    header_block, signed_headers = canonical_headers(headers)
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(path, s3=s3),
            canonical_query(query),
            header_block,
            signed_headers,
            payload_hash,
        ]
    )
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = signing_key(credentials.secret_key, date, region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signed(canonical_request, string_to_sign, signature, authorization)


def headers_for(
    headers: Mapping[str, str], *, host: str, amz_date: str, payload_hash: str, token: str | None
) -> dict[str, str]:
    """``headers`` plus what every signed S3 request carries."""
    out = dict(headers)
    out["host"] = host
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    if token:
        out["x-amz-security-token"] = token
    return out
