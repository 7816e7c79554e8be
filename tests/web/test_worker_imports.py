"""What a `serve` worker imports: not the libraries only some processes need.

A worker must stay under 150 MB while answering a report (issue 13, ADR 14), with a few MB to
spare. The command line (typer, rich), migrations (alembic), charts (pygal), outbound HTTP
(aiohttp) and spreadsheets (openpyxl) are imported where they are first used; a new top-level
import of one of them would cost every worker its size without anyone noticing.
"""

import subprocess
import sys

HEAVY = ("typer", "rich", "alembic", "pygal", "aiohttp", "openpyxl")

# A spawned worker imports the main module again (clickback.__main__, the console script's) and
# the app factory `clickback serve` names; the factory builds the runtime.
WORKER = """
import sys
import clickback.__main__
from clickback.web import app
from clickback.service import runtime
print(",".join(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def test_a_worker_imports_no_library_it_may_never_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WORKER.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == ""
