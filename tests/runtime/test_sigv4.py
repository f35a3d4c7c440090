"""The stdlib SigV4 signer against AWS's published test vectors and, on random requests, botocore."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.runtime import sigv4

VECTORS = Path(__file__).parent / "data" / "aws-sigv4"
CASES = sorted(path.name for path in VECTORS.iterdir() if path.is_dir())


def parse_request(text: str) -> tuple[str, str, list[tuple[str, str]], list[tuple[str, str]], bytes]:
    """request.txt → (method, path, query pairs, headers, body); continuation lines fold into values."""
    head, _, body = text.partition("\n\n")
    first, *lines = head.split("\n")
    method = first.split(" ", 1)[0]
    target = first[len(method) + 1 : first.rindex(" HTTP/")]
    path, _, query = target.partition("?")
    pairs = [(unquote(k), unquote(v)) for k, _, v in (p.partition("=") for p in query.split("&") if p)]
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1].isspace() and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
        elif line:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return method, unquote(path), pairs, headers, body.encode()


def test_the_vendored_vectors_are_there() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_aws_signing_test_suite(case: str) -> None:
    folder = VECTORS / case
    context = json.loads((folder / "context.json").read_text())
    method, path, query, headers, body = parse_request((folder / "request.txt").read_text())
    amz_date = context["timestamp"].replace("-", "").replace(":", "")
    payload_hash = hashlib.sha256(body).hexdigest()
    headers.append(("X-Amz-Date", amz_date))
    token = context["credentials"].get("token")
    if token and not context.get("omit_session_token"):
        headers.append(("X-Amz-Security-Token", token))
    if context.get("sign_body"):
        headers.append(("X-Amz-Content-SHA256", payload_hash))
    signed = sigv4.sign(
        method=method,
        path=path,
        query=query,
        headers=headers,
        payload_hash=payload_hash,
        credentials=sigv4.Credentials(
            context["credentials"]["access_key_id"], context["credentials"]["secret_access_key"]
        ),
        region=context["region"],
        service=context["service"],
        amz_date=amz_date,
    )
    assert signed.canonical_request == (folder / "header-canonical-request.txt").read_text()
    assert signed.string_to_sign == (folder / "header-string-to-sign.txt").read_text()
    assert signed.signature == (folder / "header-signature.txt").read_text().strip()


# ---- botocore's S3 signer as the oracle on random requests

_SEGMENT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#"),
    min_size=1,
    max_size=12,
)
_QUERY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)
_HEADER_NAME = st.from_regex(
    r"x-amz-meta-[a-z0-9]{1,10}|content-type|range|x-custom-[a-z]{1,6}", fullmatch=True
)
_HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30).filter(
    lambda v: v.strip() != ""
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "PUT", "HEAD", "DELETE", "POST"]),
    segments=st.lists(_SEGMENT, min_size=0, max_size=4),
    query=st.lists(st.tuples(_QUERY_TEXT, _QUERY_TEXT), max_size=4),
    extra=st.dictionaries(_HEADER_NAME, _HEADER_VALUE, max_size=4),
    body=st.binary(max_size=64),
    region=st.sampled_from(["us-east-1", "us-west-004", "eu-central-1"]),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789/+", min_size=8, max_size=40),
)
def test_matches_botocore_on_random_requests(
    method: str,
    segments: list[str],
    query: list[tuple[str, str]],
    extra: dict[str, str],
    body: bytes,
    region: str,
    secret: str,
) -> None:
    path = "/" + "/".join(segments)
    amz_date = "20261129T120000Z"
    payload_hash = hashlib.sha256(body).hexdigest()
    host = "127.0.0.1:8333"
    headers = sigv4.headers_for(extra, host=host, amz_date=amz_date, payload_hash=payload_hash, token=None)
    ours = sigv4.sign(
        method=method,
        path=path,
        query=query,
        headers=headers.items(),
        payload_hash=payload_hash,
        credentials=sigv4.Credentials("AKIDTEST", secret),
        region=region,
        service="s3",
        amz_date=amz_date,
    )

    encoded_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query)
    url = f"http://{host}{quote(path, safe='/-_.~')}" + (f"?{encoded_query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    request.context["timestamp"] = amz_date
    auth = S3SigV4Auth(BotoCredentials("AKIDTEST", secret), "s3", region)
    canonical = auth.canonical_request(request)
    theirs = auth.signature(auth.string_to_sign(request, canonical), request)
    assert ours.canonical_request == canonical
    assert ours.signature == theirs
