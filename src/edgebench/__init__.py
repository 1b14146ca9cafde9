"""edgebench: long-context inference benchmarks for Transformer, SSM and hybrid language models.

The version lives in pyproject.toml only; it is read back from the installed metadata here.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("edgebench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
