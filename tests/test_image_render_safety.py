"""Rendering and building stay inside the project and never leave half-written files.

Real files, real links, real mounts: the disk-full and read-only cases mount a tiny
tmpfs (they need root, as CI and this machine's test runs have; without it they fail
with the reason rather than skip, so a missing privilege is seen).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tarfile
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from deploy import files
from deploy.config import load_config
from deploy.errors import FileWriteError, OutsideProject
from deploy.image.build import plan_build
from deploy.image.context import build_context
from deploy.image.record import BuildRecord, write_record
from deploy.render import render_project
from deploy.render.environment import MAX_RANGE, MAX_SIZE, MAX_STEPS
from tests.conftest import BASE_CONFIG, MakeProject

Run = Callable[..., Result]
GIT_ID = ["-c", "user.email=t@rpdeploy.dev", "-c", "user.name=t"]
IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0000000"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *GIT_ID, *args], check=True, capture_output=True)


def committed(make_project: MakeProject, config: str = BASE_CONFIG, **kwargs: object) -> Path:
    root = make_project(config, **kwargs)  # type: ignore[arg-type]
    (root / ".gitignore").write_text("build/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


def one_error_line(result: Result) -> str:
    """The result's error, asserting it is one `error:` line (plus an optional hint) and no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert lines, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), result.stderr
    return lines[0]


# ---- links leading out of the project: reads


@pytest.mark.parametrize("outside", ["/etc/passwd", "sibling"])
def test_template_link_leading_out_is_refused_and_never_printed(
    make_project: MakeProject, run_cli: Run, tmp_path: Path, outside: str
) -> None:
    target = Path(outside) if outside.startswith("/") else tmp_path / "outside.j2"
    if not target.exists():
        target.write_text("FROM leaked-from-outside\n")
    root = make_project()
    (root / "templates").mkdir()
    (root / "templates" / "Dockerfile.slim.j2").symlink_to(target)
    for args in (("render", "--check", "--image", IMAGE), ("render", "--image", IMAGE)):
        result = run_cli(*args, cwd=root)
        assert result.exit_code == 2
        line = one_error_line(result)
        assert "templates/Dockerfile.slim.j2" in line
        assert "outside the project" in line
        assert "root:" not in result.output + result.stderr
        assert "leaked-from-outside" not in result.output + result.stderr
    assert not (root / "Dockerfile.slim").exists()


