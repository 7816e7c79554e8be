"""Which failures are the data's (the click writer isolates the refused clicks) and which are
not (the batch is retried whole, as when the database is away); which are a race on a unique key
lost to another transaction (a postback group runs again)."""

import sqlite3

import asyncpg.exceptions as pg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from clickback.store.db import lost_race, refused_data


def caused(error: BaseException, by: BaseException) -> BaseException:
    error.__cause__ = by
    return error


def during(error: BaseException, handling: BaseException) -> BaseException:
    error.__context__ = handling
    return error


@pytest.mark.parametrize(
    ("error", "data"),
    [
        (pg.StringDataRightTruncationError("value too long for type character varying(45)"), True),
        (pg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'), True),
        (pg.NotNullViolationError("null value in column"), True),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), True),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), True),
        (sqlite3.IntegrityError("NOT NULL constraint failed"), True),
        # SQLAlchemy's wrapper of a driver's error, and an error raised from another
        (DBAPIError("INSERT ...", None, caused(Exception("adapted"), pg.DataError("invalid input"))), True),
        (pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), False),
        (pg.CannotConnectNowError("the database system is starting up"), False),
        (pg.DiskFullError("could not extend file"), False),
        (pg.DeadlockDetectedError("deadlock detected"), False),
        (pg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"), False),
        (ConnectionRefusedError(111, "Connection refused"), False),
        (OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")), False),
        (TypeError("a bug"), False),
        # a rollback that failed on a lost connection while a data error was being handled
        (during(pg.ConnectionDoesNotExistError("closed"), pg.StringDataRightTruncationError("x")), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_only_refusals_of_the_values_themselves_are_the_datas(error: BaseException, data: bool) -> None:
    assert refused_data(error) is data


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (pg.UniqueViolationError('duplicate key value violates unique constraint "uq_conversions"'), True),
        (DBAPIError("INSERT ...", None, caused(Exception("adapted"), pg.UniqueViolationError("dup"))), True),
        (pg.DeadlockDetectedError("deadlock detected"), True),  # rolled back whole: done again
        (pg.NotNullViolationError("null value in column"), False),
        (pg.ForeignKeyViolationError("violates foreign key constraint"), False),
        (pg.StringDataRightTruncationError("value too long"), False),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), False),  # a writer holds the lock
        (during(pg.ConnectionDoesNotExistError("closed"), pg.UniqueViolationError("dup")), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_a_unique_key_taken_meanwhile_or_a_deadlock_is_a_lost_race(error: BaseException, lost: bool) -> None:
    assert lost_race(error) is lost
