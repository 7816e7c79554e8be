"""`clickback` and `python -m clickback`: the command line, imported only when it runs.

`serve`'s workers are spawned processes, and each imports the main module of the process that
started it again: this one, rather than the command line's (typer, rich, alembic), which would
hold some 15 MB in every worker (issue 13: no worker above 150 MB while answering a report)."""


def main() -> None:
    from clickback.cli import main as command

    command()


if __name__ == "__main__":
    main()
