"""Writes .runpod/tests.json from the committed clips (run after changing a clip or a case).

The clips go in as base64 so the file stays a RunPod Hub tests.json that runs anywhere; a unit
test (tests/worker/test_stt_handler.py) checks that the file still matches the clips.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOME = (
    "#JSGF V1.0;\ngrammar home;\n"
    "public <command> = (turn on | turn off) the (kitchen | bedroom | hall) (lights | fan);\n"
)
# A WAV the worker must refuse: valid, but 8 kHz (the model is 16 kHz).
EIGHT_KHZ = io.BytesIO()
with wave.open(EIGHT_KHZ, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(8000)
    w.writeframes(b"\0\0" * 800)


def clip(name: str) -> str:
    return base64.b64encode((HERE / "clips" / f"{name}.wav").read_bytes()).decode()


def tests() -> dict[str, Any]:
    timeout = 600000  # the first job may meet a cold start that installs the environment
    return {
        "tests": [
            {
                "name": "grammar",
                "input": {"audio_base64": clip("kitchen"), "grammar": HOME},
                "timeout": timeout,
                "expect": {
                    "output_keys": ["words", "duration_s", "rtf"],
                    "checks": [
                        {"path": "text", "text": "turn on the kitchen lights", "max_wer": 0.2},
                        {"path": "words.3.word", "regex": "^kitchen$"},
                        {"path": "duration_s", "number": 1.888, "tolerance": 0.01},
                    ],
                },
            },
            {
                "name": "keywords",
                "input": {"audio_base64": clip("doctor"), "keywords": ["kitchen", "tomorrow morning"]},
                "timeout": timeout,
                "expect": {"checks": [{"path": "text", "text": "tomorrow morning", "max_wer": 0.5}]},
            },
            {
                "name": "not_wav",
                "input": {"audio_base64": base64.b64encode(b"this is not audio").decode()},
                "timeout": timeout,
                "expect": {"status": "FAILED", "error": "not a WAV file.*expected a WAV file of 16-bit PCM"},
            },
            {
                "name": "wrong_rate",
                "input": {"audio_base64": base64.b64encode(EIGHT_KHZ.getvalue()).decode()},
                "timeout": timeout,
                "expect": {"status": "FAILED", "error": "8000 Hz; expected .* 16000 Hz"},
            },
        ],
        "config": {
            "gpuTypeId": "NVIDIA GeForce RTX 4090",
            "gpuCount": 1,
            "env": [],
            "allowedCudaVersions": ["12.4"],
        },
    }


if __name__ == "__main__":
    (HERE / "tests.json").write_text(json.dumps(tests(), indent=1) + "\n")
