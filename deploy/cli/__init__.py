"""Command-line interface: one module per noun, assembled lazily in `main`."""
