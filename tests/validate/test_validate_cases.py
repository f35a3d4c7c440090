"""Reading validation cases: every shape of Hub tests.json found in real repositories (each
written here as its own small case), lenient JSON with a warning, unreadable files as one
error naming file and position, hub.json endpoint settings, and the extended cases under
`tests:` in rpdeploy.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.config import load_config
from deploy.release.cases import CasesError, load_cases, read_hub, read_tests_file, typed
from tests.conftest import BASE_CONFIG, MakeProject


def write(tmp_path: Path, text: str, name: str = "tests.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_form(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        json.dumps(
            {
                "tests": [{"name": "basic_test", "input": {"name": "John Doe"}, "timeout": 10000}],
                "config": {
                    "gpuTypeId": "NVIDIA GeForce RTX 4090",
                    "gpuCount": 1,
                    "env": [],
                    "allowedCudaVersions": ["12.7"],
                },
            }
        ),
    )
    found = read_tests_file(path)
    assert [(c.name, c.payload, c.timeout_ms, c.mode) for c in found.cases] == [
        ("basic_test", {"name": "John Doe"}, 10000, "run")
    ]
    assert found.cases[0].expect.status == "COMPLETED"
    assert found.config["gpuCount"] == 1
    assert found.cases[0].config == found.config
    assert found.warnings == []


def test_a_trailing_comma_is_read_with_a_warning_naming_the_line(tmp_path: Path) -> None:
    text = (
        '{\n  "tests": [\n    {\n      "name": "t",\n      "input": {"prompt": "hi",},\n'
        '      "timeout": 30000\n    }\n  ]\n}\n'
    )
    found = read_tests_file(write(tmp_path, text), shown="w/.runpod/tests.json")
    assert found.cases[0].payload == {"prompt": "hi"}
    assert found.warnings == [
        "w/.runpod/tests.json:5:32: not strict JSON (Expecting property name enclosed in double quotes); "
        "read leniently, as the Hub does"
    ]


def test_comments_and_single_quotes_are_read_leniently_too(tmp_path: Path) -> None:
    found = read_tests_file(write(tmp_path, "// cases\n{'tests': [{'name': 'a', 'input': {'x': 1}}]}"))
    assert found.cases[0].payload == {"x": 1}
    assert len(found.warnings) == 1


def test_literal_backslash_n_pairs_are_one_error_with_file_line_and_column(tmp_path: Path) -> None:
    text = '{\\n  "tests": [\\n    {"name": "t", "input": {}}\\n  ]\\n}'
    with pytest.raises(CasesError) as caught:
        read_tests_file(write(tmp_path, text), shown=".runpod/tests.json")
    assert (
        str(caught.value)
        == ".runpod/tests.json:1:2: not JSON: Expecting property name enclosed in double quotes"
    )
    assert caught.value.hint is not None
    assert "literal \\n pairs" in caught.value.hint
    assert caught.value.exit_code == 2


def test_an_unterminated_file_names_its_last_line(tmp_path: Path) -> None:
    with pytest.raises(CasesError, match=r"^t.json:3:\d+: not JSON: "):
        read_tests_file(write(tmp_path, '{"tests": [\n  {"name": "a",\n'), shown="t.json")


def test_a_top_level_array_is_the_list_of_tests(tmp_path: Path) -> None:
    text = json.dumps(
        [
            {"name": "t2i", "input": {"prompt": "cat"}, "expected_output_keys": ["image", "seed"]},
            {"input": {"q": 1}, "expected_output": {"status": "COMPLETED"}, "timeout": 600},
        ]
    )
    found = read_tests_file(write(tmp_path, text), shown="t.json", default_timeout_ms=123000)
    first, second = found.cases
    assert (first.name, first.timeout_ms, first.expect.output_keys) == ("t2i", 123000, ["image", "seed"])
    assert (second.name, second.timeout_ms, second.expect.status) == ("test 2", 600000, "COMPLETED")
    assert found.warnings == [
        "t.json: tests[1] ('test 2'): timeout 600 is under one second as ms: read as 600 s"
    ]
    assert found.config == {}


def test_a_file_without_tests_defines_no_cases(tmp_path: Path) -> None:
    found = read_tests_file(write(tmp_path, '{"config": {"gpuCount": 1}}'), shown="t.json")
    assert found.cases == []
    assert found.warnings == ["t.json: no 'tests' key: the file defines no cases"]


def test_http_style_checks_are_skipped_with_a_warning(tmp_path: Path) -> None:
    text = json.dumps(
        {
            "tests": [
                {"name": "Health", "request": {"method": "GET", "path": "/health"}, "assert": []},
                {"name": "job", "input": {}},
            ],
            "loadTests": [{"name": "load"}],
        }
    )
    found = read_tests_file(write(tmp_path, text), shown="t.json")
    assert [c.name for c in found.cases] == ["job"]
    assert found.warnings == [
        "t.json: ignored top-level key(s) loadTests (not part of the Hub format)",
        "t.json: tests[0] ('Health'): no 'input', so not a job test (an HTTP check?): skipped",
    ]


def test_a_config_inside_a_test_applies_to_that_test(tmp_path: Path) -> None:
    own = {
        "gpuTypeId": "NVIDIA GeForce RTX 4090",
        "gpuTypeIds": ["NVIDIA L4"],
        "allowedCudaVersions": ["12.4"],
    }
    text = json.dumps(
        {
            "tests": [
                {"name": "a", "config": own, "input": {"input": {"text": "hi"}}},
                {"name": "b", "input": 1},
            ]
        }
    )
    a, b = read_tests_file(write(tmp_path, text)).cases
    assert a.config == own
    assert a.payload == {"input": {"text": "hi"}}  # sent as is: the SDK's rule for a payload with "input"
    assert b.config == {}


def test_repeated_and_missing_names_become_unique(tmp_path: Path) -> None:
    text = json.dumps({"tests": [{"name": "v", "input": 1}, {"name": "v", "input": 2}, {"input": 3}]})
    found = read_tests_file(write(tmp_path, text), shown="t.json")
    assert [c.name for c in found.cases] == ["v", "v #2", "test 3"]
    assert found.warnings == ["t.json: tests[1]: the name 'v' is used before: reported as 'v #2'"]


def test_a_suffix_never_collides_with_a_name_given_later(tmp_path: Path) -> None:
    names = ["a", "a #2", "a", "a"]
    text = json.dumps({"tests": [{"name": name, "input": 1} for name in names]})
    found = read_tests_file(write(tmp_path, text), shown="t.json")
    assert [c.name for c in found.cases] == ["a", "a #2", "a #3", "a #4"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"tests": [{"name": "i", "input": {"x": 1}, "timeout": 1e400}]}', "tests[0].timeout"),
        ('{"tests": [{"name": "n", "input": {"x": NaN}}]}', "tests[0].input.x"),
        ('[{"name": "m", "input": [1, -Infinity]}]', "[0].input[1]"),
    ],
)
def test_a_number_that_is_not_finite_is_a_bad_file(tmp_path: Path, text: str, where: str) -> None:
    # json parses 1e400 as inf and accepts NaN/Infinity; none of them can be sent as JSON.
    with pytest.raises(CasesError) as caught:
        read_tests_file(write(tmp_path, text), shown="t.json")
    assert caught.value.message == (
        f"t.json: {where}: a number that is not finite (NaN, Infinity or out of range)"
    )
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", ["x\nPASS y", "tab\there", "bidi\u202eeman"])
def test_a_name_with_a_character_that_does_not_show_is_refused(tmp_path: Path, name: str) -> None:
    text = json.dumps({"tests": [{"name": name, "input": 1}]})
    with pytest.raises(CasesError, match=r"^t\.json: tests\[0\]: name holds U\+[0-9A-F]{4}, a character"):
        read_tests_file(write(tmp_path, text), shown="t.json")


def test_a_timeout_over_a_day_is_refused(tmp_path: Path) -> None:
    text = '{"tests": [{"name": "long", "input": 1, "timeout": 86400001}]}'
    with pytest.raises(CasesError, match=r"up to 86400000 \(24 h\), not 86400001$"):
        read_tests_file(write(tmp_path, text), shown="t.json")


def test_an_input_over_60_kb_is_kept_whole(tmp_path: Path) -> None:
    image = "data:image/png;base64," + "A" * 62000
    found = read_tests_file(
        write(tmp_path, json.dumps({"tests": [{"name": "ocr", "input": {"image": image}}]}))
    )
    assert found.cases[0].payload["image"] == image


def test_non_ascii_text_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(
        "\ufeff".encode()
        + json.dumps({"tests": [{"name": "es", "input": {"text": "¿Qué tal?"}}]}, ensure_ascii=False).encode()
    )
    assert read_tests_file(path).cases[0].payload == {"text": "¿Qué tal?"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"tests"', "t.json: the top level must be an object with 'tests' or an array of tests"),
        ('{"tests": {}}', "t.json: tests must be an array"),
        ('{"tests": [3]}', "t.json: tests[0]: a test must be an object"),
        ('{"tests": [{"name": 5, "input": 1}]}', "t.json: tests[0]: name must be a non-empty string"),
        (
            '{"tests": [{"name": "a", "input": 1, "timeout": "10s"}]}',
            "t.json: tests[0] ('a'): timeout must be a positive number of milliseconds up to 86400000"
            ' (24 h), not "10s"',
        ),
        (
            '{"tests": [{"name": "a", "input": 1, "mode": "sync"}]}',
            "t.json: tests[0] ('a'): mode must be 'run' or 'runsync', not 'sync'",
        ),
        (
            '{"tests": [{"name": "a", "input": 1, "expect": {"status": "DONE"}}]}',
            "t.json: tests[0] ('a'): expect: status: "
            "Input should be 'COMPLETED', 'FAILED', 'CANCELLED' or 'TIMED_OUT'",
        ),
        (
            '{"tests": [{"name": "a", "input": 1, "expect": {"error": "("}}]}',
            "t.json: tests[0] ('a'): expect: error: "
            "not a regular expression: missing ), unterminated subpattern at position 0",
        ),
        (
            '{"tests": [{"name": "a", "input": 1, "expect": {"checks": [{"path": "x"}]}}]}',
            "t.json: tests[0] ('a'): expect: checks.0: give exactly one of regex, number or text",
        ),
        (
            '{"tests": [{"name": "a", "input": 1, "mode": "runsync", "expect": {"min_stream_chunks": 2}}]}',
            "t.json: tests[0] ('a'): min_stream_chunks reads /stream, which needs mode 'run'",
        ),
        ('{"tests": [], "config": []}', "t.json: config must be an object"),
    ],
)
def test_a_bad_case_is_one_line_naming_file_and_case(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CasesError) as caught:
        read_tests_file(write(tmp_path, text), shown="t.json")
    assert str(caught.value) == message


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CasesError, match=r"^nope.json: no such file$"):
        read_tests_file(tmp_path / "nope.json", shown="nope.json")
    (tmp_path / "bad.json").write_bytes(b'{"tests": ["\xff"]}')
    with pytest.raises(CasesError, match=r"^bad.json: not UTF-8 \(byte 12\)$"):
        read_tests_file(tmp_path / "bad.json", shown="bad.json")


# -- hub.json -------------------------------------------------------------------------------


def test_hub_json_endpoint_settings(tmp_path: Path) -> None:
    hub = {
        "title": "Worker",
        "type": "serverless",
        "config": {
            "runsOn": "GPU",
            "containerDiskInGb": 20,
            "gpuCount": 1,
            "gpuIds": "ADA_24, AMPERE_16,-NVIDIA GeForce RTX 4090",
            "allowedCudaVersions": ["12.8", "12.7"],
            "env": [
                {"key": "STATIC", "value": "1"},
                {"key": "MODEL", "input": {"name": "Model", "type": "huggingface", "default": "org/m"}},
                {"key": "TOKEN", "input": {"type": "string", "secret": True}},
                {"value": "no key"},
            ],
            "presets": [{"name": "small", "defaults": {"MODEL": "org/s"}}],
        },
    }
    settings = read_hub(write(tmp_path, json.dumps(hub), "hub.json"), shown="hub.json")
    assert settings.title == "Worker"
    assert (settings.runs_on, settings.endpoint_type, settings.container_disk_gb, settings.gpu_count) == (
        "GPU",
        "QUEUE",
        20,
        1,
    )
    assert settings.gpu_ids == ["ADA_24", "AMPERE_16", "-NVIDIA GeForce RTX 4090"]
    assert settings.allowed_cuda_versions == ["12.8", "12.7"]
    assert settings.env == {"STATIC": "1", "MODEL": "org/m", "TOKEN": None}
    assert settings.presets == [{"name": "small", "defaults": {"MODEL": "org/s"}}]
    assert settings.warnings == ["hub.json: config.env[3]: no 'key': ignored"]


def test_hub_json_gpu_ids_as_a_list_and_a_load_balancer_on_cpu(tmp_path: Path) -> None:
    hub = {
        "name": "x",
        "config": {
            "runsOn": "CPU",
            "endpointType": "LB",
            "cpuFlavor": "cpu3g-4-16",
            "gpuIds": ["NVIDIA L4", "NVIDIA A40"],
        },
    }
    settings = read_hub(write(tmp_path, json.dumps(hub), "hub.json"))
    assert (settings.title, settings.endpoint_type, settings.cpu_flavor) == (
        "x",
        "LOAD_BALANCER",
        "cpu3g-4-16",
    )
    assert settings.gpu_ids == ["NVIDIA L4", "NVIDIA A40"]


def test_a_hub_json_in_another_schema_is_read_with_a_warning(tmp_path: Path) -> None:
    settings = read_hub(
        write(tmp_path, '{"name": "svc", "image": "x", "ports": [8000]} ', "hub.json"), shown="hub.json"
    )
    assert settings.env == {}
    assert settings.warnings == [
        "hub.json: no 'config' object: not the Hub's hub.json schema, no endpoint settings read"
    ]


# -- rpdeploy.yaml ------------------------------------------------------------------------


INLINE = """
tests:
  path: cases/tests.json
  timeout_ms: 45000
  cases:
    - name: sum
      input: {message: hi, numbers: [1, 2.5, 3], fail: false, note: "007"}
      mode: runsync
      expect:
        output: {sum: 6.5}
        max_execution_ms: 2000
        checks:
          - {path: echo, regex: "^hi$"}
          - {path: sum, number: 6.5, tolerance: 0.01}
    - name: exact
      input: '{"note": "007", "n": 7}'
      timeout_ms: 5000
      expect: {status: FAILED, error: "numbers"}
