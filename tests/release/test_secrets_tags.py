"""The value tag `secrets sync` keeps in a secret's description, and the values it reads (no API)."""

from __future__ import annotations

import re

import pytest

from deploy.config import load_config
from deploy.errors import UsageError
from deploy.release import secrets_sync
from deploy.release.secrets_sync import tag_matches, value_tag, with_tag
from tests.conftest import BASE_CONFIG, MakeProject

TAG = re.compile(r"^rpdeploy:v1:sha256:[0-9a-f]{32}:[0-9a-f]{64}$")


def test_a_tag_matches_its_value_only() -> None:
    tag = value_tag("s3cr3t-value")
    assert TAG.fullmatch(tag), tag
    assert "s3cr3t" not in tag
    assert tag_matches(f"managed by rpdeploy: {tag}", "s3cr3t-value") is True
    assert tag_matches(tag, "s3cr3t-valuf") is False
    assert tag_matches(tag, "") is False


def test_each_write_gets_a_new_salt() -> None:
    first, second = value_tag("same"), value_tag("same")
    assert first != second
    assert tag_matches(first, "same")
    assert tag_matches(second, "same")


def test_a_given_salt_reproduces_the_tag() -> None:
    salt = "00" * 16
    assert value_tag("v", salt) == value_tag("v", salt)
    assert value_tag("v", salt) != value_tag("w", salt)


@pytest.mark.parametrize("description", [None, "", "hand-made, no tag", "rpdeploy:v1:sha256:zz:00"])
def test_no_tag_means_unknown(description: str | None) -> None:
    assert tag_matches(description, "anything") is None


def test_with_tag_keeps_the_owners_text_and_replaces_only_the_tag() -> None:
    old, new = value_tag("a"), value_tag("b")
    assert with_tag(None, new) == f"managed by rpdeploy: {new}"
    assert with_tag("B2 key for prod", new) == f"B2 key for prod {new}"
    assert with_tag(f"B2 key {old} (ops)", new) == f"B2 key {new} (ops)"


CONFIG = BASE_CONFIG.replace(
    "  - name: AWS_SECRET_ACCESS_KEY\n",
    "  - name: AWS_SECRET_ACCESS_KEY\n    from_env: B2_APP_KEY\n"
    "  - name: AWS_ENDPOINT_URL\n    mode: inline\n",
)


def test_every_unset_variable_is_named_at_once(make_project: MakeProject) -> None:
    loaded = load_config(make_project(CONFIG) / "rpdeploy.yaml", environ={})
    with pytest.raises(UsageError) as info:
        secrets_sync.require_values(
            loaded, {"AWS_SECRET_ACCESS_KEY": "not the variable read", "B2_APP_KEY": ""}
        )
    message = str(info.value)
    assert "AWS_ACCESS_KEY_ID (secrets[0])" in message
    assert "B2_APP_KEY (secrets[1])" in message
    assert "AWS_ENDPOINT_URL" not in message  # inline: not synced
    assert info.value.exit_code == 2


def test_values_are_keyed_by_runpod_name(make_project: MakeProject) -> None:
    loaded = load_config(make_project(CONFIG) / "rpdeploy.yaml", environ={})
    values = secrets_sync.require_values(loaded, {"AWS_ACCESS_KEY_ID": "id-1", "B2_APP_KEY": "key-2"})
    assert values == {"demo_aws_access_key_id": "id-1", "demo_aws_secret_access_key": "key-2"}


def test_two_entries_setting_one_secret_from_different_values_are_refused(make_project: MakeProject) -> None:
    text = BASE_CONFIG.replace(
        "  - name: AWS_ACCESS_KEY_ID\n  - name: AWS_SECRET_ACCESS_KEY\n",
        "  - name: AWS_ACCESS_KEY_ID\n    secret: shared\n"
        "  - name: AWS_SECRET_ACCESS_KEY\n    secret: shared\n",
    )
    loaded = load_config(make_project(text) / "rpdeploy.yaml", environ={})
    env = {"AWS_ACCESS_KEY_ID": "one", "AWS_SECRET_ACCESS_KEY": "two"}
    with pytest.raises(
        UsageError, match=r"secrets\[0\] and secrets\[1\] both set the RunPod secret 'shared'"
    ):
        secrets_sync.require_values(loaded, env)
    same = {"AWS_ACCESS_KEY_ID": "one", "AWS_SECRET_ACCESS_KEY": "one"}
    assert secrets_sync.require_values(loaded, same) == {"shared": "one"}


def test_a_value_over_runpods_limit_is_refused_before_any_call(make_project: MakeProject) -> None:
    loaded = load_config(make_project(CONFIG) / "rpdeploy.yaml", environ={})
    huge = "é" * (secrets_sync.MAX_VALUE_BYTES // 2 + 1)  # under the limit in characters, over in bytes
    with pytest.raises(UsageError, match=r"at most 16777215 bytes per secret: B2_APP_KEY$"):
        secrets_sync.require_values(loaded, {"AWS_ACCESS_KEY_ID": "id", "B2_APP_KEY": huge})
