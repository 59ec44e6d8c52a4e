"""Run slots: how many runs go at once in this process, each client's fair share, and
the queue of runs waiting for a slot."""

import asyncio
import collections
from collections.abc import AsyncIterator

from django.conf import settings

from .events import queued_event


class Busy(Exception):
    pass


class RunSlots:
    """At most `slots` concurrent runs (in this process) and a bounded queue of waiters.

    Each client gets a fair share: at most `client_runs` running and `client_queued`
    waiting (None: no share), and a free slot goes to the waiter whose client has the
    fewest runs going, so one client flooding the server does not keep others waiting.
    """

    def __init__(self, slots, queue_size, client_runs=None, client_queued=None):
        self.slots = slots
        self.queue_size = queue_size
        self.client_runs = client_runs
        self.client_queued = client_queued
        self.running = 0
        self.waiting = collections.deque()
        self.running_of = collections.Counter()

    def hold(self, client=None):
        """A ticket: `async with slots.hold() as ticket: async for event in ticket.wait()`.

        Raises Busy at once when every slot is taken and the queue is full, or when the
        client has its share running and waiting already.
        """
        if client is not None and self.client_runs is not None:
            waiting = sum(ticket.client == client for ticket in self.waiting)
            runs_at_once = self.running_of[client] < self.client_runs and self.running < self.slots
            if waiting >= self.client_queued and not runs_at_once:
                raise Busy(
                    f"You have {self.running_of[client]} runs going and {waiting} waiting, "
                    "your share of this server; wait for one to finish."
                )
        if self.running >= self.slots and len(self.waiting) >= self.queue_size:
            raise Busy("The server is busy running other snippets; try again in a minute.")
        return Ticket(self, client)

    def _may_run(self, ticket):
        return (
            ticket.client is None
            or self.client_runs is None
            or self.running_of[ticket.client] < self.client_runs
        )

    def _grant(self):
        while self.running < self.slots:
            eligible = [ticket for ticket in self.waiting if self._may_run(ticket)]
            if not eligible:
                break
            # min() keeps the first of equals: queue order among clients as busy.
            ticket = min(eligible, key=lambda ticket: self.running_of[ticket.client])
            self.waiting.remove(ticket)
            ticket.granted = True
            self.running += 1
            self.running_of[ticket.client] += 1
            ticket.changed.set()
        for ticket in self.waiting:  # positions moved
            ticket.changed.set()

    def _release(self, ticket):
        self.running -= 1
        self.running_of[ticket.client] -= 1
        if not self.running_of[ticket.client]:
            del self.running_of[ticket.client]


class Ticket:
    def __init__(self, slots, client=None):
        self.slots = slots
        self.client = client
        self.granted = False
        self.changed = asyncio.Event()
        slots.waiting.append(self)
        slots._grant()

    async def wait(self) -> AsyncIterator[dict]:
        """Yield queued events as the position changes; return once a slot is held."""
        position = None
        while not self.granted:
            self.changed.clear()
            if (new := self.slots.waiting.index(self) + 1) != position:
                position = new
                yield queued_event(position)
            if not self.granted:
                await self.changed.wait()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        if self.granted:
            self.slots._release(self)
        else:
            self.slots.waiting.remove(self)
        self.slots._grant()


_default_slots = None


def default_slots():
    global _default_slots
    if _default_slots is None:
        _default_slots = RunSlots(
            settings.SNIPPET_RUN_SLOTS,
            settings.SNIPPET_QUEUE_SIZE,
            settings.SNIPPET_RUNS_PER_CLIENT,
            settings.SNIPPET_QUEUED_PER_CLIENT,
        )
    return _default_slots
