"""Problems a person must fix before clickback can run (a setting, the database, the port)."""


class StartupError(Exception):
    """`what` was wrong, naming the setting, and `todo`, what to do about it: the `clickback`
    command prints the two lines instead of a traceback (which `--debug` adds back).

    `transient`: it may pass by itself (a database still starting), so `serve` goes on and
    retries rather than stop."""

    def __init__(self, what: str, todo: str = "", *, status: int = 2, transient: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.todo = todo
        self.status = status
        self.transient = transient

    def __str__(self) -> str:
        return f"{self.what}\n  {self.todo}" if self.todo else self.what
