"""The speech-to-text reference worker's handler (worker/handler.py), in process, on the committed
clips (.runpod/clips): pocketsphinx is real (the dev extra installs it), the S3 source reads the
stack's seaweedfs (scripts/stack.sh uploads samples/garage.wav), the url source a local HTTP server.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import importlib.util
import io
import json
import socket
import sys
import threading
import time
import urllib.parse
import wave
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deploy.config import load_config
from deploy.release.cases import load_cases
from deploy.release.expect import Outcome, failures
from tests.conftest import REPO
from tests.runtime.conftest import stack_env

CLIPS = REPO / ".runpod" / "clips"
HOME = (
    "#JSGF V1.0; grammar home; "
    "public <command> = (turn on | turn off) the (kitchen | bedroom | hall) (lights | fan);"
)
DOOR = "#JSGF V1.0; grammar door; public <command> = (open | close) the (garage | front | back) door;"
#: The S3 tests need the stack's seaweedfs (scripts/stack.sh): stack tests, not `make unit`.
STACK = pytest.mark.docker
EXPECTED = "expected a WAV file of 16-bit PCM, mono, 16000 Hz"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stt() -> ModuleType:
    # Its own module name: worker/handler.py must not shadow (or be shadowed by) another `handler`.
    return load(REPO / "worker" / "handler.py", "stt_reference_handler")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def clip(name: str) -> str:
    return b64((CLIPS / f"{name}.wav").read_bytes())


def wav(channels: int = 1, width: int = 2, rate: int = 16000, frames: int = 1600) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\0" * width * channels * frames)
    return out.getvalue()


def run(stt: ModuleType, **payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = stt.handler({"id": "t", "input": payload})
    return result


def test_grammar_transcribes_the_clip_with_word_timings(stt: ModuleType) -> None:
    out = run(stt, audio_base64=clip("kitchen"), grammar=HOME)
    assert out["text"] == "turn on the kitchen lights"
    assert [w["word"] for w in out["words"]] == ["turn", "on", "the", "kitchen", "lights"]
    starts = [w["start_s"] for w in out["words"]]
    assert starts == sorted(starts)
    assert all(w["start_s"] < w["end_s"] <= out["duration_s"] for w in out["words"])
    assert all(0 <= w["confidence"] <= 1 for w in out["words"])
    assert out["duration_s"] == pytest.approx(30211 / 16000, abs=0.001)
    assert out["search"] == "grammar"
    assert out["rtf"] > 0
    assert out["model"] == "pocketsphinx 5.1.1 en-us"


def test_keywords_spot_the_phrase(stt: ModuleType) -> None:
    out = run(stt, audio_base64=clip("doctor"), keywords=["kitchen", {"phrase": "tomorrow morning"}])
    assert out["text"] == "tomorrow morning"
    assert out["search"] == "keywords"


def test_free_decoding_after_a_grammar_job_uses_the_language_model_again(stt: ModuleType) -> None:
    assert run(stt, audio_base64=clip("garage"), grammar=DOOR)["text"] == "open the garage door"
    out = run(stt, audio_base64=clip("garage"))
    assert out["search"] == "lm"
    assert "error" not in out


def test_mime_wrapped_base64_and_data_urls_are_read(stt: ModuleType) -> None:
    plain = clip("kitchen")
    wrapped = "\n".join(plain[i : i + 76] for i in range(0, len(plain), 76)) + "\n"
    for given in (wrapped, f"data:audio/wav;base64,{wrapped}", " " + plain + " "):
        assert run(stt, audio_base64=given, grammar=HOME)["text"] == "turn on the kitchen lights"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            {"audio_base64": b64(b"this is not audio")},
            f"audio is not a WAV file (no RIFF/WAVE header); {EXPECTED}",
        ),
        ({"audio_base64": ""}, f"audio is empty (0 bytes); {EXPECTED}"),
        ({"audio_base64": b64(wav(rate=8000))}, f"audio is 16-bit, 1 channel(s), 8000 Hz; {EXPECTED}"),
        ({"audio_base64": b64(wav(channels=2))}, f"audio is 16-bit, 2 channel(s), 16000 Hz; {EXPECTED}"),
        ({"audio_base64": b64(wav(width=1))}, f"audio is 8-bit, 1 channel(s), 16000 Hz; {EXPECTED}"),
        ({"audio_base64": b64(wav(frames=0))}, f"audio has no samples (0 s); {EXPECTED}"),
        ({"audio_base64": b64(wav()[:30])}, "audio is not a readable WAV file (cut short); "),
        ({"audio_base64": b64(wav(frames=1))}, "audio is 0.0625 ms long; at least 100 ms is needed"),
        ({"audio_base64": "not base64!"}, "audio_base64 is not valid base64: it holds '!'"),
        ({"audio_base64": "QUJD" + "Q"}, "audio_base64 is not valid base64: 5 characters, padding"),
        ({"audio_base64": "data:audio/wav,RIFF"}, "audio_base64: a data: URL must be data:<type>;base64,"),
        ({"audio_base64": 5}, "audio_base64 must be a string (base64 of a WAV file), not int"),
        ({}, "give exactly one audio source: audio_base64, s3 or url (found: none)"),
        (
            {"audio_base64": "", "url": "http://x"},
            "give exactly one audio source: audio_base64, s3 or url (found: audio_base64, url)",
        ),
        ({"s3": {"bucket": "b"}}, 's3 must be {"bucket": "<name>", "key": "<object key>"}'),
        ({"url": "file:///etc/passwd"}, "url must be an http:// or https:// address of a WAV file"),
    ],
)
def test_bad_audio_is_one_clear_error(stt: ModuleType, payload: dict[str, Any], error: str) -> None:
    out = run(stt, **payload)
    assert set(out) == {"error"}
    assert out["error"].startswith(error), out["error"]


@pytest.mark.parametrize(
    ("search", "error"),
    [
        ({"grammar": HOME, "keywords": ["kitchen"]}, "give grammar or keywords, not both"),
        (
            {"grammar": "not jsgf"},
            "grammar: not a valid JSGF grammar, or it uses a word the English dictionary lacks",
        ),
        ({"grammar": "#JSGF V1.0; grammar g; public <c> = xyzzyq;"}, "grammar: not a valid JSGF grammar"),
        ({"grammar": ""}, "grammar must be a JSGF grammar as text"),
        (
            {"grammar": "#JSGF V1.0; grammar g; public <c> = open the <what>;"},
            "grammar: rule(s) used but not defined: <what>",
        ),
        (
            {"grammar": "#JSGF V1.0; grammar g; import <other.x>; public <c> = open <x>;"},
            "grammar: imports are not supported",
        ),
        ({"keywords": []}, "keywords must be a non-empty list"),
        ({"keywords": ["kitchen", "xyzzyq frobq"]}, "keywords: xyzzyq, frobq not in the English dictionary"),
        (
            {"keywords": [{"phrase": "kitchen", "threshold": 2}]},
            "keywords: threshold of 'kitchen' must be a number",
        ),
        ({"keywords": [7]}, "keywords: 7 is not a phrase"),
        (
            {"keywords": [{"phrase": "kitchen", "threshold": True}]},
            "keywords: threshold of 'kitchen' must be a number",
        ),
    ],
)
def test_bad_search_is_one_clear_error(stt: ModuleType, search: dict[str, Any], error: str) -> None:
    out = run(stt, audio_base64=clip("garage"), **search)
    assert set(out) == {"error"}
    assert out["error"].startswith(error), out["error"]
    # The failed job leaves the decoder usable: the next job decodes with its grammar.
    assert run(stt, audio_base64=clip("garage"), grammar=DOOR)["text"] == "open the garage door"


def test_input_that_is_not_an_object(stt: ModuleType) -> None:
    assert stt.handler({"input": "hello"}) == {
        "error": "input must be a JSON object with audio_base64, s3 or url"
    }


# ---- url: a local HTTP server (the worker fetches with urllib)


#: What the url tests' server keeps behind basic auth (user:password in the URL becomes that).
AUTH = "Basic " + base64.b64encode(b"user:pa ss").decode()


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(CLIPS), **kwargs)

        def do_GET(self) -> None:
            if self.path.startswith("/go?"):  # a redirect to wherever ?to= says
                self.send_response(302)
                self.send_header("Location", urllib.parse.unquote(self.path.partition("?to=")[2]))
                self.end_headers()
            elif self.path.startswith("/private/"):
                if self.headers.get("Authorization") != AUTH:
                    self.send_error(401)
                    return
                self.path = self.path.removeprefix("/private")
                super().do_GET()
            elif self.path == "/drip.wav":  # a byte at a time: each read is quick, the whole is not
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                with contextlib.suppress(OSError):
                    for _ in range(100000):
                        self.wfile.write(b"R")
                        self.wfile.flush()
                        time.sleep(0.05)
            else:
                super().do_GET()

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_private(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test server is on loopback, which a worker refuses unless its endpoint says otherwise.
    monkeypatch.setenv("STT_ALLOW_PRIVATE_URLS", "1")


@pytest.mark.usefixtures("allow_private")
def test_url_source(stt: ModuleType, http_base: str) -> None:
    assert run(stt, url=f"{http_base}/kitchen.wav", grammar=HOME)["text"] == "turn on the kitchen lights"


@pytest.mark.usefixtures("allow_private")
def test_url_that_is_missing(stt: ModuleType, http_base: str) -> None:
    assert run(stt, url=f"{http_base}/none.wav") == {
        "error": f"url {http_base}/none.wav: HTTP 404 File not found"
    }


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.1", "0.0.0.0"]
)
def test_url_to_an_internal_address_is_refused_unless_allowed(stt: ModuleType, host: str) -> None:
    out = run(stt, url=f"http://{host}:9/a.wav")
    assert "is an internal address" in out["error"]
    assert "STT_ALLOW_PRIVATE_URLS=1 allows it" in out["error"]


def test_a_redirect_to_an_internal_address_is_refused_at_that_hop(
    stt: ModuleType, http_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first hop is allowed (as a public server would be); the redirect's target is checked on its own.
    allowed = {http_base.removeprefix("http://").partition(":")[0] + ":" + http_base.rpartition(":")[2]}
    checked = stt.checked_address

    def only_first_hop(host: str, port: int) -> Any:
        if f"{host}:{port}" in allowed:
            allowed.clear()
            with monkeypatch.context() as inner:
                inner.setenv("STT_ALLOW_PRIVATE_URLS", "1")
                return checked(host, port)
        return checked(host, port)

    monkeypatch.setattr(stt, "checked_address", only_first_hop)
    target = urllib.parse.quote(f"{http_base}/kitchen.wav", safe="")
    out = run(stt, url=f"{http_base}/go?to={target}")
    assert "is an internal address (127.0.0.1): refused" in out["error"]


@pytest.mark.usefixtures("allow_private")
@pytest.mark.parametrize("target", ["ftp://127.0.0.1/a.wav", "file:///etc/passwd", "data:,RIFF"])
def test_a_redirect_must_stay_http(stt: ModuleType, http_base: str, target: str) -> None:
    out = run(stt, url=f"{http_base}/go?to={urllib.parse.quote(target, safe='')}")
    assert out["error"].startswith(f"url {http_base}/go: redirected to ")
    assert out["error"].endswith(", not http(s)")


@pytest.mark.usefixtures("allow_private")
def test_url_userinfo_is_basic_auth_and_errors_show_no_secrets(stt: ModuleType, http_base: str) -> None:
    with_user = http_base.replace("http://", "http://user:pa%20ss@")
    assert (
        run(stt, url=f"{with_user}/private/kitchen.wav", grammar=HOME)["text"] == "turn on the kitchen lights"
    )
    signed = f"{with_user}/private/none.wav?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=f00dface"
    out = run(stt, url=signed)
    assert out == {"error": f"url {http_base}/private/none.wav: HTTP 404 File not found"}
    wrong = run(stt, url=f"{http_base.replace('http://', 'http://user:nope@')}/private/kitchen.wav?sig=x")
    assert wrong == {"error": f"url {http_base}/private/kitchen.wav: HTTP 401 Unauthorized"}


@pytest.mark.usefixtures("allow_private")
def test_a_fetch_has_a_deadline_for_the_whole_body(
    stt: ModuleType, http_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every read returns within the socket timeout; only the overall deadline can end it.
    monkeypatch.setattr(stt, "FETCH_TOTAL_S", 0.5)
    out = run(stt, url=f"{http_base}/drip.wav")
    assert out == {"error": f"url {http_base}/drip.wav: not fetched within 0.5 s"}


# ---- s3: the stack's seaweedfs, which checks signatures


@pytest.fixture
def s3_environ(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = stack_env()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.setenv(key, env[key])
    return env


@STACK
def test_s3_source(stt: ModuleType, s3_environ: dict[str, str]) -> None:
    where = {"bucket": s3_environ["RPDEPLOY_S3_BUCKET"], "key": "samples/garage.wav"}
    assert run(stt, s3=where, grammar=DOOR)["text"] == "open the garage door"


@STACK
def test_s3_missing_object(stt: ModuleType, s3_environ: dict[str, str]) -> None:
    bucket = s3_environ["RPDEPLOY_S3_BUCKET"]
    out = run(stt, s3={"bucket": bucket, "key": "samples/none.wav"})
    assert out == {"error": f"s3://{bucket}/samples/none.wav: NoSuchKey: no such object"}


@STACK
def test_s3_missing_bucket(stt: ModuleType, s3_environ: dict[str, str]) -> None:
    out = run(stt, s3={"bucket": "rpdeploy-no-such-bucket", "key": "a.wav"})
    assert out == {"error": "s3://rpdeploy-no-such-bucket/a.wav: NoSuchBucket: no such bucket"}


@STACK
def test_s3_wrong_credentials(
    stt: ModuleType, s3_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    bucket = s3_environ["RPDEPLOY_S3_BUCKET"]
    out = run(stt, s3={"bucket": bucket, "key": "samples/garage.wav"})
    assert out == {
        "error": f"s3://{bucket}/samples/garage.wav: SignatureDoesNotMatch: "
        "signature refused (check AWS_SECRET_ACCESS_KEY)"
    }


# ---- the committed cases


def test_tests_json_matches_the_clips() -> None:
    build = load(REPO / ".runpod" / "build_tests.py", "stt_build_tests")
    assert json.loads((REPO / ".runpod" / "tests.json").read_text()) == build.tests(), (
        "run python3 .runpod/build_tests.py"
    )


@STACK
def test_every_validation_case_passes_in_process(stt: ModuleType, s3_environ: dict[str, str]) -> None:
    """The release's cases (.runpod/tests.json, then rpdeploy.yaml's S3 case) judged by the same
    code as `rpdeploy validate`, the handler called in process; the emulator test runs them as jobs."""
    cases = load_cases(load_config(REPO / "rpdeploy.yaml", environ=s3_environ))
    assert len(cases.cases) == 5
    for case in cases.cases:
        out = stt.handler({"id": case.name, "input": case.payload})
        # RunPod: a handler's {"error": ...} makes the job FAILED with that error.
        if "error" in out:
            outcome = Outcome(status="FAILED", error=out["error"])
        else:
            outcome = Outcome(status="COMPLETED", output=out, has_output=True)
        assert failures(case.expect, outcome) == [], case.name


@STACK
def test_s3_bad_bucket_name_is_one_short_line(stt: ModuleType, s3_environ: dict[str, str]) -> None:
    out = run(stt, s3={"bucket": "Bad_Bucket!", "key": "a.wav"})
    assert out["error"].startswith("s3://Bad_Bucket!/a.wav: ")
    assert "\n" not in out["error"]
    assert len(out["error"]) <= 240


def test_s3_that_never_answers_ends_by_the_read_timeout_and_few_attempts(
    stt: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listener that accepts and never answers: botocore's defaults wait 60 s per read on each of
    # several attempts; the worker's own timeouts and attempts must be the ones used.
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept_until_closed() -> None:
        with contextlib.suppress(OSError):  # the listener was closed: the test is over
            while True:
                accepted.append(silent.accept()[0])

    threading.Thread(target=accept_until_closed, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setattr(stt, "S3_READ_TIMEOUT_S", 0.2)
    try:
        out = run(stt, s3={"bucket": "b", "key": "a.wav"})
    finally:
        silent.close()
    for connection in accepted:
        connection.close()
    assert out["error"].startswith("s3://b/a.wav: Read timeout on endpoint URL"), out
    assert len(accepted) == stt.S3_ATTEMPTS
