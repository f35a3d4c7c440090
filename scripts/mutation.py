#!/usr/bin/env python3
"""Mutation testing with mutmut 3, one package at a time (`make mutation`, issue 11).

mutmut reads its settings from ./pyproject.toml only, and each package has its own sources and
its own fast tests, so every package runs in a scratch copy of the working tree
(build/mutation/<package>/) whose pyproject.toml gets that package's [tool.mutmut] table.
Per-package runs keep each mutant's test run short on a shared 2-core machine and give one
score per package, which is what docs/quality.md records.

    scripts/mutation.py config render        # the packages named, one after the other
    scripts/mutation.py                      # every package, in priority order
    scripts/mutation.py --summary image      # reprint the score of the last run
    scripts/mutation.py --resume config      # go on where a stopped run left off
    scripts/mutation.py --remap config       # test files added to the list: map them, rerun survivors
    scripts/mutation.py --verify-timeouts 300 config   # each timed-out mutant alone: a loop, or load?

Exit status: 0 when every package meets its target, 1 when one does not, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "build" / "mutation"
MUTMUT = Path(sys.executable).parent / "mutmut"


@dataclass(frozen=True)
class Package:
    sources: tuple[str, ...]
    tests: tuple[str, ...]
    target: float  # the share of mutants that must be killed (issue 11)
    #: Test ids (prefixes) left out of mutation runs: each takes seconds and repeats checks the
    #: faster tests of the package make, so every surviving mutant would cost minutes.
    deselect: tuple[str, ...] = ()


# The in-process emulator tests only: the others (jobs, bad_input, control) drive an emulator
# process over HTTP, whose calls mutmut cannot see, so they only slowed every mutant down.
EMULATOR_TESTS = tuple(
    f"tests/emulator/test_emulator_{name}.py" for name in ("store", "retention", "autoscaler", "parsing")
)

# Priority order (the brief): config and render first, then image, emulator, the contract.
PACKAGES: dict[str, Package] = {
    "config": Package(
        ("deploy/config/",),
        (
            "tests/test_config_errors.py",
            "tests/test_config_hostile.py",
            "tests/test_config_secrets.py",
            "tests/test_config_values.py",
            "tests/test_config_runtime_values.py",  # runtime: values' bounds (schema, rules, patterns)
            "tests/runtime/test_settings_agree.py",  # runtime_bounds.py agrees with the bootstrap
            "tests/test_handler_command.py",  # handler.command's shell-syntax check (schema.py)
            "tests/test_runtime_env.py",  # runtime settings' sources and conflicts (rules.py)
            "tests/test_environment_overrides.py",  # what an environment may not override (rules.py)
            "tests/test_mutation_config.py",
        ),
        0.85,
        (
            # Hypothesis-generated documents (20 s) and 1,000-deep YAML (17 s): the loader's
            # guards, which the other hostile documents reach in under a second.
            "tests/test_config_hostile.py::test_generated_documents_load_or_fail_cleanly",
            "tests/test_config_hostile.py::test_hostile_document_is_one_line_exit_2_nothing_written[deep-flow-",
            # The --debug variant of each masking case (3-7 s each: traceback rendering); the
            # text and JSON variants of the same cases stay.
            "tests/test_config_secrets.py::test_errors_name_the_reference_never_the_value[debug-",
        ),
    ),
    "render": Package(
        ("deploy/render/",),
        (
            "tests/test_image_render_safety.py",
            "tests/test_render_golden.py",
            "tests/test_render_lint.py",
            "tests/test_render_properties.py",
            "tests/test_endpoint_spec.py",
            "tests/test_mutation_render.py",
            # The sandbox's bounds and escapes, the secret-copy rules, the runtime env, the
            # root layout's allowlist and the render command (all in-process).
            "tests/test_template_growth.py",
            "tests/test_template_safety.py",
            "tests/test_secret_copies.py",
            "tests/test_runtime_env.py",
            "tests/test_root_layout_packages.py",
            "tests/test_cli_render.py",
        ),
        0.85,
        (
            # 10 s of Hypothesis-generated env values (test_mutation_render.py pins the same
            # promise on the values that matter: `{{`, `{%`, `{#`).
            "tests/test_template_safety.py::test_endpoint_env_values_with_template_syntax_arrive_verbatim",
            # rpdeploy run as a process (`python -m deploy`, the console script): mutmut sees
            # no calls made there; the in-process CLI tests of the same file stay.
            "tests/test_cli_render.py::test_python_dash_m_entry_point",
            "tests/test_cli_render.py::test_console_script_runs_render_check",
        ),
    ),
    "image": Package(
        tuple(
            f"deploy/image/{name}.py"
            for name in ("tags", "labels", "context", "plan", "record", "size", "registry")
        ),
        ("tests/test_image_unit.py", "tests/test_build_record.py", "tests/test_mutation_image.py"),
        0.70,
    ),
    "emulator": Package(
        tuple(
            f"deploy/emulator/{name}.py"
            for name in ("jobs", "job_requests", "store", "autoscaler", "httputil", "sweeper")
        ),
        (
            *EMULATOR_TESTS,
            "tests/emulator/test_mutation_emulator.py",
            "tests/emulator/test_mutation_emulator_jobs.py",
            "tests/emulator/test_mutation_emulator_store.py",
        ),
        0.70,
    ),
    "runpod": Package(
        ("deploy/runpod/",),
        (
            "tests/test_runpod_contract.py",
            "tests/test_runpod_query.py",
            "tests/test_config_contract_text.py",
            "tests/test_endpoint_spec.py",
            "tests/test_mutation_runpod.py",
            # Not tests/emulator/test_endpoint_contract_table.py: it starts an emulator process
            # (14 s for each mutant it covers), whose calls mutmut cannot see.
        ),
        0.85,
        (
            "tests/test_config_contract_text.py::test_aliases_within_the_character_cap_are_fine",
            "tests/test_config_contract_text.py::test_a_huge_string_aliased_many_times_is_refused_fast",
        ),
    ),
}


#: The environment of mutation runs: render's Hypothesis properties (tests/test_render_properties.py)
#: draw 15 examples instead of 60. Each surviving mutant runs every test of its function, and the
#: properties were half of that time; fewer examples can only let more mutants survive.
MUTATION_ENV = {"RPDEPLOY_PROPERTY_EXAMPLES": "15"}


def copy_tree(dest: Path, *, fresh: bool = True) -> None:
    """The working tree as git sees it (tracked and new, unignored files), uncommitted edits included.

    ``fresh=False`` copies over an earlier run's scratch copy, keeping mutmut's results in mutants/.
    """
    if fresh and dest.exists():
        shutil.rmtree(dest)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def pytest_args(package: Package) -> list[str]:
    """The pytest arguments of a package's mutation runs: fast tests, without its deselected ones."""
    args = ["-m", "not docker", "-p", "no:cacheprovider", "-q"]
    for test in package.deselect:
        args += ["--deselect", test]
    return args


