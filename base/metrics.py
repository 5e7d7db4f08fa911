"""The hub's Prometheus counters, counted where things happen (call these from the code that
does it; `hub.metrics` serves them at `GET /metrics`):
- `webhook_received(platform)`, `webhook_verified(platform)`,
  `webhook_rejected(platform, reason)`: in `hub.intake.Intake.receive` — received on entry,
  verified after `connector.accept` succeeded, rejected with reason `unknown_platform` (404),
  `signature` (401), `payload` (400), `unavailable` (503); `too_large` from the 413 path.
  Stripe's webhook, which does not go through the intake, counts the same in
  `hub.stripe_webhook` (its bad signatures are 400).
- `record_ingest(result.counts)`: after `ingest` in `workers.jobs.process_batch` (events
  deduplicated, unknown actors, flattrs counted, pledged and retracted).
- `record_settlement(summary, seconds)`: after each `settle` in `workers.jobs.settle_due`.
- `record_polls(platform, totals)`: with the totals of `workers.pollers.poll_batch` (rounds per
  outcome; `rate_limited` is a 429 from the platform).
- `record_outbound(result)`: outbound webhook attempts (called by `outbound.delivery`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

from prometheus_client import Counter, Histogram

from ledger.settlement import RunSummary

# Label values come from these sets only, so a stranger posting to /webhooks/<anything> can not
# grow the number of series. The platforms are the registry's (`connectors.registry` names
# them when it is imported) and Stripe; any other name is counted as "other".
_platforms: frozenset[str] = frozenset({"stripe"})
REJECT_REASONS = ("unknown_platform", "signature", "payload", "too_large", "unavailable")
POLL_STATUSES = ("polled", "baseline", "rate_limited", "relink", "error", "window_full",
                 "skipped")
OUTBOUND_RESULTS = ("delivered", "retry", "failed")

WEBHOOKS_RECEIVED = Counter("flattr_webhooks_received", "Webhook deliveries received",
                            ["platform"])
WEBHOOKS_VERIFIED = Counter("flattr_webhooks_verified", "Webhook deliveries whose signature "
                            "verified and whose payload parsed", ["platform"])
WEBHOOKS_REJECTED = Counter("flattr_webhooks_rejected", "Webhook deliveries refused",
                            ["platform", "reason"])
EVENTS_DEDUPLICATED = Counter("flattr_events_deduplicated", "Events dropped as already seen")
UNKNOWN_ACTORS = Counter("flattr_unknown_actors", "Likes from identities no user linked")
FLATTRS = Counter("flattr_flattrs", "Flattrs recorded, by result: counted (to a claimed "
                  "identity), pledged (to an unclaimed one), retracted", ["result"])
SETTLEMENT_SECONDS = Histogram("flattr_settlement_duration_seconds", "Month settlement runs",
                               buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600))
SETTLEMENT_AMOUNT = Counter("flattr_settlement_amount_minor_units", "Money distributed by "
                            "settlement, in minor units (before fees)")
SETTLEMENT_FEES = Counter("flattr_settlement_fees_minor_units", "Fees taken by settlement, in "
                          "minor units")
SETTLEMENT_FLATTRS = Counter("flattr_settlement_flattrs", "Flattrs paid by settlement")
POLLER_ROUNDS = Counter("flattr_poller_rounds", "Account polls, by outcome",
                        ["platform", "status"])
POLLER_429 = Counter("flattr_poller_rate_limited", "Polls answered 429 by the platform",
                     ["platform"])
OUTBOUND_ATTEMPTS = Counter("flattr_outbound_attempts", "Outbound webhook attempts, by result",
                            ["result"])

_INGEST_FLATTRS = {"flattred": "counted", "pledge": "pledged", "retracted": "retracted"}


def label_platforms(names: Iterable[str]) -> None:
    """Count these platforms under their own names (the registry's, and Stripe)."""
    global _platforms
    _platforms = frozenset({"stripe", *names})


def _platform(platform: str) -> str:
    return platform if platform in _platforms else "other"


@cache
def _child(counter: Counter, platform: str) -> Counter:
    """`counter`'s child for a `_platform(…)` value, looked up once rather than on every
    webhook (callers map the platform first, so this holds a few entries at most)."""
    return counter.labels(platform)


def webhook_received(platform: str) -> None:
    _child(WEBHOOKS_RECEIVED, _platform(platform)).inc()


def webhook_verified(platform: str) -> None:
    _child(WEBHOOKS_VERIFIED, _platform(platform)).inc()


def webhook_rejected(platform: str, reason: str) -> None:
    if reason not in REJECT_REASONS:
        raise ValueError(f"unknown reject reason {reason}")
    WEBHOOKS_REJECTED.labels(_platform(platform), reason).inc()


def record_ingest(counts: Mapping[str, int]) -> None:
    """Count one ingested batch from `IngestResult.counts`."""
    if counts.get("duplicate", 0) > 0:
        EVENTS_DEDUPLICATED.inc(counts["duplicate"])
    if counts.get("unknown_actor", 0) > 0:
        UNKNOWN_ACTORS.inc(counts["unknown_actor"])
    for outcome, result in _INGEST_FLATTRS.items():
        if counts.get(outcome, 0) > 0:
            FLATTRS.labels(result).inc(counts[outcome])


def record_settlement(summary: RunSummary, seconds: float) -> None:
    """Count a settlement run that did the work (not one that found the month done)."""
    if summary.already_done:
        return
    SETTLEMENT_SECONDS.observe(seconds)
    SETTLEMENT_AMOUNT.inc(summary.amount)
    SETTLEMENT_FEES.inc(summary.fees)
    SETTLEMENT_FLATTRS.inc(summary.flattrs)


def record_polls(platform: str, totals: Mapping[str, int]) -> None:
    """Count the polls of one batch from `{status: count}` (other keys are ignored)."""
    for status in POLL_STATUSES:
        if totals.get(status, 0) > 0:
            POLLER_ROUNDS.labels(_platform(platform), status).inc(totals[status])
    if totals.get("rate_limited", 0) > 0:
        POLLER_429.labels(_platform(platform)).inc(totals["rate_limited"])


def record_outbound(result: str) -> None:
    if result not in OUTBOUND_RESULTS:
        raise ValueError(f"unknown outbound result {result}")
    OUTBOUND_ATTEMPTS.labels(result).inc()
