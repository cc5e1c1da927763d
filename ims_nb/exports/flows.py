"""Decisions without I/O: a flow is a generator that yields the client calls it needs and gets their answers.

The ledger logic of exports and watches (what a reconciliation, a poll or a check records) is written once,
as flows; ``drive`` runs a flow against a synchronous client and ``drive_async`` against an asynchronous one,
and those two loops are the only places that differ by ``await``. An exception raised by a call is thrown
into the flow, which handles it as if the call had raised it there.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ims_nb.client.protocol import AsyncClientLike, ClientLike

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One client call a flow needs: ``client.<method>(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


#: A flow yields calls, is sent their answers and returns its result.
Flow = Generator[Call, Any, T]


def call(method: str, *args: Any, **kwargs: Any) -> Generator[Call, Any, Any]:
    """``answer = yield from call("object_size", bucket, key)`` inside a flow."""
    return (yield Call(method, args, kwargs))


def drive(flow: Flow[T], client: ClientLike) -> T:
    """Run a flow with a synchronous client."""
    try:
        step = next(flow)
        while True:
            try:
                answer = getattr(client, step.method)(*step.args, **step.kwargs)
            except BaseException as exc:  # noqa: BLE001 - the flow decides (and re-raises what it does not handle)
                step = flow.throw(exc)
            else:
                step = flow.send(answer)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def drive_async(flow: Flow[T], client: AsyncClientLike) -> T:
    """Run a flow with an asynchronous client: the same calls, awaited."""
    try:
        step = next(flow)
        while True:
            try:
                answer = await getattr(client, step.method)(*step.args, **step.kwargs)
            except BaseException as exc:  # noqa: BLE001 - the flow decides (and re-raises what it does not handle)
                step = flow.throw(exc)
            else:
                step = flow.send(answer)
    except StopIteration as stop:
        result: T = stop.value
        return result
