"""The scheduler: settlement on the configured day and time (UTC), the sweep on an interval."""

from datetime import UTC, datetime

import pytest
from rq import Queue

from pipeline.queues import enqueue_settlement
from tests.hub_helpers import reinstall
from workers.schedule import make_scheduler

pytest_plugins = ["tests.hub_fixtures"]


@pytest.mark.settings({"settlement": {"day": 1, "time": "00:10"}})
def test_settlement_is_scheduled_on_the_configured_day_and_time(worker_context, hub_config):
    scheduler = make_scheduler(worker_context)
    jobs = {job.name: job for job in scheduler.get_jobs()}
    settlement = jobs["settlement"]
    assert (settlement.cron, settlement.queue_name) == ("10 0 1 * *", "settlement")
    assert settlement.func_name == "workers.jobs.settle_due"
    moment = settlement.next_enqueue_time.astimezone(UTC)
    assert (moment.day, moment.hour, moment.minute) == (1, 0, 10)
    assert moment > datetime.now(UTC)
    assert jobs["sweep"].interval == hub_config.worker.sweep_seconds
    assert jobs["sweep"].queue_name == "events"


def test_due_jobs_are_enqueued_on_their_queues(worker_context, redis):
    scheduler = make_scheduler(worker_context)
    enqueued = {job.name for job in scheduler.enqueue_jobs()}
    assert enqueued == {"sweep", "outbound-sweep", "notifications-sweep"}
    assert Queue("events", connection=redis).count == 1
    [sweep] = Queue("outbound", connection=redis).jobs
    assert sweep.func_name == "outbound.webhooks.dispatch_due"
    [notices] = Queue("notifications", connection=redis).jobs
    assert notices.func_name == "notifications.delivery.dispatch_due"
    enqueue_settlement(redis)
    [job] = Queue("settlement", connection=redis).jobs
    assert job.func_name == "workers.jobs.settle_due"
    assert job.retries_left == 3


@pytest.mark.parametrize("day, at", [(0, "00:10"), (29, "00:10"), (1, "24:00"), (1, "noon")])
def test_invalid_schedules_are_refused(worker_context, day, at):
    with pytest.raises(ValueError, match="settlement"):
        make_scheduler(reinstall(worker_context, {"settlement": {"day": day, "time": at}}))
