"""The bootstrap as a real process on this host: work disk, provisioning from the local index,
reuse, corruption, concurrency, a killed installer, and the one-line failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deploy.runtime import envstore
from tests.runtime.conftest import Run, Setup, bootstrap_command, bootstrap_lines, env_dirs

#: Needs the stack's package index (scripts/stack.sh), so it runs with the stack tests, not `make unit`.
pytestmark = pytest.mark.docker

#: Every variable the bootstrap points at the work disk (docs/runtime.md lists their sources).
WORK_DISK_VARIABLES = [
    "TMPDIR", "TEMP", "TMP", "PIP_BUILD_DIR", "PIP_CACHE_DIR", "PIP_DOWNLOAD_CACHE", "PYTHON_EGG_CACHE",
    "XDG_CACHE_HOME", "XDG_DATA_HOME", "UV_CACHE_DIR", "UV_TOOL_DIR", "UV_PYTHON_INSTALL_DIR", "HF_HOME",
    "TORCH_HOME",
]  # fmt: skip

REPORT_HANDLER = """\
import json, os, sys
import six
names = json.loads(sys.argv[1])
print(json.dumps({"env": {n: os.environ.get(n) for n in names}, "six": six.__file__,
                  "argv": sys.argv, "main": __name__}))
"""


def write_handler(tmp_path: Path, text: str, name: str = "handler.py") -> Path:
    path = tmp_path / "app" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_installs_then_reuses_the_environment(setup: Setup, run: Run) -> None:
    first = run("--provision-only")
    assert first.returncode == 0, first.stderr
    assert "installing" in first.stderr
    (env_dir,) = env_dirs(setup.work)
    assert first.stdout.strip() == str(env_dir)
    assert (env_dir / "COMPLETE").is_file()
    assert list((env_dir / "site").glob("six-1.17.0.dist-info"))

    second = run("--provision-only")
    assert second.returncode == 0, second.stderr
    assert "installing" not in second.stderr
    assert "is ready" in second.stderr
    # Nothing left behind: no lock, no staging folder.
    assert not list((setup.work / "rpdeploy" / "locks").iterdir())
    assert not list((setup.work / "rpdeploy" / "staging").iterdir())


def test_the_handler_gets_the_environment_and_the_work_disk_variables(
    setup: Setup, run: Run, tmp_path: Path
) -> None:
    handler = write_handler(tmp_path, REPORT_HANDLER)
    # The endpoint points every temp and cache variable at the OS disk: each is overridden (only the
    # model caches keep an endpoint's value, see the next test).
    os_disk = {
        name: "/os-disk/cache" for name in WORK_DISK_VARIABLES if name not in {"HF_HOME", "TORCH_HOME"}
    }
    names = json.dumps([*WORK_DISK_VARIABLES, "UV_PYTHON_DOWNLOADS", "PATH", "PYTHONPATH"])
    result = run("python3", "-u", str(handler), names, **os_disk, UV_PYTHON_DOWNLOADS="automatic")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    (env_dir,) = env_dirs(setup.work)
    assert report["six"].startswith(str(env_dir / "site"))
    assert report["main"] == "__main__"
    assert report["argv"][0] == str(handler)
    for name in WORK_DISK_VARIABLES:
        assert report["env"][name].startswith(str(setup.work / "rpdeploy")), name
    assert report["env"]["UV_PYTHON_DOWNLOADS"] == "never"
    # docs/runtime.md, "Start": the environment's site/ first on PYTHONPATH, its bin/ first on PATH.
    assert report["env"]["PYTHONPATH"].split(os.pathsep)[0] == str(env_dir / "site")
    # Before every entry of the PATH it was given (a pyenv shim, as on this host, may put its
    # own folder in front of the handler's PATH; the images have none).
    path = report["env"]["PATH"].split(os.pathsep)
    given = setup.env["PATH"].split(os.pathsep)
    assert path.index(str(env_dir / "site" / "bin")) < min(path.index(entry) for entry in given)


BYTECODE_HANDLER = """\
import fractions, json, os, sys
import six
sys.path.insert(0, os.path.dirname(__file__))
import helper
print(json.dumps({"six": six.__cached__, "fractions": fractions.__cached__, "prefix": sys.pycache_prefix,
                  "no_write": sys.dont_write_bytecode, "helper": helper.__file__}))
