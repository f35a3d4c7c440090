"""Image behaviour (the parts without Docker) that mutation testing (`make mutation`,
docs/quality.md) showed no test pinned."""

from __future__ import annotations

import pytest

from deploy.gitinfo import GitInfo
from deploy.image.size import MB, within_budget
from deploy.image.tags import compute_tags, ref_tag, sanitize, semver_tags

SHA = "0123456789abcdef0123456789abcdef01234567"


def git(tag: str | None = None, branch: str | None = "main") -> GitInfo:
    return GitInfo(sha=SHA, tag=tag, branch=branch, dirty=False, remote_url=None)


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_both_pull_request_events_tag_the_pr_number(event: str) -> None:
    environ = {"GITHUB_EVENT_NAME": event, "GITHUB_REF": "refs/pull/42/merge"}
    assert ref_tag(git(), environ) == "pr-42"
    assert compute_tags(git(), environ, dirty=False, context_digest="sha256:0").tags == (
        "pr-42",
        "sha-0123456",
    )


def test_a_pull_request_without_a_pr_ref_has_no_ref_tag() -> None:
    assert ref_tag(git(), {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/heads/x"}) is None


def test_refs_choose_branch_tag_or_nothing() -> None:
    assert ref_tag(git(branch="local"), {"GITHUB_REF": "refs/heads/feature/a b"}) == "feature-a-b"
    assert ref_tag(git(branch="local"), {"GITHUB_REF": "refs/tags/v1.0.0"}) is None
    assert ref_tag(git(branch="local/x"), {}) == "local-x"
    assert ref_tag(git(branch=None), {}) is None
    assert ref_tag(git(branch="local"), {"GITHUB_EVENT_NAME": "push"}) == "local"


def test_sanitize_follows_docker_tag_grammar() -> None:
    assert sanitize("..-feature/x") == "feature-x"
    assert sanitize("a" * 200) == "a" * 128
    assert sanitize("a@@b") == "a-b"


def test_semver_tags() -> None:
    assert semver_tags("v1.2.3") == ["1.2.3", "1.2"]
    assert semver_tags("1.2.3+build.5") == ["1.2.3", "1.2"]
    assert semver_tags("v1.2.0-rc.1") == ["1.2.0-rc.1"]
    assert semver_tags("v01.2.3") == []
    assert semver_tags(None) == []


def test_tag_order_latest_and_version() -> None:
    tags = compute_tags(git(tag="v1.2.3"), {}, dirty=False, context_digest="sha256:0", latest=True)
    assert tags.tags == ("1.2.3", "1.2", "main", "latest", "sha-0123456")
    assert tags.version == "1.2.3"
    assert tags.immutable == "sha-0123456"
    assert tags.dirty is False
    on_latest = compute_tags(git(branch="latest"), {}, dirty=False, context_digest="sha256:0", latest=True)
    assert on_latest.tags == ("latest", "sha-0123456")
    assert on_latest.version == "sha-0123456"


def test_a_dirty_tree_gets_one_content_tag() -> None:
    tags = compute_tags(git(tag="v1.2.3"), {}, dirty=True, context_digest="sha256:" + "ab" * 32, latest=True)
    assert tags.tags == ("sha-0123456-dirty-abababababab",)
    assert tags.immutable == tags.version == "sha-0123456-dirty-abababababab"
    assert tags.dirty is True


def test_a_tag_push_on_github_gives_semver_tags() -> None:
    tags = compute_tags(git(branch=None), {"GITHUB_REF": "refs/tags/v2.0.1"}, dirty=False, context_digest="x")
    assert tags.tags == ("2.0.1", "2.0", "sha-0123456")


def test_the_size_budget_is_inclusive() -> None:
    assert within_budget(10 * MB, 10)
    assert not within_budget(10 * MB + 1, 10)
    assert within_budget(10**12, None)
