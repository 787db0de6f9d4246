"""The Python SDK test suite (a package so tests share conftest constants)."""