def mutmut_table(package: Package, present: list[str], extras: list[str]) -> str:
    # The tests are listed with the pytest arguments, not in tests_dir (deprecated in mutmut 3).
    args = pytest_args(package)
    return (
        "\n[tool.mutmut]\n"
        # The whole package is copied, so that `import deploy` finds the mutated tree first
        # (a partial copy would be shadowed by the editable install's deploy/__init__.py).
        'source_paths = ["deploy"]\n'
        f"only_mutate = {json.dumps([s + '*' if s.endswith('/') else s for s in package.sources])}\n"
        f"pytest_add_cli_args = {json.dumps(args)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(present)}\n"
        # Tests find templates/, worker/ and the golden files beside the package they import.
        f"also_copy = {json.dumps(extras)}\n"
        "use_git_change_detection = false\n"
        # A mutant that loops forever (`pos += 2` -> `pos = 2`) is stopped after its wall
        # timeout, (estimated test time + constant) x multiplier. mutmut's default, (t + 1) x 15,
        # held each of config's looping mutants for 2 to 7 minutes on the shared machine; 5x the
        # whole test time of the function (plus pytest's start-up) still lets every finishing
        # mutant finish, so no verdict changes, only the wait.
        "timeout_multiplier = 5.0\n"
        "timeout_constant = 2.0\n"
    )


def score(workdir: Path) -> dict[str, int]:
    subprocess.run([str(MUTMUT), "export-cicd-stats"], cwd=workdir, check=True, capture_output=True)
    stats: dict[str, int] = json.loads((workdir / "mutants" / "mutmut-cicd-stats.json").read_text())
    return stats


def report(name: str, package: Package, stats: dict[str, int]) -> bool:
    """Print the score: killed (timeouts included) / tested, where untested mutants count as
    tested and not killed. A stopped run (mutants left unchecked) never meets its target."""
    killed = stats["killed"] + stats.get("timeout", 0)
    no_tests = stats.get("no_tests", 0)
    tested = killed + stats["survived"] + no_tests + stats.get("suspicious", 0) + stats.get("segfault", 0)
    unchecked = stats["total"] - stats.get("skipped", 0) - tested
    share = killed / tested if tested else 1.0
    met = share >= package.target and not unchecked
    print(
        f"{name}: {killed}/{tested} killed = {share:.1%} (target {package.target:.0%}: "
        f"{'met' if met else 'NOT met'}); survived {stats['survived']}, no tests {no_tests}"
        + (f"; {unchecked} of {tested + unchecked} not checked yet (--resume)" if unchecked else "")
    )
    return met


def survivors(workdir: Path) -> list[str]:
    """The surviving and untested mutants of the last run, by name.

    Names, not whole functions: on a shared 2-core machine the killed mutants of a function
    are not worth running again. A rewritten function's mutants are new to mutmut (their
    verdicts are gone) and are *not* among these names: `--resume` checks them, and a run
    with any mutant unchecked never reports its target as met.
    """
    listed = subprocess.run(
        [str(MUTMUT), "results"], cwd=workdir, check=True, capture_output=True, text=True
    ).stdout
    return sorted(
        line.split(":")[0].strip()
        for line in listed.splitlines()
        if line.rstrip().endswith(("survived", "no tests"))
    )


