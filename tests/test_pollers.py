"""Poller jobs: the scheduler hands out due accounts in small batches within each platform's
pace, leases them, and a real RQ worker polls them; the likes reach the ledger through the
inbox and the `events` queue, as webhook deliveries do."""

from datetime import timedelta

from rq import Queue
from sqlalchemy import func, select, update

from base.tables.connectors import poll_accounts
from base.vault import vault
from ledger import accounts, identities
from ledger.schema import flattrs
from ledger.schema import identities as identities_table
from ledger.sql import utcnow
from members.linking import link_account
from tests.fakes.platforms import FakeSoundCloud, FakeX, track, tweet
from tests.fakes.server import serve
from tests.hub_helpers import reinstall
from workers import pollers
from workers.schedule import make_scheduler
from workers.worker import run_worker

pytest_plugins = ["tests.hub_fixtures"]


def make_accounts(engine, config, platform: str, count: int, token: str = "t{n}") -> list[int]:
    ids = []
    with engine.begin() as conn:
        for n in range(count):
            uid = accounts.create_user(conn, f"u{n}")
            accounts.set_budget(conn, uid, 500, config.money)
            accounts.credit_funds(conn, uid, 2000, "test", f"test:u{n}")
            ids.append(link_account(conn, uid, platform, f"{n}", vault=vault(config),
                                    access_token=token.format(n=n)))
        conn.execute(update(poll_accounts).values(next_poll_at=utcnow() - timedelta(seconds=1)))
    return ids


def test_nothing_is_scheduled_while_no_poller_is_configured(worker_context, engine, redis):
    assert pollers.enabled_platforms(worker_context.config) == []
    assert pollers.schedule_polls() == {}
    assert "pollers" not in {job.name for job in make_scheduler(worker_context).get_jobs()}


def test_due_accounts_are_leased_and_batched_within_the_platform_pace(
        worker_context, engine, redis, hub_config):
    worker_context = reinstall(worker_context, {
        "connectors.soundcloud": dict(client_id="cid", requests_per_minute=5),
        "pollers": dict(tick_seconds=60, batch=2)})
    hub_config = worker_context.config
    make_accounts(engine, hub_config, "soundcloud", 7)
    assert "pollers" in {job.name for job in make_scheduler(worker_context).get_jobs()}
    assert pollers.schedule_polls() == {"soundcloud": 5}  # 5 requests per minute, 60 s tick
    jobs = Queue("connectors", connection=redis).jobs
    assert [len(job.args[1]) for job in jobs] == [2, 2, 1]
    assert all(job.args[0] == "soundcloud" and all(isinstance(i, int) for i in job.args[1])
               for job in jobs)  # ids only: tokens never go into Redis
    assert pollers.schedule_polls() == {"soundcloud": 2}  # the leased ones are not taken again
    assert pollers.schedule_polls() == {}


def test_pages_beyond_the_first_are_paid_from_the_next_ticks(worker_context, engine, redis):
    fake = FakeSoundCloud(page_size=1)
    with serve(fake.app()) as url:
        worker_context = reinstall(worker_context, {
            "connectors.soundcloud": dict(client_id="cid", client_secret="cs", api_base=url,
                                          requests_per_minute=5),
            "pollers": dict(tick_seconds=60, batch=20)})
        config = worker_context.config
        reader, *others = make_accounts(engine, config, "soundcloud", 13)
        fake.add_user("0", "t0", likes=[track(n, 4242) for n in range(9)])
        for n in range(1, 13):
            fake.add_user(str(n), f"t{n}", likes=[track(100 + n, 4242)])
        assert pollers.poll_batch("soundcloud", [reader])["requests"] == 5  # max_pages 5
        with engine.begin() as conn:
            conn.execute(update(poll_accounts).where(poll_accounts.c.id == reader)
                         .values(next_poll_at=utcnow() + timedelta(hours=1)))
        # 4 pages beyond the first are owed: this tick hands out 1 account, not 5
        assert pollers.schedule_polls() == {"soundcloud": 1}
        assert pollers.schedule_polls() == {"soundcloud": 5}
        assert pollers.poll_batch("soundcloud", others[:6]) == {
            "baseline": 6, "likes": 0, "unlikes": 0, "requests": 6}  # one page each: no debt
        assert pollers.schedule_polls() == {"soundcloud": 5}
    assert fake.stats["requests"] == 11


def test_first_polls_of_new_accounts_are_spread_over_one_interval(engine, config):
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "a")
        now = utcnow()
        for n in range(200):
            link_account(conn, uid if n == 0 else accounts.create_user(conn, f"a{n}"),
                         "x", str(n), vault=vault(config), access_token="t",
                         poll_seconds=900, now=now)
        times = conn.execute(select(poll_accounts.c.next_poll_at)).scalars().all()
    offsets = sorted((t - now).total_seconds() for t in times)
    assert 0 <= offsets[0] < 60 and 840 < offsets[-1] <= 900
    assert 60 < offsets[100] < 840


