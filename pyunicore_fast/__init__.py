"""pyunicore_fast: a fast, PyUNICORE-compatible client for UNICORE and UFTP."""

__version__ = "0.1.0"
