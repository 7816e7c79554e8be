"""The click spool: local append-only files holding clicks the database does not have yet.

Two uses. In durable mode every click is appended, and its redirect waits for the next group
fsync: a redirected click survives kill -9 and power loss. In both modes, when the database cannot
take clicks for long, the click writer moves its backlog here instead of holding it in memory.

Each process writes its own segment files and holds an exclusive flock on them; a segment left
behind by a dead process (no lock) is drained by whichever writer finds it. Draining is safe to
repeat: clicks are inserted idempotently by click ID.
"""

import asyncio
import fcntl
import json
import os
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from clickback.core.model import Click, Traits

SUFFIX = ".spool"


def encode(click: Click) -> bytes:
    doc = click._asdict()
    doc["clicked_at"] = click.clicked_at.isoformat()
    doc["traits"] = click.traits._asdict()
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Click:
    """The click of a line `encode` wrote; ValueError for anything else (a damaged file, a line
    of another version), which the writer sets apart rather than let it stop the drain."""
    try:
        doc: dict[str, Any] = json.loads(line)
        doc["clicked_at"] = datetime.fromisoformat(doc["clicked_at"])
        doc["subs"] = tuple(doc["subs"])
        doc["traits"] = Traits(**doc["traits"])
        click = Click(**doc)
    except (ValueError, TypeError, KeyError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"not a spooled click ({type(exc).__name__}: {exc})") from None
    if not _well_typed(click):
        raise ValueError("not a spooled click (a value of the wrong type)")
    return click


def _well_typed(c: Click) -> bool:
    t = c.traits
    text = [c.click_id, c.campaign, *c.subs, c.source, c.landing_page, c.ip, c.user_agent, c.referrer]
    text += [c.visitor, t.country, t.region, t.city, t.device_type, t.os, t.browser, t.bot]
    return (
        all(type(v) is str for v in text)
        and all(type(v) is int for v in (c.link_id, c.affiliate_id, c.offer_id))
        and (t.asn is None or type(t.asn) is int)
        and len(c.subs) == 5
        and type(c.test) is bool
        and c.clicked_at.tzinfo is not None
    )


class Claimed(NamedTuple):
    path: Path
    clicks: list[Click]
    # Lines that are not clicks, with why (see decode).
    unreadable: list[tuple[bytes, str]]


class _Segment:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] = open(path, "ab")  # noqa: SIM115 - lives as long as the segment
        fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.count = 0

    def sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.sync()
        self.file.close()  # releases the flock


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._current: _Segment | None = None
        self._sync: asyncio.Future[None] | None = None
        self._sync_segment: _Segment | None = None
        # Closed segments whose clicks are all still in the writer's memory (durable mode): kept
        # open and locked until those clicks are committed, then deleted.
        self._mirrors: list[_Segment] = []
        self._claimed: dict[Path, IO[bytes]] = {}

    def _new_segment(self) -> _Segment:
        return _Segment(self.directory / f"{uuid.uuid4().hex}{SUFFIX}")

    def append(self, click: Click) -> "asyncio.Future[None]":
        """Durable mode: write the click's line now; the returned future completes once it is on
        disk. Appends made while one fsync runs share the next one (group commit), so the cost
        per click falls as load rises."""
        if self._current is None:
            self._current = self._new_segment()
        segment = self._current
        segment.file.write(encode(click))
        segment.count += 1
        if self._sync is None or self._sync_segment is not segment:
            self._sync_segment = segment
            self._sync = asyncio.ensure_future(self._group_sync(segment))
        return asyncio.shield(self._sync)

    async def _group_sync(self, segment: _Segment) -> None:
        await asyncio.sleep(0)  # let the requests already running join this group
        if self._sync_segment is segment:
            self._sync = None  # appends from here on wait for the next group
        if segment.file.closed:  # rotated and written meanwhile: it was synced on rotation
            return
        segment.file.flush()
        await asyncio.to_thread(os.fsync, segment.file.fileno())

    def rotate(self) -> None:
        """Close the current segment for appends; its clicks are in memory, about to be written.

        Only when the segments closed before are gone (written): while the database keeps
        failing, appends go on into one segment rather than one new open file per attempt."""
        if self._current is not None and not self._mirrors:
            self._current.sync()
            self._mirrors.append(self._current)
            self._current = None

    def written_from_memory(self) -> None:
        """Every click of the rotated segments is committed: the files can go."""
        for segment in self._mirrors:
            segment.file.close()
            segment.path.unlink(missing_ok=True)
        self._mirrors = []

    def spill(self, clicks: Iterable[Click]) -> int:
        """The writer is dropping clicks from memory (the database has been failing): make sure
        each is in a closed, synced segment, to be read back and written later."""
        if self._mirrors or self._current is not None:
            # Durable mode: they are on disk already; the segments just stop being ours.
            return self._release_all()
        segment = self._new_segment()
        for click in clicks:
            segment.file.write(encode(click))
            segment.count += 1
        segment.close()
        return segment.count

    def _release_all(self) -> int:
        """Sync, close and unlock every segment we write: from now on they are backlog."""
        segments = self._mirrors + ([self._current] if self._current is not None else [])
        for segment in segments:
            segment.close()
        self._mirrors, self._current = [], None
        return sum(segment.count for segment in segments)

    def claim(self) -> "Claimed | None":
        """Lock and read one closed segment nobody holds (a spill, or a dead process's file)."""
        for path in sorted(self.directory.glob(f"*{SUFFIX}"), key=_mtime):
            try:
                f = open(path, "rb")  # noqa: SIM115 - held until drained()
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # ours (current or mirror) or another live process's
                f.close()
                continue
            claimed = Claimed(path, [], [])
            for line in f:
                if not line.endswith(b"\n"):
                    continue  # a torn last line was never fsynced, so its redirect was never sent
                try:
                    claimed.clicks.append(decode(line))
                except ValueError as exc:
                    claimed.unreadable.append((line, str(exc)))
            self._claimed[path] = f
            return claimed
        return None

    def drained(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._claimed.pop(path).close()

    def release(self, path: Path) -> None:
        self._claimed.pop(path).close()

    @property
    def files(self) -> int:
        return sum(1 for _ in self.directory.glob(f"*{SUFFIX}"))

    def close(self) -> None:
        """At shutdown, after the writer's last flush: what is left stays for the next start."""
        self._release_all()
        for f in self._claimed.values():
            f.close()
        self._claimed.clear()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