def verify_timeouts(name: str, package: Package, limit_s: float) -> bool:
    """Rerun each mutant mutmut stopped by its timeout, alone, with its tests and ``limit_s`` of wall
    time, and print what it is: ``killed`` (a test fails), ``survived`` (they pass: the timeout
    was the shared machine's load, not the mutant) or ``loops`` (still running at ``limit_s``).

    mutmut counts a timeout as killed, and its wall-time limit is a multiple of the tests' time
    measured once: on a loaded machine a surviving mutant can run past it. Returns whether none
    survived."""
    workdir = SCRATCH / name
    listed = subprocess.run(
        [str(MUTMUT), "results"], cwd=workdir, check=True, capture_output=True, text=True
    ).stdout
    names = [line.split(":")[0].strip() for line in listed.splitlines() if line.rstrip().endswith("timeout")]
    stats = json.loads((workdir / "mutants" / "mutmut-stats.json").read_text())
    args = [*pytest_args(package), "-x"]
    survived = 0
    for mutant in names:
        tests = sorted(stats["tests_by_mangled_function_name"].get(mutant.rsplit("__mutmut_", 1)[0], []))
        command = [sys.executable, "-m", "pytest", *args, *tests]
        env = {**os.environ, "MUTANT_UNDER_TEST": mutant}
        try:
            code = subprocess.run(
                command, cwd=workdir / "mutants", env=env, capture_output=True, timeout=limit_s, check=False
            ).returncode
            verdict = "survived" if code == 0 else "killed"
        except subprocess.TimeoutExpired:
            verdict = "loops"
        survived += verdict == "survived"
        print(f"{mutant}: {verdict}", flush=True)
    print(f"{name}: {len(names)} timeouts rechecked, {survived} survived")
    return survived == 0


def run(
    name: str, package: Package, max_children: int, *, retest: bool, resume: bool = False, remap: bool = False
) -> bool:
    """Run every mutant of ``package``, or with ``retest`` only those that survived or had no
    tests (after new tests or pragmas: killed mutants stay killed when tests are only added), or with
    ``resume`` the mutants a stopped run left unchecked (mutmut keeps every verdict it reached,
    and tests anew the functions whose code changed since), or with ``remap`` the survivors and
    untested after test files were added to the package's list (the list is rewritten and
    every test mapped again; a following ``resume`` checks the rest)."""
    workdir = SCRATCH / name
    if not all((ROOT / s).exists() for s in package.sources):
        print(f"{name}: {', '.join(package.sources)} not in this branch yet; skipped")
        return True
    keep = retest or resume or remap
    names = survivors(workdir) if retest or remap else []
    table = (workdir / "pyproject.toml").read_text() if keep else ""
    copy_tree(workdir, fresh=not keep)
    with (workdir / "pyproject.toml").open("a") as handle:
        if keep and not remap:
            # The same table as the first run: a changed test list makes mutmut reset every verdict.
            handle.write(table[table.index("\n[tool.mutmut]") :])
        else:
            present = [t for t in package.tests if (workdir / t).exists()]
            extras = sorted(p.name for p in workdir.iterdir() if p.name not in {"deploy", "tests", "mutants"})
            handle.write(mutmut_table(package, present, extras))
    if remap:
        # Without its stats file mutmut maps every test to the functions it calls afresh and
        # keeps the verdicts it has: sound only when tests were added, never weakened (a
        # mutant killed before is still killed; the survivors and untested are rerun below).
        (workdir / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    if not (retest or remap) or names:
        subprocess.run(
            [str(MUTMUT), "run", f"--max-children={max_children}", *names],
            cwd=workdir,
            check=True,
            env={**os.environ, **MUTATION_ENV},
        )
    subprocess.run([str(MUTMUT), "results"], cwd=workdir, check=False)
    return report(name, package, score(workdir))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help=f"any of {', '.join(PACKAGES)} (default: all)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--summary", action="store_true", help="reprint the last run's scores")
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--retest", action="store_true", help="rerun only the surviving and untested mutants of the last run"
    )
    again.add_argument(
        "--resume", action="store_true", help="go on with the mutants a stopped run left unchecked"
    )
    again.add_argument(
        "--verify-timeouts",
        type=float,
        metavar="SECONDS",
        help="rerun each mutant stopped by mutmut's timeout alone, with this wall-time limit",
    )
    again.add_argument(
        "--remap",
        action="store_true",
        help="after adding test files to a package's list: map the tests again, keep the verdicts, "
        "rerun the surviving and untested mutants",
    )
    options = parser.parse_args()
    names = options.packages or list(PACKAGES)
    unknown = sorted(set(names) - set(PACKAGES))
    if unknown:
        parser.error(f"unknown package {', '.join(unknown)}; choose from {', '.join(PACKAGES)}")
    met = True
    for name in names:
        if options.summary:
            met &= report(name, PACKAGES[name], score(SCRATCH / name))
        elif options.verify_timeouts:
            met &= verify_timeouts(name, PACKAGES[name], options.verify_timeouts)
        else:
            met &= run(
                name,
                PACKAGES[name],
                options.max_children,
                retest=options.retest,
                resume=options.resume,
                remap=options.remap,
            )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
