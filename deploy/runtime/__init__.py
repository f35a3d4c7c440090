"""The slim image's bootstrap: provisions the worker's dependencies at cold start, then starts it.

Standard library only (import-linter contract ``runtime-stdlib-only``): it runs before any
dependency exists. Nothing in rpdeploy imports it; `rpdeploy build` copies this folder into
the slim image, whose ENTRYPOINT runs it as a folder (``python3 /opt/rpdeploy/rpdeploy_runtime``).
Modules import each other relatively, so the same code runs as ``deploy.runtime`` in tests
and as ``rpdeploy_runtime`` in an image. docs/runtime.md describes the behaviour.
"""
