"""The run's counts of expensive starts (tests/counting/sitecustomize.py, also a child's sitecustomize)."""

from tests.counting.sitecustomize import COUNTS_ENV, count, install_hook, read_counts

__all__ = ["COUNTS_ENV", "count", "install_hook", "read_counts"]
