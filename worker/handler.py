"""Reference worker for rpdeploy: speech to text on CPU with pocketsphinx (English).

Input (one audio source, WAV, 16-bit PCM, mono, 16000 Hz, at most 25 MB):
  {"audio_base64": str}                      the WAV file, base64
  {"s3": {"bucket": str, "key": str}}        read with boto3 and the endpoint's AWS_* variables
                                             (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                                             AWS_ENDPOINT_URL, AWS_REGION, default us-east-1)
  {"url": "http(s)://..."}                   fetched with 15 s per read, 60 s in all; http(s) on
                                             every redirect; loopback, link-local and private
                                             addresses refused unless STT_ALLOW_PRIVATE_URLS=1;
                                             user:password@ sent as basic auth; errors show the
                                             URL without user:password and query
  optional, at most one of:
  "grammar": str                             a JSGF grammar (its words from the English dictionary)
  "keywords": [str | {"phrase": str, "threshold": float}]
                                             keyword spotting; threshold 1e-20 unless given
Output:
  {"text": str, "words": [{"word", "start_s", "end_s", "confidence"}], "duration_s": float,
   "processing_s": float, "rtf": processing_s / duration_s, "search": "lm"|"grammar"|"keywords",
   "model": "pocketsphinx 5.1.1 en-us"}
Bad input returns {"error": "<what, and what was expected>"}, which makes the job FAILED
(RunPod semantics). The English model ships inside the pocketsphinx wheel: nothing is
downloaded at run time. Clips and cases: .runpod/ (README.md there says how they were made).
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import ipaddress
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import wave
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EXPECTED = "expected a WAV file of 16-bit PCM, mono, 16000 Hz (sox in.wav -r 16000 -c 1 -b 16 out.wav)"
SAMPLE_RATE = 16000
MIN_DURATION_S = 0.1
MAX_BYTES = 25 * 1024 * 1024
#: Each socket operation of a fetch (url, S3) ...
URL_TIMEOUT_S = 15
S3_CONNECT_TIMEOUT_S = 5
S3_READ_TIMEOUT_S = 15
S3_ATTEMPTS = 2
#: ... and the whole fetch: it ends within FETCH_TOTAL_S plus one socket timeout, well inside the
#: endpoint's job timeout (120 s in rpdeploy.yaml).
FETCH_TOTAL_S = 60
CHUNK = 1 << 16
#: Set to 1 where the audio URLs are on loopback or a private network (a local stack, tests).
ALLOW_PRIVATE_URLS = "STT_ALLOW_PRIVATE_URLS"
DEFAULT_KEYWORD_THRESHOLD = 1e-20
MODEL = "pocketsphinx 5.1.1 en-us"
#: What an S3 error code means for the caller (others: the service's own message).
S3_HINTS = {
    "NoSuchKey": "no such object",
    "NoSuchBucket": "no such bucket",
    "AccessDenied": "access denied (check AWS_ACCESS_KEY_ID and the bucket's policy)",
    "InvalidAccessKeyId": "unknown access key (check AWS_ACCESS_KEY_ID)",
    "SignatureDoesNotMatch": "signature refused (check AWS_SECRET_ACCESS_KEY)",
}
#: Segments pocketsphinx reports that are not words: sentence marks, silence, fillers.
NOT_WORDS = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")


class InputError(ValueError):
    """Input the worker cannot use; the message names what and what was expected."""


@dataclass(frozen=True)
class Audio:
    pcm: bytes
    duration_s: float


# ---- audio sources


def read_source(payload: dict[str, Any]) -> bytes:
    """The WAV bytes from exactly one of audio_base64, s3, url."""
    given = [key for key in ("audio_base64", "s3", "url") if payload.get(key) is not None]
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        raise InputError(f"give exactly one audio source: audio_base64, s3 or url (found: {found})")
    source = given[0]
    if source == "audio_base64":
        return from_base64(payload["audio_base64"])
    if source == "s3":
        return from_s3(payload["s3"])
    return from_url(payload["url"])


def from_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"audio_base64 must be a string (base64 of a WAV file), not {type(value).__name__}")
    if len(value) > MAX_BYTES * 4 // 3 + 4:
        raise InputError(f"audio_base64 is over {MAX_BYTES // (1024 * 1024)} MB")
    # A data: URL's prefix and MIME line breaks (base64 -w76, RFC 2045) are what other tools send.
    if value.startswith("data:"):
        header, comma, value = value.partition(",")
        if not comma or not header.endswith(";base64"):
            raise InputError("audio_base64: a data: URL must be data:<type>;base64,<data>")
    compact = "".join(value.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        bad = sorted({c for c in compact if not (c.isascii() and (c.isalnum() or c in "+/="))})
        if bad:
            shown = " ".join(repr(c) for c in bad[:5])
            raise InputError(f"audio_base64 is not valid base64: it holds {shown}") from None
        raise InputError(
            f"audio_base64 is not valid base64: {len(compact)} characters, padding or length is wrong"
        ) from None


def from_s3(value: Any) -> bytes:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("bucket"), str)
        or not isinstance(value.get("key"), str)
        or not value["bucket"]
        or not value["key"]
    ):
        raise InputError('s3 must be {"bucket": "<name>", "key": "<object key>"}')
    import boto3  # noqa: PLC0415  (the runpod SDK brings boto3; imported only when used)
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    where = f"s3://{value['bucket']}/{value['key']}"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    deadline = time.monotonic() + FETCH_TOTAL_S
    # botocore's defaults (60 s per read, several attempts) outlast a job's timeout on a server
    # that accepts and never answers: short timeouts, two attempts, and the overall deadline.
    config = Config(
        connect_timeout=S3_CONNECT_TIMEOUT_S,
        read_timeout=S3_READ_TIMEOUT_S,
        retries={"total_max_attempts": S3_ATTEMPTS, "mode": "standard"},  # initial one included
    )
    try:
        # A new session reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL now
        # (boto3's default session would keep the first credentials it saw).
        client = boto3.session.Session().client("s3", region_name=region, config=config)
        # GET, not HEAD first: only a body carries the error code (NoSuchBucket, NoSuchKey, ...).
        body = client.get_object(Bucket=value["bucket"], Key=value["key"])
        try:
            if body.get("ContentLength", 0) > MAX_BYTES:
                raise InputError(f"{where} is over {MAX_BYTES // (1024 * 1024)} MB")
            return read_capped(body["Body"].read, where, deadline)
        finally:
            body["Body"].close()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        hint = S3_HINTS.get(code, error.get("Message", ""))
        raise InputError(f"{where}: {code}: {short(hint)}".rstrip(": ")) from None
    except BotoCoreError as exc:
        raise InputError(f"{where}: {short(str(exc))}") from None


def short(text: str, limit: int = 200) -> str:
    """A library's message as one line of at most ``limit`` characters (botocore's run to 400+)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def read_capped(read: Callable[[int], bytes], where: str, deadline: float) -> bytes:
    """Everything ``read(n)`` gives, at most `MAX_BYTES`, before ``deadline`` (time.monotonic()):
    a per-read timeout alone lets a server that drips a byte at a time hold the job for ever."""
    chunks: list[bytes] = []
    size = 0
    while chunk := read(CHUNK):
        size += len(chunk)
        if size > MAX_BYTES:
            raise InputError(f"{where}: over {MAX_BYTES // (1024 * 1024)} MB")
        if time.monotonic() > deadline:
            raise InputError(f"{where}: not fetched within {FETCH_TOTAL_S} s")
        chunks.append(chunk)
    return b"".join(chunks)


