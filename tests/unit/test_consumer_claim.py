"""The claim that lets one HTTP worker of a server run the event consumers: one holder at a time,
and free again the moment its holder lets go (as a process does when it ends)."""

from __future__ import annotations

import asyncio
import uuid

from infiniscale import consumer_claim
from infiniscale.consumer_claim import ConsumerClaim


def test_one_holder_at_a_time_and_the_next_takes_over():
    name = f"infiniscale-test/{uuid.uuid4()}"
    first, second = ConsumerClaim(name), ConsumerClaim(name)
    assert first.try_take()
    assert first.try_take()  # held already
    assert not second.try_take()
    first.release()
    assert second.try_take()
    assert not first.try_take()
    second.release()


def test_guarded_jobs_start_once_the_claim_is_theirs(monkeypatch):
    monkeypatch.setattr(consumer_claim, "RETRY_S", 0.02)
    name = f"infiniscale-test/{uuid.uuid4()}"
    holder, waiter = ConsumerClaim(name), ConsumerClaim(name)
    assert holder.try_take()
    started: list[str] = []

    async def job() -> None:
        started.append("consuming")

    async def main() -> None:
        (guarded,) = waiter.guard((job,))
        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0.2)
        assert started == []  # another process consumes
        holder.release()
        await asyncio.wait_for(task, 2)
        assert started == ["consuming"]

    asyncio.run(main())
    waiter.release()