"""


def test_the_handler_reads_bytecode_from_the_environment(setup: Setup, run: Run, tmp_path: Path) -> None:
    # The site's pycs (timestamp) and the stdlib's (checked hash) come from the environment's
    # bytecode tree, through a per-container view; the handler's own modules are never cached
    # (docs/runtime.md, "Bytecode").
    handler = write_handler(tmp_path, BYTECODE_HANDLER)
    (handler.parent / "helper.py").write_text("VALUE = 1\n")
    result = run("python3", "-v", "-u", str(handler), RPDEPLOY_STDLIB_BYTECODE="1")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    (env_dir,) = env_dirs(setup.work)
    tree = env_dir / "bytecode"
    view = Path(report["prefix"])
    assert view.parent == Path("/tmp")
    assert view.name.startswith("rpdeploy-bytecode-")
    assert report["no_write"] is True
    for name, flags in (("six", 0), ("fractions", 0b11)):  # PEP 552: 0 timestamp, 3 checked hash
        cached = Path(report[name])
        assert cached.is_relative_to(view), name
        assert Path(os.path.realpath(cached)).is_relative_to(tree), name  # the view links into the tree
        assert f"code object from '{cached}'" in result.stderr, name  # read from the pyc, not compiled
        assert int.from_bytes(cached.read_bytes()[4:8], "little") == flags, name
    assert "compiling the bytecode of the environment and the stdlib" in result.stderr
    written = [*setup.work.rglob("helper*.pyc"), *tmp_path.glob("app/**/*.pyc"), *view.rglob("helper*.pyc")]
    assert written == []
    # No __pycache__ in the site: the installer was told not to write them.
    assert not list((env_dir / "site").rglob("__pycache__"))
    shutil.rmtree(view)


def test_handler_written_bytecode_dies_with_its_container(setup: Setup, run: Run, tmp_path: Path) -> None:
    # A handler that compiles its own modules (compileall, pip, py_compile ignore
    # PYTHONDONTWRITEBYTECODE) must not leave pycs that a later image with a changed module of the
    # same size and the same (normalised) mtime would run.
    handler = write_handler(tmp_path, "import helper\nprint('helper says', helper.X)\n")
    helper = handler.parent / "helper.py"
    for version in ("v1", "v2"):
        helper.write_text(f"X = '{version}'\n")
        os.utime(helper, (0, 0))  # `rpdeploy build` gives every file the same mtime
        script = f"python3 -m compileall -q {handler.parent} && python3 {handler}"
        result = run("sh", "-c", script, PYTHONPATH=str(handler.parent))
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().splitlines()[-1] == f"helper says {version}"
    (env_dir,) = env_dirs(setup.work)
    assert not [p for p in (env_dir / "bytecode").rglob("*.pyc") if "helper" in p.name]


def test_a_model_cache_set_by_the_endpoint_is_kept(setup: Setup, run: Run, tmp_path: Path) -> None:
    handler = write_handler(tmp_path, REPORT_HANDLER)
    names = json.dumps(["HF_HOME", "TMPDIR"])
    result = run("python3", str(handler), names, HF_HOME="/runpod-volume/hf", TMPDIR="/tmp")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["env"]["HF_HOME"] == "/runpod-volume/hf"
    assert report["env"]["TMPDIR"] == str(setup.work / "rpdeploy" / "tmp")  # temp dirs always move


@pytest.mark.parametrize("damage", ["marker", "manifest", "file"])
def test_a_damaged_environment_is_rebuilt_never_used(setup: Setup, run: Run, damage: str) -> None:
    assert run("--provision-only").returncode == 0
    (env_dir,) = env_dirs(setup.work)
    if damage == "marker":
        (env_dir / "COMPLETE").unlink()
    elif damage == "manifest":
        (env_dir / "manifest.json").write_text("{}")
    else:
        (env_dir / "site" / "six.py").write_text("truncated")
    # File sizes are checked on request only (thousands of stats are slow on a network volume).
    verify = {"RPDEPLOY_VERIFY_FILES": "1"} if damage == "file" else {}
    if damage == "file":
        assert "is ready" in run("--provision-only").stderr
    again = run("--provision-only", **verify)
    assert again.returncode == 0, again.stderr
    assert "is unusable" in again.stderr
    assert "installing" in again.stderr
    assert (env_dir / "COMPLETE").is_file()
    assert "truncated" not in (env_dir / "site" / "six.py").read_text()


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_starting_together_install_once(setup: Setup, tmp_path: Path, workers: int) -> None:
    handler = write_handler(tmp_path, REPORT_HANDLER)
    processes = [
        subprocess.Popen(
            bootstrap_command(setup, "python3", str(handler), json.dumps(["TMPDIR"])),
            env=setup.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    results = [(process.wait(timeout=300), *process.communicate()) for process in processes]
    assert all(code == 0 for code, _, _ in results), results
    installs = sum(" with pip from " in err for _, _, err in results)
    assert installs == 1, [err for _, _, err in results]
    (env_dir,) = env_dirs(setup.work)
    for _, out, _ in results:
        assert json.loads(out.strip().splitlines()[-1])["six"].startswith(str(env_dir))
    assert envstore.check(str(env_dir)) is None


class SilentIndex:
    """An index that accepts connections and never answers: pip hangs in its install."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/simple/"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