def test_polled_likes_reach_the_ledger_through_the_queue(worker_context, engine, redis,
                                                         hub_config):
    fake_x, fake_sc = FakeX(page_size=100), FakeSoundCloud(page_size=50)
    with serve(fake_x.app()) as x_url, serve(fake_sc.app()) as sc_url:
        worker_context = reinstall(worker_context, {
            "connectors.x": dict(client_id="cid", client_secret="cs", api_base=x_url),
            "connectors.soundcloud": dict(client_id="cid", client_secret="cs", api_base=sc_url,
                                          token_url=sc_url + "/oauth/token")})
        hub_config = worker_context.config
        x_ids = make_accounts(engine, hub_config, "x", 3)
        with engine.begin() as conn:
            creator = accounts.create_user(conn, "creator")
            identities.link(conn, creator, "x", "4242", claim=True)
            identities.link(conn, creator, "soundcloud", "soundcloud:users:4242", claim=True)
            sc_user = accounts.create_user(conn, "listener")
            accounts.set_budget(conn, sc_user, 500, hub_config.money)
            sc_id = link_account(conn, sc_user, "soundcloud", "soundcloud:users:1",
                                 vault=vault(hub_config), access_token="sc")
            conn.execute(update(poll_accounts).values(next_poll_at=utcnow()))
        for n in range(3):
            fake_x.add_user(str(n), f"t{n}", likes=[tweet(100, "4242")])
        fake_sc.add_user("soundcloud:users:1", "sc", likes=[track(5, 4242)])

        assert pollers.schedule_polls() == {"x": 3, "soundcloud": 1}
        run_worker(worker_context, burst=True)  # baseline polls
        for n in range(3):
            fake_x.likes[str(n)].insert(0, tweet(n, "4242"))
        fake_sc.likes["soundcloud:users:1"].insert(0, track(6, 4242))
        with engine.begin() as conn:
            conn.execute(update(poll_accounts).values(next_poll_at=utcnow()))
        assert pollers.schedule_polls() == {"x": 3, "soundcloud": 1}
        run_worker(worker_context, burst=True)  # polls, then drains the inbox
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(flattrs)).scalar_one() == 4
        rows = conn.execute(select(poll_accounts.c.id, poll_accounts.c.baseline_done,
                                   poll_accounts.c.window_requests)).all()
    assert {r.id for r in rows} == {*x_ids, sc_id} and all(r.baseline_done for r in rows)
    assert fake_x.stats["requests"] == 6 and fake_sc.stats["requests"] == 2


# --- the command line -----------------------------------------------------------------------

def run_cli(monkeypatch, capsys, db_url, tmp_path, *argv: str, env: dict | None = None,
            stdin: str = "") -> tuple[int, str, str]:
    import io
    import os

    from flattr_hub.cli import main

    for name in list(os.environ):
        if name.startswith("FLATTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLATTR_DATABASE_URL", db_url)
    monkeypatch.setenv("FLATTR_DATA_DIR", str(tmp_path / "var"))
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_links_accounts_without_showing_tokens(monkeypatch, capsys, db_url, tmp_path,
                                                   engine, config):
    with engine.begin() as conn:
        accounts.create_user(conn, "ana")
    code, out, _ = run_cli(monkeypatch, capsys, db_url, tmp_path, "connectors", "link", "ana",
                           "soundcloud", "soundcloud:users:5",
                           env={"FLATTR_LINK_ACCESS_TOKEN": "secret-access",
                                "FLATTR_LINK_REFRESH_TOKEN": "secret-refresh"})
    assert code == 0 and "secret" not in out
    code, out, _ = run_cli(monkeypatch, capsys, db_url, tmp_path, "connectors", "link", "ana",
                           "mastodon", "ana@mastodon.example", "--remote-id", "7",
                           stdin="piped-token\n")
    assert code == 0 and "piped" not in out
    code, out, _ = run_cli(monkeypatch, capsys, db_url, tmp_path, "connectors", "accounts")
    assert code == 0 and "secret" not in out and "piped" not in out
    assert "soundcloud:users:5\tactive" in out and "ana@mastodon.example\tactive" in out
    with engine.connect() as conn:
        rows = conn.execute(select(poll_accounts.c.platform, poll_accounts.c.instance,
                                   poll_accounts.c.access_token, poll_accounts.c.refresh_token)
                            .order_by(poll_accounts.c.id)).all()
        linked = conn.execute(select(func.count()).select_from(identities_table).where(
            identities_table.c.claimed_by.is_not(None))).scalar_one()
    opened = [(platform, instance, vault(config).open(access),
               refresh and vault(config).open(refresh))
              for platform, instance, access, refresh in rows]
    assert opened == [("soundcloud", "", "secret-access", "secret-refresh"),
                      ("mastodon", "https://mastodon.example", "piped-token", None)]
    assert not {"secret-access", "secret-refresh", "piped-token"} & {*rows[0], *rows[1]}
    assert linked == 2


def test_cli_refuses_what_is_not_configured(monkeypatch, capsys, db_url, tmp_path):
    for argv in (["discord-bot"], ["discord", "register-commands"],
                 ["connectors", "link", "nobody", "x", "1"]):
        code, out, err = run_cli(monkeypatch, capsys, db_url, tmp_path, *argv,
                                 env={"FLATTR_LINK_ACCESS_TOKEN": "t"})
        assert code == 2 and out == "" and err.count("\n") == 1, argv


def test_cli_sets_a_guilds_emoji(monkeypatch, capsys, db_url, tmp_path, engine):
    from connectors.discord import guild_emoji

    code, out, _ = run_cli(monkeypatch, capsys, db_url, tmp_path, "discord", "emoji", "42",
                           "🎉", "flattr")
    assert (code, out) == (0, "guild 42 counts 🎉 flattr\n")
    with engine.connect() as conn:
        assert guild_emoji(conn, 42, ["💸"]) == ["🎉", "flattr"]
        assert guild_emoji(conn, 43, ["💸"]) == ["💸"]
