"""Group commit: an idle server applies a request at once; a busy one lets the requests already on
their way join the next group (fewer, larger transactions)."""

import asyncio
from collections.abc import Sequence

import pytest

from clickback.service import group_commit
from clickback.service.group_commit import GroupCommit


async def applied_groups(arrivals: Sequence[float]) -> list[list[int]]:
    """Items submitted at the given delays (seconds after the first group was applied)."""
    groups: list[list[int]] = []

    async def apply(items: Sequence[int]) -> list[int]:
        groups.append(list(items))
        return list(items)

    commit: GroupCommit[int, int] = GroupCommit(apply, max_size=100)
    await commit.submit(0)  # idle: applied alone, at once

    async def later(n: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return await commit.submit(n)

    results = await asyncio.gather(*(later(n, d) for n, d in enumerate(arrivals, 1)))
    assert results == list(range(1, len(arrivals) + 1))  # each answered with its own result
    await commit.close()
    return groups


def test_requests_arriving_while_busy_join_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", 0.05)
    monkeypatch.setattr(group_commit, "BUSY_SECONDS", 10.0)
    # The second comes 5 ms after the first: within the first's linger.
    assert asyncio.run(applied_groups([0.0, 0.005])) == [[0], [1, 2]]


def test_an_idle_server_does_not_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", 10.0)  # would time the test out
    monkeypatch.setattr(group_commit, "BUSY_SECONDS", 0.0)
    assert asyncio.run(asyncio.wait_for(applied_groups([0.0]), 5)) == [[0], [1]]
