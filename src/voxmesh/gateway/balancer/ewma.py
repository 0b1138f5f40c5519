"""Peak-EWMA load of one endpoint (Linkerd / tower ``PeakEwma`` semantics).

Algorithm
    The estimate starts at ``default_rtt`` (30 ms) so a new endpoint is neither favoured nor
    shunned. A sample *above* the estimate replaces it at once (the peak: react to a slow
    endpoint immediately); a sample below it is blended in exponentially by the time since
    the last update: ``w = exp(-elapsed / decay)``, ``est = est * w + sample * (1 - w)``
    (decay 10 s). Read at time ``now`` the estimate also decays towards zero by the same
    weight, as tower does, so an endpoint that has been left idle after a slow spell
    becomes cheap again and gets a request that measures it afresh.

    ``cost = estimate * (pending + 1) / weight`` where ``pending`` counts requests sent and
    not finished. The sample is taken at the first response byte, so for a streaming
    synthesis it is the time to first audio, not the length of the utterance.

Limits
    Pending counts whole requests including streaming bodies (tower stops at the response
    head): a stream in flight keeps a worker's cores busy, which is the load we balance on.
    Failed connections give no sample; the data plane feeds a timed-out attempt's elapsed
    time as a sample (a lower bound on its real latency).
"""

from __future__ import annotations

import math

from voxmesh.clock import Clock, monotonic

__all__ = ["PeakEwma"]


class PeakEwma:
    def __init__(
        self, *, default_rtt_s: float = 0.030, decay_s: float = 10.0, clock: Clock = monotonic
    ) -> None:
        if default_rtt_s <= 0 or decay_s <= 0:
            raise ValueError("default_rtt_s and decay_s must be > 0")
        self.decay_s = decay_s
        self._clock = clock
        self._estimate = default_rtt_s
        self._stamp = clock()
        self.pending = 0

    def _decayed(self, now: float) -> float:
        elapsed = max(0.0, now - self._stamp)
        return self._estimate * math.exp(-elapsed / self.decay_s)

    def observe(self, rtt_s: float) -> None:
        """Feed one latency sample (seconds to first response byte)."""
        now = self._clock()
        if rtt_s > self._estimate:
            self._estimate = rtt_s
        else:
            w = math.exp(-max(0.0, now - self._stamp) / self.decay_s)
            self._estimate = self._estimate * w + rtt_s * (1.0 - w)
        self._stamp = max(self._stamp, now)

    def estimate(self) -> float:
        """The latency estimate now, in seconds."""
        return self._decayed(self._clock())

    def cost(self, weight: float = 1.0, now: float | None = None) -> float:
        return self._decayed(self._clock() if now is None else now) * (self.pending + 1) / weight

    def start(self) -> None:
        self.pending += 1

    def finish(self) -> None:
        if self.pending <= 0:
            raise RuntimeError("finish() without start()")
        self.pending -= 1
