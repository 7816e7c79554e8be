"""Log lines: JSON for collectors, and a failure that repeats summarised instead of flooding."""

import io
import json
import logging
import logging.config

import pytest

from clickback.logs import Repeated, log_config


def test_json_lines_carry_time_level_logger_process_and_message() -> None:
    config = log_config(json_lines=True)
    stream = io.StringIO()
    config["handlers"]["default"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        logging.getLogger("clickback.test").warning("postback %s refused", "abc")
    finally:
        logging.config.dictConfig(log_config(json_lines=False))

    line = json.loads(stream.getvalue())
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING",
        "clickback.test",
        "postback abc refused",
    )
    assert line["time"] and isinstance(line["pid"], int)


def test_a_repeated_failure_is_logged_once_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("clickback.repeated")
    failures = Repeated(logger, "postbacks not recorded", every=3600)
    with caplog.at_level(logging.INFO, logger="clickback.repeated"):
        for _ in range(134):
            failures.failed(OSError("connection refused"))
        failures.succeeded()
        failures.succeeded()

    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "postbacks not recorded: connection refused"
    assert caplog.records[0].exc_info is not None
    assert len(messages) == 2 and messages[1].startswith(
        "postbacks not recorded: recovered after 134 failures"
    )