def test_templates_folder_linked_out_is_refused(
    make_project: MakeProject, run_cli: Run, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Dockerfile.slim.j2").write_text("FROM leaked-from-outside\n")
    root = make_project()
    (root / "templates").symlink_to(elsewhere)
    result = run_cli("render", "--check", "--image", IMAGE, cwd=root)
    assert result.exit_code == 2
    assert "outside the project" in one_error_line(result)
    assert "leaked-from-outside" not in result.output


def test_committed_dockerfile_linked_out_is_never_read_into_the_diff(
    make_project: MakeProject, run_cli: Run
) -> None:
    root = make_project()
    (root / "Dockerfile.slim").symlink_to("/etc/passwd")
    result = run_cli("render", "--check", "--image", IMAGE, cwd=root)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith("error: Dockerfile.slim: a link leading outside the project")
    assert "root:" not in result.output


# ---- links leading out: writes


@pytest.mark.parametrize("name", ["Dockerfile.slim", ".dockerignore"])
@pytest.mark.parametrize("outside", ["/etc/passwd", "sibling"])
def test_rendered_file_linked_out_is_not_overwritten(
    make_project: MakeProject, run_cli: Run, tmp_path: Path, name: str, outside: str
) -> None:
    victim = Path(outside) if outside.startswith("/") else tmp_path / "victim.txt"
    if not victim.exists():
        victim.write_text("precious\n")
    before = victim.read_bytes()
    root = make_project()
    (root / name).symlink_to(victim)
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 2
    assert one_error_line(result).startswith(f"error: {name}: a link leading outside the project")
    assert victim.read_bytes() == before
    other = {"Dockerfile.slim", ".dockerignore"} - {name}
    assert not (root / other.pop()).exists()  # all or nothing: no file was written
    assert not (root / "build").exists()


def test_build_folder_linked_out_is_refused_for_specs_and_records(
    make_project: MakeProject, run_cli: Run, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = make_project()
    (root / "build").symlink_to(elsewhere)
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 2
    assert one_error_line(result).startswith("error: build: a link leading outside the project")
    assert list(elsewhere.iterdir()) == []
    loaded = load_config(root / "rpdeploy.yaml", None)
    with pytest.raises(OutsideProject, match=r"(^|/)project/build: a link leading outside"):
        write_record(loaded, _record())
    assert list(elsewhere.iterdir()) == []


def test_links_inside_the_project_are_fine(make_project: MakeProject, run_cli: Run) -> None:
    root = make_project()
    (root / "shared").mkdir()
    (root / "shared" / "Dockerfile.slim.j2").write_text('{% extends "builtin/Dockerfile.slim.j2" %}\n')
    (root / "templates").mkdir()
    (root / "templates" / "Dockerfile.slim.j2").symlink_to(root / "shared" / "Dockerfile.slim.j2")
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("outside", ["/etc/passwd", "sibling"])
def test_context_link_leading_out_is_refused(tmp_path: Path, outside: str) -> None:
    root = tmp_path / "project"
    (root / "worker").mkdir(parents=True)
    (root / "worker" / "handler.py").write_text("x = 1\n")
    target = Path(outside) if outside.startswith("/") else tmp_path / "secret.txt"
    if not target.exists():
        target.write_text("secret\n")
    (root / "worker" / "data.txt").symlink_to(target)
    with pytest.raises(
        OutsideProject, match=r"(^|/)project/worker/data\.txt: a link leading outside the project"
    ):
        build_context(
            root, dockerfile_name="Dockerfile.slim", dockerfile="FROM x\n", dockerignore="*\n!worker\n"
        )


# ---- user template runtime errors: one line naming template and line, bounded resources


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{{ 1/0 }}", "ZeroDivisionError"),
        ("{{ {}['missing'] }}", "template"),
        ("{% for i in range(10**9) %}{% endfor %}", "over the template limit"),
        (f"{{% for i in range({MAX_RANGE + 1}) %}}{{% endfor %}}", "range()"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "recursion"),
        ("{{ 'A' * 10**10 }}", "'*' would make"),
        ("{{ [1, 2] * 10**9 }}", "'*' would make"),
        (
            "{% set ns = namespace(s='AB') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "'~'",
        ),
        (
            "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
            "'+'",
        ),
        ("{% for a in range(9000) %}{% for b in range(9000) %}{% endfor %}{% endfor %}", "loops more than"),
        ("{{ 'a' | center(10**10) }}", "over the template limit"),
        ("{{ 'a'.ljust(10**10) }}", "over the template limit"),
        ("{{ ('a' * 999999).replace('a', 'b' * 999999) }}", ".replace()"),
        ("{{ ('\\t' * 999999).expandtabs(999) }}", ".expandtabs()"),
        ("{{ '%0999999999d' % 1 }}", "format width"),
        ("{{ '{:>99999999}'.format(1) }}", "format width"),
        ("{{ 9 ** 999999 }}", "'**'"),
        ("{% set l = [] %}{{ l.append(1) }}", "unsafe"),
        ("{{ lipsum(10**6) }}", "'lipsum' is undefined"),
        ("{{ ''.__class__ }}", "unsafe"),
    ],
)
def test_template_runtime_errors_are_one_line_with_template_and_line(
    make_project: MakeProject, run_cli: Run, body: str, expected: str
) -> None:
    root = make_project(files={"templates/Dockerfile.slim.j2": f"# line 1\n# line 2\n{body}\n"})
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith("error: templates/Dockerfile.slim.j2:3: "), line
    assert expected in line
    assert not (root / "Dockerfile.slim").exists()


def test_bounds_leave_ordinary_templates_alone(make_project: MakeProject, run_cli: Run) -> None:
    body = (
        "{% block start %}{{ super() }}\n{% set ns = namespace(n=0) %}"
        "{% for i in range(1000) %}{% set ns.n = ns.n + i %}{% endfor %}"
        "# {{ ns.n }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 2 ** 10 }} {{ '%5s' % 'x' }} {{ 'x' | center(9) }}"
        " {{ 'a-b'.replace('-', '_') }}{% endblock %}"
    )
    root = make_project(
        files={"templates/Dockerfile.slim.j2": '{% extends "builtin/Dockerfile.slim.j2" %}\n' + body}
    )
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 0, result.stderr
    assert "# 499500 ababab [1, 2] 1024     x     x     a_b\n" in (root / "Dockerfile.slim").read_text()
    assert MAX_STEPS >= 100 * MAX_RANGE // 10
    assert MAX_SIZE >= 1000


# ---- atomic writes and OS errors on real file systems


