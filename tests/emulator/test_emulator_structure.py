"""The emulator's seams hold: one boundary for the CLI, SQL only in the store, a light CLI import."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "deploy" / "emulator"


def _emulator_imports(path: Path) -> list[str]:
    """What a module takes from the emulator: submodules (``deploy.emulator.x``) or names of the package."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "deploy.emulator":
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deploy.emulator."):
            found.append(str(node.module))
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("deploy.emulator."))
    return found


def test_the_cli_uses_only_the_emulator_package_boundary() -> None:
    import deploy.emulator  # noqa: PLC0415

    allowed = set(deploy.emulator.__all__)
    reaching_in = [
        f"{path.name}: {name}"
        for path in sorted((ROOT / "deploy" / "cli").glob("*.py"))
        for name in _emulator_imports(path)
        if name not in allowed
    ]
    assert reaching_in == []


def test_importing_the_boundary_needs_no_server_dependency() -> None:
    """`status`, `stop`, `env` and `logs` work without the emulator extra."""
    probe = (
        "import sys, deploy.emulator; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'graphql', 'httpx') if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert shown.stdout.strip() == "[]"


def test_sql_lives_only_in_the_store() -> None:
    """No other emulator module talks to SQLite or passes SQL text around."""
    sql = re.compile(
        r"\bimport sqlite3\b|\.db\.|\bSELECT\b|\bUPDATE\b .* SET|\bDELETE FROM\b|\bINSERT INTO\b"
    )
    offenders = [
        path.name
        for path in sorted(EMULATOR.glob("*.py"))
        if path.name != "store.py" and sql.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
