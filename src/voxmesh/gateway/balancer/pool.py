"""The endpoint pool of one deployment, changed only by explicit discovery events.

Discovery (the controller, a config file, a Kubernetes watch) describes what changed as
events: ``Reset([...])`` replaces the whole set, ``Add(ep)`` adds or replaces one endpoint,
``Remove(ep)`` drops one (by id). :meth:`Pool.update` applies one event and answers a
:class:`Delta` naming what left and what arrived, so the owner can drop per-endpoint state
(EWMA, breaker, metrics) for endpoints that are gone and keep it for those that stayed.

Sans-IO: a dict of frozen dataclasses; no sockets, no clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Add", "Delta", "Endpoint", "Pool", "Remove", "Reset", "Update"]


@dataclass(frozen=True)
class Endpoint:
    """One upstream: ``id`` is stable across restarts of the same slot, ``url`` its base URL."""

    id: str
    url: str
    identity: str | None = None  # expected peer identity (SPIFFE ID) when mTLS is on
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("an endpoint needs a non-empty id")
        if not self.weight > 0:
            raise ValueError(f"endpoint {self.id}: weight must be > 0, got {self.weight}")


@dataclass(frozen=True)
class Reset:
    endpoints: tuple[Endpoint, ...] = ()

    def __init__(self, endpoints: tuple[Endpoint, ...] | list[Endpoint] = ()) -> None:
        object.__setattr__(self, "endpoints", tuple(endpoints))


@dataclass(frozen=True)
class Add:
    endpoint: Endpoint


@dataclass(frozen=True)
class Remove:
    endpoint: Endpoint | str

    @property
    def id(self) -> str:
        return self.endpoint if isinstance(self.endpoint, str) else self.endpoint.id


Update = Reset | Add | Remove


@dataclass(frozen=True)
class Delta:
    added: tuple[Endpoint, ...] = field(default=())
    removed: tuple[Endpoint, ...] = field(default=())


class Pool:
    """Endpoints by id, in the order they were added."""

    def __init__(self, endpoints: list[Endpoint] | tuple[Endpoint, ...] = ()) -> None:
        self._endpoints: dict[str, Endpoint] = {}
        self.update(Reset(endpoints))

    def update(self, event: Update) -> Delta:
        if isinstance(event, Reset):
            ids = [ep.id for ep in event.endpoints]
            if len(set(ids)) != len(ids):
                raise ValueError(f"Reset with duplicate endpoint ids: {sorted(ids)}")
            new = {ep.id: ep for ep in event.endpoints}
            removed = tuple(ep for eid, ep in self._endpoints.items() if new.get(eid) != ep)
            added = tuple(ep for eid, ep in new.items() if self._endpoints.get(eid) != ep)
            self._endpoints = new
            return Delta(added, removed)
        if isinstance(event, Add):
            ep = event.endpoint
            old = self._endpoints.get(ep.id)
            if old == ep:
                return Delta()
            self._endpoints[ep.id] = ep
            # A changed endpoint under the same id (new URL after a restart) is a new upstream.
            return Delta((ep,), (old,) if old is not None else ())
        if isinstance(event, Remove):
            gone = self._endpoints.pop(event.id, None)
            return Delta((), (gone,) if gone is not None else ())
        raise TypeError(f"not a discovery event: {event!r}")

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self._endpoints.get(endpoint_id)

    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(self._endpoints.values())

    def __len__(self) -> int:
        return len(self._endpoints)

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(tuple(self._endpoints.values()))

    def __contains__(self, endpoint_id: object) -> bool:
        return endpoint_id in self._endpoints
