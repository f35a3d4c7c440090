"""Masking of secret values that interpolation read into the config.

The config may carry a secret's value in clear: ``env: {KEY: "${AWS_SECRET_ACCESS_KEY}"}``
with ``AWS_SECRET_ACCESS_KEY`` declared in ``secrets:``. Interpolation records every
such value (`deploy.config.interpolate.Interpolator.secrets`); the loaded config carries
them as a `Masker`, and every output path (error lines, ``config show``, rendered
files, hashes) goes through it. Output shows `MASK`; error messages show the
reference the user wrote (``${AWS_SECRET_ACCESS_KEY}``), which says what to fix without
telling the value.

Replacing values in text (rather than marking fields) is what CI systems do with
registered secrets (GitHub Actions' ``add-mask``): it also catches a value that was
embedded in a longer string, copied into another field, or quoted in a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

#: What output shows instead of a secret value.
MASK: Final = "***"
#: Key of the `Masker` in pydantic's validation context, so validators can quote values safely.
MASKER: Final = "rpdeploy.masker"


@dataclass(frozen=True)
class Masker:
    """Knows the secret values read into one config: ``{value: variable name}``."""

    secrets: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        values = sorted((v for v in self.secrets if v), key=len, reverse=True)  # longest wins
        return re.compile("|".join(map(re.escape, values))) if values else None

    def text(self, text: str) -> str:
        """``text`` with every secret value replaced by `MASK`.

        >>> Masker({"s3cr3t": "KEY"}).text("user:s3cr3t@host")
        'user:***@host'
        """
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text

    def reference(self, text: str) -> str:
        """``text`` with every secret value replaced by the ``${NAME}`` it was read from.

        >>> Masker({"s3cr3t": "KEY"}).reference("got 's3cr3t'")
        "got '${KEY}'"
        """
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(lambda m: "${" + self.secrets[m.group(0)] + "}", text)

    def data(self, value: Any) -> Any:
        """A copy of JSON-like ``value`` with `text` applied to every string, keys included."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def context_masker(context: object) -> Masker:
    """The `Masker` a validation ``context`` carries (none: nothing to mask)."""
    masker = context.get(MASKER) if isinstance(context, dict) else None
    return masker if isinstance(masker, Masker) else Masker()
