"""HTTP adapters: tracking routes on a plain Starlette app, the JSON API on FastAPI beside them."""
