"""The scheduler: settlement on the configured day and time (UTC), the sweep on an interval."""

from datetime import UTC, datetime

import pytest
from rq import Queue

from flattr_hub.cli import build_parser
from pipeline.queues import QUEUES, enqueue_settlement
from tests.hub_helpers import reinstall
from workers.schedule import SCHEDULES, make_scheduler

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
    assert sweep.func_name == "workers.webhooks_out.dispatch_due"
    [notices] = Queue("notifications", connection=redis).jobs
    assert notices.func_name == "workers.notices.dispatch_due"
    enqueue_settlement(redis)
    [job] = Queue("settlement", connection=redis).jobs
    assert job.func_name == "workers.jobs.settle_due"
    assert job.retries_left == 3


@pytest.mark.parametrize("day, at", [(0, "00:10"), (29, "00:10"), (1, "24:00"), (1, "noon")])
def test_invalid_schedules_are_refused(worker_context, day, at):
    with pytest.raises(ValueError, match="settlement"):
        make_scheduler(reinstall(worker_context, {"settlement": {"day": day, "time": at}}))



def test_the_help_names_every_queue_and_every_schedule(worker_context, hub_config):
    """`worker --help` and `scheduler --help` are made from the queues and the schedules that
    the worker serves and the scheduler registers (with a poller on, all of them)."""
    context = reinstall(worker_context, {"connectors": {"soundcloud": {"client_id": "client"}}})
    registered = {job.name for job in make_scheduler(context).get_jobs()}
    assert registered == {schedule.name for schedule in SCHEDULES}
    commands = next(action for action in build_parser()._actions
                    if action.dest == "command").choices
    worker_help, scheduler_help = (commands[name].description for name in ("worker",
                                                                            "scheduler"))
    assert all(name in worker_help for name in QUEUES)
    assert all(schedule.what in scheduler_help for schedule in SCHEDULES)

