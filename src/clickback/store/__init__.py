"""The only package that knows SQL: tables, migrations, queries, and the dialect differences."""
