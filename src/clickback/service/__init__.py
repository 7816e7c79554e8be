"""The use cases: core decisions wired to the store, the in-process caches and the click buffer."""