@pytest.fixture
def tiny_mount(tmp_path: Path) -> Iterator[Path]:
    """A 128 kB tmpfs (root is needed to mount it; a run without root fails here, visibly)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], check=False, capture_output=True
    )
    assert done.returncode == 0, f"mounting a tmpfs needs root: {done.stderr.decode()}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> None:
    """Use up every free block of ``mount`` (ENOSPC from here on)."""
    with pytest.raises(OSError, match="No space left") as caught, (mount / "filler").open("wb") as handle:  # noqa: PT012
        while True:
            handle.write(b"\0" * 4096)
            handle.flush()
    assert caught.value.errno == errno.ENOSPC


def test_full_disk_render_is_one_line_and_leaves_nothing_half_written(
    tiny_mount: Path, run_cli: Run, make_project: MakeProject
) -> None:
    source = make_project()
    root = tiny_mount / "project"
    subprocess.run(["cp", "-r", str(source), str(root)], check=True)
    (root / ".dockerignore").write_text("# the committed one\n")
    _fill(tiny_mount)
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 3, result.output
    line = one_error_line(result)
    assert "No space left on device" in line
    assert "cannot write" in line
    assert not (root / "Dockerfile.slim").exists()
    assert (root / ".dockerignore").read_text() == "# the committed one\n"
    assert not list(root.rglob("*.tmp"))


def test_full_disk_build_record_is_one_error_and_no_empty_file(
    tiny_mount: Path, make_project: MakeProject
) -> None:
    source = make_project()
    root = tiny_mount / "project"
    subprocess.run(["cp", "-r", str(source), str(root)], check=True)
    loaded = load_config(root / "rpdeploy.yaml", None)
    (root / "build" / "rpdeploy" / "default").mkdir(parents=True)
    _fill(tiny_mount)
    with pytest.raises(FileWriteError, match=r"build\.json: cannot write: No space left on device"):
        write_record(loaded, _record())
    assert not (root / "build" / "rpdeploy" / "default" / "build.json").exists()
    assert list((root / "build" / "rpdeploy" / "default").iterdir()) == []


def test_read_only_file_system_is_one_line(tiny_mount: Path, run_cli: Run, make_project: MakeProject) -> None:
    source = make_project()
    root = tiny_mount / "project"
    subprocess.run(["cp", "-r", str(source), str(root)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_mount)], check=True)
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 3
    assert "Read-only file system" in one_error_line(result)


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_permission_denied_is_one_line_and_nothing_written(make_project: MakeProject) -> None:
    # Root ignores mode bits: run the real CLI as `nobody` (setpriv) on a project it may read, not write.
    source = make_project()
    shared = Path(tempfile.mkdtemp(prefix="rpdeploy-eacces-", dir="/tmp"))
    try:
        root = shared / "project"
        subprocess.run(["cp", "-r", str(source), str(root)], check=True)
        subprocess.run(["chmod", "-R", "a+rX,go-w", str(shared)], check=True)
        done = subprocess.run(
            [*NOBODY, sys.executable, "-m", "deploy", "render", "--image", IMAGE],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "HOME": str(shared)},
        )
        assert done.returncode == 3, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.splitlines()[0] == "error: Dockerfile.slim: cannot write: Permission denied"
        assert sorted(p.name for p in root.iterdir()) == ["rpdeploy.yaml", "worker"]
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=True)


def test_a_folder_where_a_file_must_go_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.slim").mkdir()
    with pytest.raises(FileWriteError, match=r"Dockerfile\.slim: cannot write: Is a directory"):
        files.write_text(tmp_path, tmp_path / "Dockerfile.slim", "FROM x\n")
    assert [p.name for p in tmp_path.iterdir()] == ["Dockerfile.slim"]


def test_unchanged_files_are_not_rewritten(make_project: MakeProject, run_cli: Run) -> None:
    root = make_project()
    assert run_cli("render", "--image", IMAGE, cwd=root).exit_code == 0
    before = (root / "Dockerfile.slim").stat().st_ino
    assert run_cli("render", "--image", IMAGE, cwd=root).exit_code == 0
    assert (root / "Dockerfile.slim").stat().st_ino == before


# ---- the root layout (RunPod quickstart / worker-basic)

ROOT_LAYOUT = BASE_CONFIG.replace(
    "handler:\n  path: worker\n  file: handler.py\n", 'handler:\n  path: "."\n  file: rp_handler.py\n'
).replace("requirements: worker/requirements.txt", "requirements: requirements.txt")


def test_root_layout_context_holds_the_handler_its_modules_and_requirements(
    make_project: MakeProject,
) -> None:
    root = committed(
        make_project,
        ROOT_LAYOUT,
        files={
            "rp_handler.py": "import helpers\n",
            "helpers.py": "X = 1\n",
            "requirements.txt": "runpod==1.12.0\n",
            "test_input.json": "{}\n",
            ".env": "SECRET=1\n",
            "notes/readme.md": "x\n",
        },
    )
    loaded = load_config(root / "rpdeploy.yaml", None)
    rendered = render_project(loaded, IMAGE)
    assert "!." not in rendered.files[".dockerignore"].splitlines()
    assert 'COPY ["./", "/app/"]' in rendered.files["Dockerfile.slim"]
    assert 'CMD ["python3", "-u", "/app/rp_handler.py"]' in rendered.files["Dockerfile.slim"]
    plan = plan_build(loaded, {})
    with tarfile.open(fileobj=plan.context.open()) as tar:
        names = set(tar.getnames())
    assert {"rp_handler.py", "helpers.py", "requirements.txt"} <= names
    assert not names & {".env", "test_input.json", "notes/readme.md", "rpdeploy.yaml", ".git"}


# ---- streaming context, untracked files


def test_context_of_a_large_file_is_streamed_not_held_in_memory(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    big = tmp_path / "worker" / "weights.bin"
    with big.open("wb") as handle:
        handle.truncate(256 * 1024 * 1024)  # sparse: 256 MB of file, almost no disk
    tracemalloc.start()
    try:
        context = build_context(
            tmp_path, dockerfile_name="Dockerfile.slim", dockerfile="FROM x\n", dockerignore="*\n!worker\n"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert context.size > 256 * 1024 * 1024
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while taring a 256 MB file"
    context.file.close()


def test_untracked_file_in_the_context_makes_the_build_dirty(make_project: MakeProject) -> None:
    root = committed(make_project)
    loaded = load_config(root / "rpdeploy.yaml", None)
    clean = plan_build(loaded, {})
    assert not clean.tags.dirty
    assert clean.tags.immutable.startswith("sha-")
    (root / "notes.txt").write_text("outside the context\n")
    assert not plan_build(loaded, {}).tags.dirty
    (root / "worker" / "extra.py").write_text("X = 1\n")
    dirty = plan_build(loaded, {})
    assert dirty.tags.dirty
    assert dirty.tags.tags == (dirty.tags.immutable,)
    assert "-dirty-" in dirty.tags.immutable
    assert dirty.labels["dev.rpdeploy.dirty"] == "true"


def test_same_commit_plans_identical_labels_and_context(make_project: MakeProject) -> None:
    root = committed(make_project)
    loaded = load_config(root / "rpdeploy.yaml", None)
    first, second = plan_build(loaded, {}), plan_build(loaded, {})
    assert first.labels == second.labels
    assert first.context.digest == second.context.digest
    stamp = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%cI"], check=False, capture_output=True, text=True
    )
    commit_day = stamp.stdout.strip()[:10]
    assert first.labels["org.opencontainers.image.created"].startswith(commit_day)
    assert plan_build(loaded, {"SOURCE_DATE_EPOCH": "0"}).labels["org.opencontainers.image.created"] == (
        "1970-01-01T00:00:00Z"
    )


def test_remote_credentials_never_reach_labels(make_project: MakeProject) -> None:
    root = committed(make_project)
    git(
        root,
        "remote",
        "add",
        "origin",
        "https://ci@corp.example:CANARYTOKEN@github.com/org/repo.git?t=CANARYTOKEN",
    )
    loaded = load_config(root / "rpdeploy.yaml", None)
    plan = plan_build(loaded, {})
    assert plan.labels["org.opencontainers.image.source"] == "https://github.com/org/repo"
    assert "CANARYTOKEN" not in repr(plan.labels)
    assert b"CANARYTOKEN" not in plan.context.read()


def _record() -> BuildRecord:
    return BuildRecord(
        repository="127.0.0.1:5000/acme/w",
        id="sha256:" + "0" * 64,
        tags=["sha-0000000"],
        immutable="sha-0000000",
        oci_version="sha-0000000",
        dirty=False,
        labels={},
        builder="docker",
        dockerfile="Dockerfile.slim",
        context_bytes=0,
        context_files=0,
        context_digest="sha256:" + "0" * 64,
        steps=[],
        seconds=0.0,
        environment=None,
        max_compressed_mb=None,
    )


def test_full_temporary_disk_for_the_context_is_one_error(
    tiny_mount: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "data.bin").write_bytes(b"\1" * 512 * 1024)  # more than the 128 kB mount
    # TMPDIR is the documented way to move the context's temporary file; here onto the tiny disk.
    monkeypatch.setattr(tempfile, "tempdir", str(tiny_mount))
    with pytest.raises(FileWriteError, match=r"^build context: No space left on device \(writing"):
        build_context(
            tmp_path, dockerfile_name="Dockerfile.slim", dockerfile="FROM x\n", dockerignore="*\n!worker\n"
        )
    assert list(tiny_mount.iterdir()) == []