def test_a_killed_installer_leaves_a_lock_and_staging_that_the_next_start_recovers(
    setup: Setup, run: Run
) -> None:
    index = SilentIndex()
    rpdeploy = setup.work / "rpdeploy"
    try:
        process = subprocess.Popen(
            bootstrap_command(setup, "--provision-only"),
            env={**setup.env, "RPDEPLOY_INDEX_URL": index.url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert process.stderr is not None
        # Wait (on the output, not the clock) until pip is at work: lock and staging exist.
        for line in process.stderr:
            if "installing" in line:
                break
        assert list((rpdeploy / "locks").iterdir())
        assert list((rpdeploy / "staging").iterdir())
        os.killpg(process.pid, signal.SIGKILL)  # the installer and its pip, as an OOM kill would
        process.wait()
    finally:
        index.close()
    assert list((rpdeploy / "locks").iterdir()), "the killed installer's lock is still there"
    leftover = list((rpdeploy / "staging").iterdir())
    assert leftover

    recovered = run("--provision-only")
    assert recovered.returncode == 0, recovered.stderr
    lines = bootstrap_lines(recovered.stderr)
    assert any("broke a stale lock" in line and "is gone" in line for line in lines), lines
    assert any("removed the leftover staging folder" in line for line in lines), lines
    assert not list((rpdeploy / "locks").iterdir())
    assert not list((rpdeploy / "staging").iterdir())
    (env_dir,) = env_dirs(setup.work)
    assert (env_dir / "COMPLETE").is_file()


def test_a_lock_whose_heartbeat_stopped_is_broken(setup: Setup, run: Run) -> None:
    # A holder on another host (another container on the same volume) that stopped beating.
    assert run("--provision-only").returncode == 0
    (env_dir,) = env_dirs(setup.work)
    key = env_dir.name
    (env_dir / "COMPLETE").unlink()
    lock = setup.work / "rpdeploy" / "locks" / f"{key}.lock"
    lock.mkdir()
    (lock / "owner").write_text(json.dumps({"host": "another-worker", "pid": 1, "since": 0}))
    os.utime(lock / "owner", (0, 0))
    result = run("--provision-only", RPDEPLOY_LOCK_STALE_S="30")
    assert result.returncode == 0, result.stderr
    assert "no heartbeat for" in result.stderr


def test_a_waiter_gives_up_after_the_lock_wait_in_one_line(setup: Setup, run: Run) -> None:
    # A live holder on another worker (fresh heartbeat): the waiter waits RPDEPLOY_LOCK_WAIT_S, then fails.
    key = envstore.env_key(setup.requirements.read_bytes())
    lock = setup.work / "rpdeploy" / "locks" / f"{key}.lock"
    lock.mkdir(parents=True)
    (lock / "owner").write_text(json.dumps({"host": "another-worker", "pid": 1, "since": 0}))
    result = run("--provision-only", RPDEPLOY_LOCK_WAIT_S="0")
    assert result.returncode == 1, result.stderr
    assert one_line(result) == (
        f"rpdeploy-bootstrap: waited 0 s for the lock {lock} held by another worker"
        " (RPDEPLOY_LOCK_WAIT_S sets the limit)"
    )
    assert lock.is_dir()  # not ours to break: its holder is alive


# ---- the one-line failures


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = bootstrap_lines(result.stderr)
    assert lines, result.stderr
    assert "Traceback" not in result.stderr
    return lines[-1]


def test_a_missing_command_is_127_naming_it_and_the_path(setup: Setup, run: Run) -> None:
    result = run("no-such-handler-command", PATH="/opt/nowhere:/usr/bin")
    assert result.returncode == 127
    line = one_line(result)
    assert "command not found: no-such-handler-command" in line
    assert "/opt/nowhere:/usr/bin" in line
    assert len(env_dirs(setup.work)) == 1  # provisioning ran first


def test_a_file_that_cannot_be_executed_is_126(setup: Setup, run: Run, tmp_path: Path) -> None:
    script = write_handler(tmp_path, "#!/bin/sh\necho hi\n", "start.sh")
    script.chmod(0o644)
    result = run(str(script))
    assert result.returncode == 126
    assert f"cannot execute {script}" in one_line(result)


def test_a_handler_import_error_names_the_module_and_exception(run: Run, tmp_path: Path) -> None:
    handler = write_handler(tmp_path, "import six\nimport not_in_the_requirements_xyz\n")
    result = run("python3", "-u", str(handler))
    assert result.returncode == 1
    line = one_line(result)
    assert f"the handler {handler} failed to import not_in_the_requirements_xyz" in line
    assert "ModuleNotFoundError" in line


def test_a_module_handler_import_error_is_explained_too(setup: Setup, tmp_path: Path) -> None:
    write_handler(tmp_path, "import not_there_either\n", "worker_mod.py")
    result = subprocess.run(
        bootstrap_command(setup, "python3", "-m", "worker_mod"),
        cwd=tmp_path / "app", env=setup.env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert "the handler worker_mod failed to import not_there_either" in one_line(result)


def test_a_handler_killed_by_sigkill_is_explained_as_likely_out_of_memory(run: Run, tmp_path: Path) -> None:
    handler = write_handler(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    # As PID 1 the bootstrap supervises; RPDEPLOY_SUPERVISE=1 gives it that role here.
    result = run("python3", str(handler), RPDEPLOY_SUPERVISE="1")
    assert result.returncode == 137
    assert "killed by SIGKILL (exit 137): most likely out of memory" in one_line(result)


def test_every_forwarded_signal_reaches_the_supervised_handler(setup: Setup, tmp_path: Path) -> None:
    # docs/runtime.md: SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded.
    handler = write_handler(
        tmp_path,
        "import signal, sys, time\n"
        "def got(number, _):\n    print(signal.Signals(number).name, flush=True)\n"
        "    if number == signal.SIGTERM: sys.exit(0)\n"
        "for name in ('SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGTERM'):\n"
        "    signal.signal(getattr(signal, name), got)\n"
        "print('ready', flush=True)\nwhile True: time.sleep(1)\n",
    )
    process = subprocess.Popen(
        bootstrap_command(setup, "python3", "-u", str(handler)),
        env={**setup.env, "RPDEPLOY_SUPERVISE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
        process.send_signal(sig)
        # Each one is seen before the next is sent: signals of one kind may merge while pending.
        assert process.stdout.readline().strip() == sig.name
    assert process.wait(timeout=60) == 0


def test_the_os_disk_below_the_sdks_threshold_is_exit_28_or_a_warning_when_skipped(run: Run) -> None:
    # No disk is 100 % free: the threshold every / misses.
    failed = run("--provision-only", RUNPOD_MIN_DISK_PERCENT="100", RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="")
    assert failed.returncode == 28, failed.stderr
    line = one_line(failed)
    assert line.startswith("rpdeploy-bootstrap: / has "), line
    assert "below RUNPOD_MIN_DISK_PERCENT=100 % or runtime.disk.min_free_os_mb" in line
    assert line.endswith("the worker SDK's fitness check would fail; raise the endpoint's container disk")
    skipped = run("--provision-only", RUNPOD_MIN_DISK_PERCENT="100", RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="true")
    assert skipped.returncode == 0, skipped.stderr
    assert bootstrap_lines(skipped.stderr)[0].startswith("rpdeploy-bootstrap: warning: / has ")
    also_mb = run("--provision-only", RPDEPLOY_MIN_FREE_OS_MB="1000000000", RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="")
    assert also_mb.returncode == 28, also_mb.stderr


def test_a_file_at_the_work_dir_is_exit_73_naming_it(setup: Setup, run: Run, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = run("--provision-only", RPDEPLOY_WORK_DIR=str(blocker))
    assert result.returncode == 73, result.stderr
    assert one_line(result) == (
        f"rpdeploy-bootstrap: cannot use {blocker}: File exists (EEXIST); a file stands where a folder is"
        " needed: remove it"
    )


def test_the_install_preflight_names_the_disk_and_the_shortfall(setup: Setup, run: Run) -> None:
    result = run("--provision-only", RPDEPLOY_MIN_FREE_VOLUME_MB="100000000")
    assert result.returncode == 28
    line = one_line(result)
    assert f"needs 104857.6 GB on {setup.work} for the install" in line
    assert "GB free (attach a larger network volume" in line


@pytest.mark.parametrize("where", ["hf", "lock"])
def test_a_file_where_a_folder_is_needed_is_one_line_naming_it(
    setup: Setup, run: Run, tmp_path: Path, where: str
) -> None:
    # The kind: any filesystem error other than ENOSPC (a read-only HF_HOME, a quota, permissions,
    # a file in the way) used to be a traceback. A file in the way is the one root can meet here.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    extra = {"HF_HOME": str(blocker / "hf")}
    if where == "lock":
        key = envstore.env_key(setup.requirements.read_bytes())
        locks = setup.work / "rpdeploy" / "locks"
        locks.mkdir(parents=True)
        blocker = locks / f"{key}.lock"
        blocker.write_text("")
        extra = {}
    result = run("--provision-only", **extra)
    assert result.returncode == 73, result.stderr
    line = one_line(result)
    assert f"cannot use {blocker}" in line
    assert "(ENOTDIR)" in line or "(EEXIST)" in line
    assert "remove it" in line or "stands" in line


def test_no_work_disk_is_one_line(setup: Setup, run: Run) -> None:
    env = {k: v for k, v in setup.env.items() if k != "RPDEPLOY_WORK_DIR"}
    result = subprocess.run(
        bootstrap_command(setup, "--provision-only"), env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "no work disk" in one_line(result)


def test_the_os_disk_is_refused_as_work_disk(run: Run) -> None:
    result = run("--provision-only", RPDEPLOY_ALLOW_OS_DISK="0")
    assert result.returncode == 1
    assert "is on the OS disk (/)" in one_line(result)


def test_a_requirement_that_does_not_resolve_fails_at_once_naming_pips_error(run: Run, setup: Setup) -> None:
    # Not a network error: another attempt would fail the same way.
    setup.requirements.write_text("no-such-package-rpdeploy-test==1.0\n")
    result = run("--provision-only", RPDEPLOY_INSTALL_ATTEMPTS="2")
    assert result.returncode == 1
    line = one_line(result)
    assert "failed (exit 1): ERROR: " in line
    assert "no-such-package-rpdeploy-test" in line
    assert "retrying" not in result.stderr
    assert not env_dirs(setup.work)


def test_an_index_that_refuses_is_retried_and_the_cause_shown(run: Run, setup: Setup) -> None:
    # A typo'd index URL: pip ends with "No matching distribution found"; the refusal is the cause.
    result = run(
        "--provision-only", RPDEPLOY_INSTALL_ATTEMPTS="2", RPDEPLOY_INDEX_URL="http://127.0.0.1:9/simple/"
    )
    assert result.returncode == 1
    line = one_line(result)
    assert "failed after 2 attempts" in line
    assert "network or index: " in line
    assert "Connection refused" in line
    assert "attempt 1 of 2; retrying" in result.stderr
    assert not env_dirs(setup.work)


def test_installer_uv_installs_with_its_cache_on_the_work_disk(setup: Setup, run: Run) -> None:
    # uv from the dev extra, found on PATH as an image that ships uv would have it.
    path = f"{Path(sys.executable).parent}{os.pathsep}{setup.env['PATH']}"
    result = run("--provision-only", RPDEPLOY_INSTALLER="uv", PATH=path)
    assert result.returncode == 0, result.stderr
    assert "with uv from" in result.stderr
    (env_dir,) = env_dirs(setup.work)
    assert list((env_dir / "site").glob("six-1.17.0.dist-info"))
    # Compiled into the environment's bytecode tree, as after pip; none in the site itself.
    compiled = envstore.compiled_for(str(env_dir))
    assert compiled is not None
    assert list((env_dir / "bytecode" / compiled.lstrip("/")).glob("six.*.pyc"))
    assert not list((env_dir / "site").rglob("__pycache__"))
    assert any((setup.work / "rpdeploy" / "cache" / "uv").iterdir())  # UV_CACHE_DIR on the work disk
