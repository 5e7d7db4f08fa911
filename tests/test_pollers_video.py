"""The video pollers through the scheduler and a real RQ worker: Vimeo, Dailymotion and YouTube
configured by their config sections (api_base at local fakes), due accounts handed out within
each platform's pace, likes and unlikes taking the inbox → `events` queue → ledger path."""

from sqlalchemy import func, select, update

from base.tables.connectors import poll_accounts
from base.vault import vault
from ledger import accounts
from ledger.schema import flattrs
from ledger.sql import utcnow
from members import linking
from tests.fakes.server import serve
from tests.fakes.video_platforms import (
    FakeDailymotion,
    FakeVimeo,
    FakeYouTube,
    dailymotion_video,
    vimeo_video,
    youtube_video,
)
from tests.hub_helpers import reinstall
from workers import pollers
from workers.worker import run_worker

pytest_plugins = ["tests.hub_fixtures"]

# platform → (the liker's identity, the creator's identity, a liked video of the creator)
PEOPLE = {
    "vimeo": ("4711", "152184", lambda n: vimeo_video(n, 152184)),
    "dailymotion": ("x9me001", "x2lefik", lambda n: dailymotion_video(n, "x2lefik")),
    "youtube": ("UCmeMEmeMEmeMEmeMEmeMEme", "UC_x5XG1OV2P6uZZ5FSM9Ttw",
                lambda n: youtube_video(n, "UC_x5XG1OV2P6uZZ5FSM9Ttw")),
}


def flattr_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(flattrs).where(
            flattrs.c.retracted_at.is_(None))).scalar_one()


def due_now(engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(poll_accounts).values(next_poll_at=utcnow()))


def test_likes_and_unlikes_of_all_three_reach_the_ledger_through_the_queue(
        worker_context, engine, redis, hub_config):
    fakes = {"vimeo": FakeVimeo(page_size=100), "dailymotion": FakeDailymotion(page_size=100),
             "youtube": FakeYouTube(page_size=50)}
    with serve(fakes["vimeo"].app()) as vimeo_url, \
            serve(fakes["dailymotion"].app()) as dm_url, serve(fakes["youtube"].app()) as yt_url:
        worker_context = reinstall(worker_context, {
            f"connectors.{platform}": {"client_id": "cid", "client_secret": "cs", "api_base": url}
            for platform, url in (("vimeo", vimeo_url), ("dailymotion", dm_url),
                                  ("youtube", yt_url))})
        hub_config = worker_context.config
        assert set(pollers.enabled_platforms(hub_config)) >= set(PEOPLE)
        with engine.begin() as conn:
            for platform, (me, creator, video) in PEOPLE.items():
                giver = accounts.create_user(conn, f"giver-{platform}")
                accounts.set_budget(conn, giver, 500, hub_config.money)
                maker = accounts.create_user(conn, f"maker-{platform}")
                linking.link_account(conn, maker, platform, creator,
                                     vault=vault(hub_config), access_token=f"{platform}-maker")
                fakes[platform].add_user(creator, f"{platform}-maker")
                linking.link_account(conn, giver, platform, me, vault=vault(hub_config),
                                     access_token=f"{platform}-token")
                fakes[platform].add_user(me, f"{platform}-token", likes=[video(1)])
        due_now(engine)
        assert pollers.schedule_polls() == {"vimeo": 2, "dailymotion": 2, "youtube": 2}
        run_worker(worker_context, burst=True)  # baselines (the creators like nothing)
        for platform, (me, _creator, video) in PEOPLE.items():
            fakes[platform].likes[me].insert(0, video(2))
        due_now(engine)
        pollers.schedule_polls()
        run_worker(worker_context, burst=True)  # polls, then drains the inbox
        assert flattr_count(engine) == 3
        for platform, (me, _creator, _video) in PEOPLE.items():
            fakes[platform].likes[me].pop(0)
        due_now(engine)
        pollers.schedule_polls()
        run_worker(worker_context, burst=True)
    assert flattr_count(engine) == 0
    assert fakes["youtube"].used_units == 6  # three polls of two accounts, one page each