"""


def test_inline_cases_follow_the_file_with_json_types_back(make_project: MakeProject) -> None:
    root = make_project(
        BASE_CONFIG + INLINE, files={"cases/tests.json": '{"tests": [{"name": "hub", "input": {"a": 1},}]}'}
    )
    cases = load_cases(load_config(root / "rpdeploy.yaml", "staging"))
    assert [c.name for c in cases.cases] == ["hub", "sum", "exact"]
    hub, total, exact = cases.cases
    assert hub.timeout_ms == 45000
    assert hub.source == "cases/tests.json: tests[0]"
    assert total.payload == {"message": "hi", "numbers": [1, 2.5, 3], "fail": False, "note": 7}
    assert (total.mode, total.timeout_ms, total.source) == ("runsync", 45000, "rpdeploy.yaml: tests.cases[0]")
    assert total.expect.output == {"sum": 6.5}
    assert total.expect.max_execution_ms == 2000
    assert exact.payload == {"note": "007", "n": 7}  # JSON text: exact types
    assert (exact.timeout_ms, exact.expect.status, exact.expect.error) == (5000, "FAILED", "numbers")
    assert cases.sources == ["cases/tests.json", "rpdeploy.yaml: tests.cases"]
    assert len(cases.warnings) == 1
    assert cases.warnings[0].startswith("cases/tests.json:1:")


def test_inline_cases_alone_when_the_default_file_is_absent(make_project: MakeProject) -> None:
    root = make_project(BASE_CONFIG + "tests:\n  cases:\n    - {name: a, input: {x: 1}}\n")
    cases = load_cases(load_config(root / "rpdeploy.yaml"))
    assert [(c.name, c.payload) for c in cases.cases] == [("a", {"x": 1})]


def test_a_named_file_that_is_missing_is_an_error(make_project: MakeProject) -> None:
    root = make_project(BASE_CONFIG + "tests:\n  path: worker/tests.json\n")
    with pytest.raises(CasesError, match=r"^worker/tests.json: no such file$"):
        load_cases(load_config(root / "rpdeploy.yaml"))


def test_no_cases_at_all_is_an_error(make_project: MakeProject) -> None:
    root = make_project(BASE_CONFIG)
    with pytest.raises(CasesError, match=r"^.runpod/tests.json: no such file$"):
        load_cases(load_config(root / "rpdeploy.yaml"))
    root = make_project(BASE_CONFIG, name="other", files={".runpod/tests.json": '{"tests": []}'})
    with pytest.raises(CasesError, match=r"^.runpod/tests.json: no validation cases$"):
        load_cases(load_config(root / "rpdeploy.yaml"))


def test_an_inline_case_may_not_reuse_a_file_case_name(make_project: MakeProject) -> None:
    root = make_project(
        BASE_CONFIG + "tests:\n  cases:\n    - {name: a, input: {}}\n",
        files={".runpod/tests.json": '{"tests": [{"name": "a", "input": {}}]}'},
    )
    with pytest.raises(CasesError) as caught:
        load_cases(load_config(root / "rpdeploy.yaml"))
    assert (
        str(caught.value)
        == "rpdeploy.yaml: tests.cases[0] ('a'): the name is already used by .runpod/tests.json: tests[0]"
    )


def test_an_invalid_inline_case_is_a_config_error(make_project: MakeProject) -> None:
    from deploy.errors import ConfigError  # noqa: PLC0415

    root = make_project(
        BASE_CONFIG + "tests:\n  cases:\n    - {name: a, input: {}, expect: {checks: [{text: hi}]}}\n"
    )
    with pytest.raises(ConfigError, match="text needs max_wer or min_similarity"):
        load_config(root / "rpdeploy.yaml")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("hi", "hi"),
        ("", ""),
        ("[1, 2]", [1, 2]),
        ("{not json", "{not json"),
        ({"a": ["1", "x"]}, {"a": [1, "x"]}),
        (None, None),
    ],
)
def test_typed(value: object, expected: object) -> None:
    assert typed(value) == expected
