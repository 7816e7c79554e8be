"""The click spool on a real directory: what is written comes back, once, and nothing torn."""

import asyncio
import fcntl
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clickback.core.model import Click, Traits
from clickback.service.spool import SUFFIX, Spool, decode, encode


def click(n: int) -> Click:
    return Click(
        click_id=f"{n:032d}",
        clicked_at=datetime(2026, 11, 25, 12, 0, n % 60, 123000, tzinfo=UTC),
        link_id=1,
        affiliate_id=2,
        offer_id=3,
        campaign="c",
        subs=("a\nb", "ü", "", "", "x" * 255),
        source="s",
        landing_page="lp",
        ip="203.0.113.0",
        user_agent="UA",
        referrer="",
        traits=Traits("GB", "England", "London", 64512, "mobile", "iOS", "Safari", ""),
        visitor="v" * 32,
    )


def test_a_click_survives_encoding_exactly() -> None:
    assert decode(encode(click(7))) == click(7)
    tested = click(8)._replace(test=True)
    assert decode(encode(tested)) == tested


def test_a_line_spooled_before_test_clicks_reads_as_a_real_click() -> None:
    line = encode(click(9)).replace(b',"test":false', b"")
    assert b"test" not in line and decode(line) == click(9)
    with pytest.raises(ValueError, match="wrong type"):
        decode(encode(click(9)).replace(b'"test":false', b'"test":"yes"'))


def test_durable_appends_are_on_disk_when_they_return(tmp_path: Path) -> None:
    spool = Spool(tmp_path)

    async def append_many() -> None:
        await asyncio.gather(*(spool.append(click(n)) for n in range(50)))

    asyncio.run(append_many())

    [segment] = list(tmp_path.glob(f"*{SUFFIX}"))
    assert len(segment.read_bytes().splitlines()) == 50
    assert spool.claim() is None  # the live segment is locked by its writer
    spool.close()
    claimed = spool.claim()
    assert claimed is not None
    assert claimed.clicks == [click(n) for n in range(50)]
    spool.drained(claimed.path)
    assert list(tmp_path.iterdir()) == []


def test_rotated_segments_go_once_their_clicks_are_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path)

    async def scenario() -> None:
        await spool.append(click(1))
        spool.rotate()
        await spool.append(click(2))
        spool.rotate()  # a failed flush left the first segment: appends stay in the current one
        await spool.append(click(3))

    asyncio.run(scenario())
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == 2
    spool.written_from_memory()

    [left] = list(tmp_path.glob(f"*{SUFFIX}"))
    assert len(left.read_bytes().splitlines()) == 2
    spool.close()


def test_an_append_racing_a_rotation_is_on_disk_when_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path)

    async def scenario() -> None:
        first = spool.append(click(1))  # its group fsync has not run yet
        spool.rotate()
        second = spool.append(click(2))  # a new segment: must not ride on the old group
        await asyncio.gather(first, second)

    asyncio.run(scenario())
    segments = sorted(tmp_path.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)
    assert [len(p.read_bytes().splitlines()) for p in segments] == [1, 1]
    spool.close()


# Lines that are not clicks as encode() writes them: damage, another version, a wrong type.
NOT_CLICKS = [
    b"\xff\xfe not json\n",
    b'["a list"]\n',
    encode(click(5)).replace(b'"link_id":1', b'"link_id":"1"'),
    encode(click(6)).replace(b',"visitor"', b',"extra":1,"visitor"'),
    encode(click(7)).replace(b'"subs":["a\\nb",', b'"subs":['),
    encode(click(8)).replace(b"+00:00", b""),
]


def test_spilled_clicks_are_claimed_unreadable_lines_set_apart_and_a_torn_last_line_ignored(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    assert spool.spill([click(1), click(2)]) == 2
    [segment] = list(tmp_path.glob(f"*{SUFFIX}"))
    with open(segment, "ab") as f:
        f.write(b"".join(NOT_CLICKS))
        f.write(encode(click(3))[:40])  # a crash in the middle of a write

    claimed = spool.claim()

    assert claimed is not None
    assert claimed.clicks == [click(1), click(2)]
    assert [line for line, _ in claimed.unreadable] == NOT_CLICKS
    assert all(why.startswith("not a spooled click (") for _, why in claimed.unreadable)
    spool.close()


def test_a_segment_locked_by_another_process_is_left_alone(tmp_path: Path) -> None:
    Spool(tmp_path).spill([click(1)])
    [segment] = list(tmp_path.glob(f"*{SUFFIX}"))
    spool = Spool(tmp_path)
    with open(segment, "rb") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        assert spool.claim() is None
    assert spool.claim() is not None
    spool.close()