def shown_url(url: str) -> str:
    """``url`` without userinfo, query and fragment: a password or a presigned URL's signature
    (X-Amz-Signature, X-Amz-Credential) must not reach a job's error."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def private_urls_allowed() -> bool:
    """Loopback, link-local and private addresses only when the endpoint says so (a local stack)."""
    return os.environ.get(ALLOW_PRIVATE_URLS, "").strip().lower() in {"1", "true", "yes", "on"}


def checked_address(host: str, port: int) -> tuple[Any, ...]:
    """The first address of ``host`` the worker may connect to; InputError when every one is
    internal (loopback, link-local, private, reserved, multicast, unspecified) and not allowed.
    Checked at each connection, so a redirect or a DNS answer that changes cannot get around it."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(f"url host {host}: {exc.strerror or exc}") from None
    allowed = private_urls_allowed()
    for family, kind, proto, _, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if allowed or ip.is_global:
            return family, kind, proto, address
    raise InputError(
        f"url host {host} is an internal address ({found[0][4][0]}): refused"
        f" ({ALLOW_PRIVATE_URLS}=1 allows it, for a local stack)"
    )


def guarded_connection(
    address: tuple[str, int], timeout: float | None = None, source_address: Any = None
) -> socket.socket:
    """socket.create_connection for http.client, to a checked address only."""
    family, kind, proto, sockaddr = checked_address(*address)
    sock = socket.socket(family, kind, proto)
    try:
        if timeout is not None:
            sock.settimeout(timeout)
        sock.connect(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock


class _GuardedHTTP(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = guarded_connection


class _GuardedHTTPS(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = guarded_connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_GuardedHTTP, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_GuardedHTTPS, req)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Redirects to http(s) only (urllib would follow ftp:// and wait on it)."""

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        location = headers.get("location") or headers.get("uri") or ""
        newurl = urllib.parse.urljoin(req.full_url, location)
        if urllib.parse.urlsplit(newurl).scheme not in {"http", "https"}:
            fp.close()
            raise InputError(f"url {shown_url(req.full_url)}: redirected to {shown_url(newurl)}, not http(s)")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _opener() -> urllib.request.OpenerDirector:
    """http(s) and nothing else: no file:, ftp:, data: handlers, no proxies from the environment."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        _HTTPHandler(),
        _HTTPSHandler(),
        _RedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def from_url(value: Any) -> bytes:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise InputError("url must be an http:// or https:// address of a WAV file")
    shown = shown_url(value)
    deadline = time.monotonic() + FETCH_TOTAL_S
    try:
        with _opener().open(_request(value, shown), timeout=URL_TIMEOUT_S) as response:
            return read_capped(response.read1, f"url {shown}", deadline)
    except urllib.error.HTTPError as exc:
        raise InputError(f"url {shown}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InputError(f"url {shown}: {short(str(reason))}") from None


def _request(url: str, shown: str) -> urllib.request.Request:
    """The request; ``user:password@`` (which urllib cannot use in a URL) goes as basic auth to
    that host only (an unredirected header: a redirect elsewhere does not carry it)."""
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise InputError(f"url {shown}: the port is not a number") from None
    if "@" not in parts.netloc:
        return urllib.request.Request(url)  # noqa: S310 (http(s): checked by from_url and the opener)
    netloc = parts.netloc.rpartition("@")[2]
    bare = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    request = urllib.request.Request(bare)  # noqa: S310 (http(s): checked by from_url and the opener)
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


# ---- WAV


def parse_wav(data: bytes) -> Audio:
    """16-bit mono 16 kHz PCM samples from a WAV file, or InputError saying what is wrong."""
    if not data:
        raise InputError(f"audio is empty (0 bytes); {EXPECTED}")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InputError(f"audio is not a WAV file (no RIFF/WAVE header); {EXPECTED}")
    try:
        with wave.open(io.BytesIO(data)) as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        reason = str(exc) or "cut short"
        raise InputError(f"audio is not a readable WAV file ({reason}); {EXPECTED}") from None
    got = f"{width * 8}-bit, {channels} channel(s), {rate} Hz"
    if (channels, width, rate) != (1, 2, SAMPLE_RATE):
        raise InputError(f"audio is {got}; {EXPECTED}")
    if not pcm:
        raise InputError(f"audio has no samples (0 s); {EXPECTED}")
    duration_s = len(pcm) / 2 / SAMPLE_RATE
    if duration_s < MIN_DURATION_S:  # shorter than a few of the decoder's 10 ms frames: nothing to hear
        raise InputError(
            f"audio is {duration_s * 1000:g} ms long; at least {MIN_DURATION_S * 1000:g} ms is needed"
        )
    return Audio(pcm=pcm, duration_s=duration_s)


# ---- recognition


class Recognizer:
    """One pocketsphinx decoder per process (loading the model takes seconds), one job at a time."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder  # noqa: PLC0415 (heavy: loaded on the first job)

        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="ERROR")
        self.default_search = self.decoder.current_search()
        self.frame_rate = int(self.decoder.config["frate"])

    def transcribe(self, audio: Audio, grammar: Any = None, keywords: Any = None) -> dict[str, Any]:
        search = self.use_search(grammar, keywords)
        started = time.perf_counter()
        try:
            self.decoder.start_utt()
            self.decoder.process_raw(audio.pcm, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            words = [self.word(seg) for seg in (self.decoder.seg() or []) if not NOT_WORDS.match(seg.word)]
        finally:
            if search != "lm":
                self.decoder.activate_search(self.default_search)
                self.decoder.remove_search("job")
        processing_s = time.perf_counter() - started
        return {
            "text": " ".join((hyp.hypstr if hyp else "").split()),
            "words": words,
            "duration_s": round(audio.duration_s, 3),
            "processing_s": round(processing_s, 3),
            "rtf": round(processing_s / audio.duration_s, 4),
            "search": search,
            "model": MODEL,
        }

    def word(self, seg: Any) -> dict[str, Any]:
        return {
            "word": re.sub(r"\(\d+\)$", "", seg.word.strip()),  # on(2): the dictionary's 2nd pronunciation
            "start_s": round(seg.start_frame / self.frame_rate, 2),
            "end_s": round((seg.end_frame + 1) / self.frame_rate, 2),
            "confidence": round(float(seg.prob), 3),
        }

    def use_search(self, grammar: Any, keywords: Any) -> str:
        if grammar is not None and keywords is not None:
            raise InputError("give grammar or keywords, not both")
        if grammar is not None:
            if not isinstance(grammar, str) or not grammar.strip():
                raise InputError(
                    "grammar must be a JSGF grammar as text (#JSGF V1.0; grammar g; public <s> = ...;)"
                )
            check_grammar_rules(grammar)
            try:
                self.decoder.add_jsgf_string("job", grammar)
            except (ValueError, RuntimeError):
                raise InputError(
                    "grammar: not a valid JSGF grammar, or it uses a word the English dictionary lacks"
                ) from None
            self.decoder.activate_search("job")
            return "grammar"
        if keywords is not None:
            lines = [self.keyword_line(item) for item in self.keyword_list(keywords)]
            with tempfile.NamedTemporaryFile("w", suffix=".kws", delete=False) as kws:
                kws.write("".join(lines))
            try:
                self.decoder.add_kws("job", kws.name)
            finally:
                os.unlink(kws.name)
            self.decoder.activate_search("job")
            return "keywords"
        return "lm"

    @staticmethod
    def keyword_list(keywords: Any) -> list[Any]:
        if not isinstance(keywords, list) or not keywords:
            raise InputError('keywords must be a non-empty list of phrases or {"phrase", "threshold"}')
        return keywords

    def keyword_line(self, item: Any) -> str:
        phrase, threshold = item, DEFAULT_KEYWORD_THRESHOLD
        if isinstance(item, dict):
            phrase, threshold = item.get("phrase"), item.get("threshold", DEFAULT_KEYWORD_THRESHOLD)
        if not isinstance(phrase, str) or not phrase.strip():
            raise InputError(f"keywords: {item!r} is not a phrase")
        # bool is an int in Python: true would pass as 1.
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise InputError(f"keywords: threshold of {phrase!r} must be a number in (0, 1], e.g. 1e-20")
        words = phrase.lower().split()
        missing = [w for w in words if self.decoder.lookup_word(w) is None]
        if missing:
            raise InputError(f"keywords: {', '.join(missing)} not in the English dictionary")
        return f"{' '.join(words)} /{threshold:g}/\n"


#: JSGF rule definitions (``public <name> =``), references (``<name>``), imports; built-in rules.
_RULE_DEFINED = re.compile(r"<([^<>\s]+)>\s*=")
_RULE_USED = re.compile(r"<([^<>\s]+)>")
_IMPORT = re.compile(r"(?:^|;)\s*import\s")
_SPECIAL_RULES = {"NULL", "VOID", "GARBAGE"}


def check_grammar_rules(grammar: str) -> None:
    """InputError for an import or a reference to an undefined rule: pocketsphinx only logs these
    and decodes to empty text, which would look like silence rather than a bad grammar."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", grammar, flags=re.DOTALL)
    if _IMPORT.search(text):
        raise InputError("grammar: imports are not supported; give one self-contained grammar")
    defined = set(_RULE_DEFINED.findall(text))
    undefined = sorted(set(_RULE_USED.findall(text)) - defined - _SPECIAL_RULES)
    if undefined:
        raise InputError(f"grammar: rule(s) used but not defined: {', '.join(f'<{n}>' for n in undefined)}")


_recognizer: Recognizer | None = None


def recognizer() -> Recognizer:
    global _recognizer  # noqa: PLW0603 (one decoder per worker process)
    if _recognizer is None:
        _recognizer = Recognizer()
    return _recognizer


def handler(job: dict[str, Any]) -> dict[str, Any]:
    payload = job.get("input")
    if not isinstance(payload, dict):
        return {"error": "input must be a JSON object with audio_base64, s3 or url"}
    try:
        audio = parse_wav(read_source(payload))
        return recognizer().transcribe(audio, payload.get("grammar"), payload.get("keywords"))
    except InputError as exc:
        return {"error": str(exc)}


if __name__ == "__main__":
    import runpod

    # Load the model before taking jobs (RunPod's advice: outside the handler), so the first job's
    # execution time is decoding only.
    recognizer()
    runpod.serverless.start({"handler": handler})
