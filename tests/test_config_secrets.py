"""Secret values read through interpolation never appear: not in output, files or errors.

Canary values are put in the process environment under variables that `secrets:` names
(or that are always secret), referenced from other fields, and searched for in every
output of validate, show (text and JSON), render (every file written) and errors (with
--debug and --output json). Errors must name the reference (``${NAME}``) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from deploy.config import load_config
from deploy.config.mask import MASK, Masker
from deploy.config.view import resolved_view
from deploy.render import render_project
from tests.conftest import BASE_CONFIG, MakeProject

CANARY = "CANARY-Zq81-secret-value"
#: A long non-ASCII canary: error messages escape and cut long values; no part may leak.
LONG_CANARY = "CANÄRY-" + "é" * 80 + "-tail"
ENV = "  type: QUEUE"
NINE_REFERENCES = "${AWS_SECRET_ACCESS_KEY}" * 9


def edit(old: str, new: str, text: str = BASE_CONFIG) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def leaks(text: str) -> list[str]:
    return [c for c in ("CANARY", "CANÄRY", "CAN\\xc4RY", "\\xe9\\xe9") if c in text]


def all_files(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


#: The issue's leak: a secret's variable referenced from env and from runtime.s3.endpoint_url.
INTERPOLATED = edit(
    "  requirements: worker/requirements.txt",
    "  requirements: worker/requirements.txt\n"
    '  s3: {bucket: my-bucket, endpoint_url: "https://${AWS_ACCESS_KEY_ID}.s3.example.com"}',
    edit(ENV, f'{ENV}\n  env:\n    S3_KEY: "${{AWS_ACCESS_KEY_ID}}"\n    ALSO: "k=${{AWS_ACCESS_KEY_ID}};"'),
)


#: What render accepts of INTERPOLATED: a copy that is exactly a runpod-secret's variable
#: (it becomes the secret's reference); ALSO embeds it in other text, which render refuses
#: (tests/test_secret_copies.py), and so does runtime.s3.endpoint_url, which render puts into
#: the endpoint env (`Config.runtime_env`).
EMBEDDED_URL = "https://${AWS_ACCESS_KEY_ID}.s3.example.com"
DEPLOYABLE = INTERPOLATED.replace('\n    ALSO: "k=${AWS_ACCESS_KEY_ID};"', "").replace(
    EMBEDDED_URL, "https://s3.example.com"
)


def test_config_show_masks_interpolated_secrets(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    root = make_project(INTERPOLATED)
    environ = {"AWS_ACCESS_KEY_ID": CANARY}
    for args in (
        ("config", "show"),
        ("config", "show", "-o", "json"),
        ("config", "show", "--env", "staging"),
    ):
        result = run_cli(*args, cwd=root, env=environ)
        assert result.exit_code == 0, result.output
        assert leaks(result.output) == [], args
        assert MASK in result.stdout
    view = resolved_view(load_config(root / "rpdeploy.yaml", environ=environ))
    assert view["endpoint"]["env"]["S3_KEY"] == MASK
    assert view["endpoint"]["env"]["ALSO"] == f"k={MASK};"
    assert view["runtime"]["s3"]["endpoint_url"] == f"https://{MASK}.s3.example.com"


def test_rendered_files_mask_interpolated_secrets(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    root = make_project(DEPLOYABLE)
    result = run_cli(
        "render",
        "--image",
        "127.0.0.1:5000/acme/demo-worker:sha-1",
        cwd=root,
        env={"AWS_ACCESS_KEY_ID": CANARY},
    )
    assert result.exit_code == 0, result.output
    assert (root / "build" / "rpdeploy" / "default" / "endpoint.create.json").is_file()
    assert leaks(all_files(root)) == []
    assert leaks(result.output) == []


def test_an_s3_endpoint_url_embedding_a_secret_is_refused_by_render(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    # runtime.s3.endpoint_url goes into the endpoint env: a secret inside it would be sent in clear.
    root = make_project(INTERPOLATED.replace('\n    ALSO: "k=${AWS_ACCESS_KEY_ID};"', ""))
    result = run_cli("render", "--image", "127.0.0.1:5000/acme/demo-worker:sha-1", cwd=root,
                     env={"AWS_ACCESS_KEY_ID": CANARY})  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "runtime.s3.endpoint_url: holds the secret ${AWS_ACCESS_KEY_ID} inside other text" in result.stderr
    assert leaks(result.output) == []
    assert not (root / "build").exists()


def test_the_config_hash_does_not_depend_on_secret_values(make_project: MakeProject) -> None:
    # The hash covers what shapes the image (the start command here), masked: a label must not
    # let anyone test guesses of the secret against it. Another command gives another hash.
    command = 'python3 -u /app/handler.py --key "${AWS_ACCESS_KEY_ID}"'
    root = make_project(
        INTERPOLATED.replace("  file: handler.py\n", f"  file: handler.py\n  command: '{command}'\n")
    )
    first = load_config(root / "rpdeploy.yaml", environ={"AWS_ACCESS_KEY_ID": CANARY})
    second = load_config(root / "rpdeploy.yaml", environ={"AWS_ACCESS_KEY_ID": "another-value"})
    assert CANARY in first.config.handler.command
    assert first.config_hash == second.config_hash
    plain = load_config(
        make_project(INTERPOLATED, "plain") / "rpdeploy.yaml", environ={"AWS_ACCESS_KEY_ID": CANARY}
    )
    assert plain.config_hash != first.config_hash
    deployable = load_config(
        make_project(DEPLOYABLE, name="d") / "rpdeploy.yaml", environ={"AWS_ACCESS_KEY_ID": CANARY}
    )
    files = render_project(deployable, "127.0.0.1:5000/acme/demo-worker:sha-1").files
    assert leaks("".join(files.values())) == []


#: Typos that put a secret where validation rejects it: the error must show ${NAME}.
ERRORS = [
    (
        "workers-max",
        edit("{min: 0, max: 2,", '{min: 0, max: "${AWS_SECRET_ACCESS_KEY}",'),
        "rpdeploy.yaml:17: endpoint.workers.max: must be a valid integer, "
        "unable to parse string as an integer (got '${AWS_SECRET_ACCESS_KEY}')",
    ),
    (
        "repository-pattern",
        edit("acme/demo-worker", "acme/${AWS_SECRET_ACCESS_KEY}"),
        "rpdeploy.yaml:5: image.repository: 'acme/${AWS_SECRET_ACCESS_KEY}' is not a valid repository",
    ),
    (
        "endpoint-name-too-long",
        edit(
            ENV,
            f'{ENV}\n  name: "{NINE_REFERENCES}"',
        ),
        # No length either: it would tell how long the secret is.
        "rpdeploy.yaml:15: endpoint.name: must be at most 191 characters\n",
    ),
    (
        "control-char-check",
        edit(ENV, f'{ENV}\n  name: "${{AWS_SECRET_ACCESS_KEY}}\\e"'),
        "rpdeploy.yaml:15: endpoint.name: '${AWS_SECRET_ACCESS_KEY}\\x1b' "
        "contains a newline, control or invisible character",
    ),
    (
        "cross-field-rule-message",
        edit("  file: handler.py", '  file: "${AWS_SECRET_ACCESS_KEY}.py"'),
        "rpdeploy.yaml:12: handler.file: worker/${AWS_SECRET_ACCESS_KEY}.py does not exist",
    ),
    (
        "from-env-variable",
        edit(
            "  - name: AWS_SECRET_ACCESS_KEY", "  - name: TOKEN\n    from_env: AWS_SECRET_ACCESS_KEY"
        ).replace("{min: 0, max: 2,", '{min: 0, max: "${AWS_SECRET_ACCESS_KEY}",'),
        "(got '${AWS_SECRET_ACCESS_KEY}')",
    ),
    (
        "always-secret-api-key",
        edit("{min: 0, max: 2,", '{min: 0, max: "${RUNPOD_API_KEY}",'),
        "(got '${RUNPOD_API_KEY}')",
    ),
    (
        "secret-declared-only-in-an-environment",
        edit(
            "      workers: {max: 1}", "      workers: {max: 1}\n    secrets: [{name: STAGING_ONLY}]"
        ).replace("acme/demo-worker", "acme/${STAGING_ONLY}"),
        "image.repository: 'acme/${STAGING_ONLY}' is not a valid repository",
    ),
]


@pytest.mark.parametrize("canary", [CANARY, LONG_CANARY], ids=["ascii", "long-non-ascii"])
@pytest.mark.parametrize(("config", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
@pytest.mark.parametrize("flags", [(), ("--debug",), ("-o", "json")], ids=["text", "debug", "json"])
def test_errors_name_the_reference_never_the_value(
    make_project: MakeProject,
    run_cli: Callable[..., Result],
    config: str,
    expected: str,
    canary: str,
    flags: tuple[str, ...],
) -> None:
    root = make_project(config)
    environ = dict.fromkeys(("AWS_SECRET_ACCESS_KEY", "RUNPOD_API_KEY", "STAGING_ONLY"), canary)
    for command in (("config", "validate"), ("config", "show"), ("render",)):
        result = run_cli(*command, *flags, cwd=root, env=environ)
        assert result.exit_code == 2, result.output
        assert leaks(result.output) == [], (command, result.output)
        if canary == CANARY and flags == ():
            assert expected in result.stderr, result.stderr
    assert sorted(p.name for p in root.iterdir()) == ["rpdeploy.yaml", "worker"]


def test_validate_output_masks_secrets(make_project: MakeProject, run_cli: Callable[..., Result]) -> None:
    config = edit(ENV, f'{ENV}\n  name: "ep-${{AWS_SECRET_ACCESS_KEY}}"')
    for flags in ((), ("-o", "json")):
        result = run_cli(
            "config",
            "validate",
            *flags,
            cwd=make_project(config, name=f"p{len(flags)}"),
            env={"AWS_SECRET_ACCESS_KEY": CANARY},
        )
        # A secret in the endpoint name would reach a deployable file: validate refuses it as
        # render does, naming the variable, never its value.
        assert result.exit_code == 2, result.output
        assert leaks(result.output) == []
        assert "${AWS_SECRET_ACCESS_KEY}" in result.stderr


def test_a_value_not_from_a_secret_is_shown(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    config = edit("{min: 0, max: 2,", '{min: 0, max: "${PLAIN_VALUE}",')
    result = run_cli("config", "validate", cwd=make_project(config), env={"PLAIN_VALUE": "lots"})
    assert "(got 'lots')" in result.stderr


def test_masker_replaces_longest_value_first_and_keys_too() -> None:
    masker = Masker({"abc": "A", "abcdef": "B"})
    assert masker.text("xabcdefy abc") == f"x{MASK}y {MASK}"
    assert masker.reference("abcdef abc") == "${B} ${A}"
    assert masker.data({"abc": ["abcdef", 1, None]}) == {MASK: [MASK, 1, None]}
    assert Masker({}).data({"abc": "abc"}) == {"abc": "abc"}
