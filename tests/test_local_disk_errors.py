"""The local disk refusing a read or write: one line naming the path, saying which, exit 3.

Exit code 3 is documented as "an external system is unavailable, or the local disk
refused a read or write" (README, every writing command's --help). `/dev/full`,
`/proc` and a regular file standing where a folder is needed are real refusals this
machine can produce without root tricks; the commands run as a user would run them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import files
from deploy.errors import ExitCode, FileWriteError
from tests.conftest import REPO, MakeProject

IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0123456"
DISK = "the local disk refused a read or write (full, read-only, permission)"


def rpdeploy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        ("/dev/full", "/dev/full is a file, not a folder"),
        ("/dev/full/deeper", "/dev/full is a file, not a folder"),
        ("/proc/x", ".+"),
        ("a-file/sub", r"\S+/a-file is a file, not a folder"),
    ],
)
def test_render_out_where_the_disk_refuses_says_cannot_write(
    make_project: MakeProject, out: str, reason: str
) -> None:
    root = make_project()
    (root / "a-file").write_text("x")
    done = rpdeploy("render", "--image", IMAGE, "--out", out, cwd=root)
    assert done.returncode == ExitCode.UNAVAILABLE, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    # A write says "cannot write" (it once said "cannot read: Not a directory").
    assert re.fullmatch(rf"error: \S+/Dockerfile\.slim: cannot write: {reason}", lines[0]), lines
    assert done.stdout == ""


def test_render_out_relative_writes_into_that_folder(make_project: MakeProject) -> None:
    root = make_project()
    done = rpdeploy("render", "--image", IMAGE, "--out", "outdir", cwd=root)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (root / "outdir").iterdir()) == [
        ".dockerignore",
        "Dockerfile.slim",
        "endpoint.create.json",
        "endpoint.update.json",
    ]


def test_read_and_write_errors_say_which(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(FileWriteError, match=r"folder\.txt: cannot read: Is a directory"):
        files.read_text(tmp_path, tmp_path / "folder.txt")
    with pytest.raises(FileWriteError, match=r"folder\.txt: cannot write: Is a directory"):
        files.write_text(tmp_path, tmp_path / "folder.txt", "y")
    (tmp_path / "plain").write_text("z")
    # A file under a file cannot exist: reading it is "missing", writing it names the file in the way.
    assert files.read_text(tmp_path, tmp_path / "plain" / "x") is None
    with pytest.raises(FileWriteError, match=r"plain/x: cannot write: \S+/plain is a file, not a folder"):
        files.write_text(tmp_path, tmp_path / "plain" / "x", "y")


@pytest.mark.parametrize("command", ["serve", "start"])
def test_emulator_state_folder_the_disk_refuses(command: str, tmp_path: Path) -> None:
    done = rpdeploy("emulator", command, "--state", "/dev/full/state", "--port", "1", cwd=tmp_path)
    assert done.returncode == ExitCode.UNAVAILABLE, done.stderr
    assert done.stderr.splitlines() == [
        "error: /dev/full/state: cannot create the state folder: /dev/full is a file, not a folder"
    ]


def test_exit_code_3_is_documented_for_the_disk() -> None:
    readme = (REPO / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| 3 |"))
    assert "the local disk refused a read or write (full, read-only, permission)" in row


@pytest.mark.parametrize("command", ["render", "build", "push", "emulator serve", "emulator start"])
def test_every_writing_command_documents_exit_code_3(command: str, tmp_path: Path) -> None:
    done = rpdeploy(*command.split(), "--help", cwd=tmp_path)
    text = " ".join(done.stdout.split())
    assert "Exit codes:" in text
    assert re.search(r"3 [^.]*" + re.escape(DISK), text), text
