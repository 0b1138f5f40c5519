"""A small metrics registry: counters, gauges and histograms with label sets.

Exposed in the Prometheus text format (version 0.0.4) by :meth:`Registry.render`, so a
Prometheus server (or KEDA through it) can scrape ``/metrics`` without ``prometheus_client``.

Histograms use one fixed set of latency buckets, :data:`LATENCY_BUCKETS`, from 0.5 ms to
60 s on a 1-1.5-2-3-4-5-7.5 ladder (neighbouring bounds differ by at most 1.5x). The same
buckets are used for every histogram so that quantiles of different series compare and so
that Prometheus can aggregate them (``histogram_quantile`` over ``sum by (le)``).

:meth:`HistogramChild.quantile` estimates a quantile the way ``histogram_quantile`` does:
find the bucket holding the rank ``q * count`` and interpolate linearly inside it. The
estimate is then clamped to the smallest and largest value observed, which makes the
extreme quantiles exact and never moves an estimate out of its bucket.

Limits
    The estimate is only as good as the bucket: it always lies in the same bucket as the
    true quantile of the observed values (bucket resolution), but within the bucket it assumes
    values are spread evenly. Values above 60 s fall in ``+Inf`` and are estimated by the
    largest observed value. There is no locking: metrics are updated from one event loop
    thread.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

__all__ = [
    "LATENCY_BUCKETS",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "Registry",
]

# Seconds. Neighbouring bounds differ by at most 1.5x (the resolution of a quantile estimate).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.00075,
    0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075,
    0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    """Counts per bucket (not cumulative), sum, count, min and max of the observations."""

    __slots__ = ("bounds", "count", "counts", "max", "min", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0
        self.min = math.inf
        self.max = -math.inf

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": a value on a bound belongs to it.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def bucket_of(self, value: float) -> tuple[float, float]:
        """The (lower, upper] bounds of the bucket ``value`` falls in."""
        i = bisect.bisect_left(self.bounds, value)
        lower = self.bounds[i - 1] if i > 0 else 0.0
        upper = self.bounds[i] if i < len(self.bounds) else math.inf
        return lower, upper

    def quantile(self, q: float) -> float:
        """Estimate the ``q`` quantile (0 <= q <= 1); NaN when nothing was observed."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be in [0, 1]")
        if self.count == 0:
            return math.nan
        rank = q * self.count
        cumulative = 0
        for i, n in enumerate(self.counts):
            if n == 0 or cumulative + n < rank:
                cumulative += n
                continue
            lower = self.bounds[i - 1] if i > 0 else 0.0
            if i == len(self.bounds):
                estimate = self.max
            else:
                upper = self.bounds[i]
                estimate = lower + (upper - lower) * (rank - cumulative) / n
            return min(max(estimate, self.min), self.max)
        return self.max  # only reached through float rounding at q == 1


C = TypeVar("C", CounterChild, GaugeChild, HistogramChild)


class _Family(Generic[C]):
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], C] = {}

    def _new(self) -> C:
        raise NotImplementedError

    def labels(self, *values: str, **kv: str) -> C:
        """The child for one label set, created on first use."""
        if kv:
            if values:
                raise ValueError("pass label values by position or by name, not both")
            try:
                values = tuple(kv[name] for name in self.labelnames)
            except KeyError as exc:
                raise ValueError(f"{self.name}: missing label {exc.args[0]!r}") from exc
            if len(kv) != len(self.labelnames):
                raise ValueError(f"{self.name}: labels are {self.labelnames}, got {sorted(kv)}")
        elif len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: labels are {self.labelnames}, got {len(values)} values")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new()
        return child

    def remove(self, *values: str) -> None:
        """Forget one label set (an endpoint that left the pool)."""
        self._children.pop(tuple(values), None)

    def children(self) -> Iterator[tuple[dict[str, str], C]]:
        for key, child in list(self._children.items()):
            yield dict(zip(self.labelnames, key, strict=True)), child


class Counter(_Family[CounterChild]):
    kind = "counter"

    def _new(self) -> CounterChild:
        return CounterChild()


class Gauge(_Family[GaugeChild]):
    kind = "gauge"

    def _new(self) -> GaugeChild:
        return GaugeChild()


class Histogram(_Family[HistogramChild]):
    kind = "histogram"

    def __init__(
        self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> None:
        super().__init__(name, help, labelnames)
        if list(buckets) != sorted(set(buckets)):
            raise ValueError("histogram buckets must be strictly increasing")
        self.buckets = tuple(buckets)

    def _new(self) -> HistogramChild:
        return HistogramChild(self.buckets)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items()) + "}"


class Registry:
    """Named metric families; asking twice for the same name returns the same family."""

    def __init__(self) -> None:
        self._families: dict[str, _Family[CounterChild] | _Family[GaugeChild] | _Family[HistogramChild]] = {}

    def _get(
        self, cls: type, name: str, help: str, labelnames: Sequence[str], **kw: Sequence[float]
    ) -> object:
        existing = self._families.get(name)
        if existing is not None:
            if type(existing) is not cls or existing.labelnames != tuple(labelnames):
                raise ValueError(f"metric {name!r} already registered with another type or labels")
            return existing
        family = cls(name, help, labelnames, **kw)
        self._families[name] = family
        return family

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        family = self._get(Counter, name, help, labelnames)
        assert isinstance(family, Counter)
        return family

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        family = self._get(Gauge, name, help, labelnames)
        assert isinstance(family, Gauge)
        return family

    def histogram(
        self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        family = self._get(Histogram, name, help, labelnames, buckets=buckets)
        assert isinstance(family, Histogram)
        return family

    def get(self, name: str) -> Counter | Gauge | Histogram | None:
        family = self._families.get(name)
        assert family is None or isinstance(family, Counter | Gauge | Histogram)
        return family

    def render(self) -> str:
        """All families in the Prometheus text exposition format."""
        lines: list[str] = []
        for name, family in sorted(self._families.items()):
            help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {family.kind}")
            for pairs, child in family.children():
                if isinstance(child, HistogramChild):
                    cumulative = 0
                    for bound, n in zip((*child.bounds, math.inf), child.counts, strict=True):
                        cumulative += n
                        lines.append(f"{name}_bucket{_labels({**pairs, 'le': _fmt(bound)})} {cumulative}")
                    lines.append(f"{name}_sum{_labels(pairs)} {_fmt(child.sum)}")
                    lines.append(f"{name}_count{_labels(pairs)} {child.count}")
                else:
                    lines.append(f"{name}{_labels(pairs)} {_fmt(child.value)}")
        return "\n".join(lines) + "\n"
