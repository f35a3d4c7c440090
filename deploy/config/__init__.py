"""Declarative configuration: ``rpdeploy.yaml`` → a validated `Config`."""

from deploy.config.load import DEFAULT_FILE, LoadedConfig, load_config, validate_all
from deploy.config.schema import Config

__all__ = ["DEFAULT_FILE", "Config", "LoadedConfig", "load_config", "validate_all"]
