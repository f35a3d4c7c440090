"""Declarative configuration: ``rpdeploy.yaml`` → a validated `Config`."""

from deploy.config.load import DEFAULT_FILE, LoadedConfig, load_config, validate_all
from deploy.config.mask import MASK, Masker
from deploy.config.schema import Config
from deploy.config.view import resolved_view

__all__ = [
    "DEFAULT_FILE",
    "MASK",
    "Config",
    "LoadedConfig",
    "Masker",
    "load_config",
    "resolved_view",
    "validate_all",
]
