"""The pure domain: standard library only, no web, SQL or HTTP imports (tests/core/test_purity.py)."""
