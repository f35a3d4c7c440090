"""rpdeploy: take a RunPod serverless worker from source to a validated endpoint."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rpdeploy")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
