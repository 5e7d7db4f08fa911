"""The `flattr-hub` command line, in-process through `flattr_hub.cli.main` and once as a real
subprocess: help everywhere, one-line errors that change nothing, JSON and CSV output, the
self-check, and importing normalised events."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from base.tables.members import logins
from base.tables.notifications import notification_outbox
from flattr_hub.cli import COMMANDS, build_parser, command_of, main
from ledger.months import add_months, month_of
from ledger.schema import events, flattrs, things
from ledger.sql import utcnow
from members.logins import sign_up
from tests.ledger_checks import dump, problems
from tests.ledger_helpers import feed, make_user, star

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
JUNE = "2026-06"


def expected_shares(amount: int, count: int) -> list[int]:
    return [amount // count + (1 if i < amount % count else 0) for i in range(count)]


@pytest.fixture
def cli_env(db_url, tmp_path, monkeypatch):
    """Run commands against the test database, in an empty folder, with no stray config."""
    for name in list(os.environ):
        if name.startswith("FLATTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLATTR_DATABASE_URL", db_url)
    monkeypatch.setenv("FLATTR_DATA_DIR", str(tmp_path / "var"))
    return {"FLATTR_DATABASE_URL": db_url, "FLATTR_DATA_DIR": str(tmp_path / "var")}


@pytest.fixture
def cli(cli_env, capsys):
    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err
    return run


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert (code, err) == (0, ""), err
    return out


def one_line_error(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 2, (code, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("flattr-hub"), err
    return err


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from command_paths(sub, (*prefix, name))


def test_every_command_has_help(cli):
    paths = list(command_paths(build_parser()))
    named = {" ".join(p) for p in paths}
    assert named >= {"user create", "link", "budget set", "funds credit", "events import",
                     "settle", "balance", "statement", "ledger verify", "db upgrade"}
    for path in [(), *paths]:
        code, out, err = cli(*path, "--help")
        assert (code, err) == (0, ""), path
        assert out.startswith("usage: flattr-hub"), path
        assert " ".join(path) in out.splitlines()[0], path


def world(engine, config):
    """Ana gives (GitHub 1, linked), Bo receives (GitHub 2, claimed); June has flattrs."""
    from tests.ledger_helpers import feed, star

    ana = make_user(engine, config, "ana", budget=500, funds=2000, github="1", claim=False)
    bo = make_user(engine, config, "bo", budget=200, funds=300, github="2")
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r2", "2", "2026-06-04T10:00:00"))
    return ana, bo


def bad_inputs() -> list[tuple[str, list[str]]]:
    this_month = month_of(utcnow())
    return [
        ("negative amount", ["funds", "credit", "ana", "-5", "--reason", "x"]),
        ("zero amount", ["funds", "credit", "ana", "0", "--reason", "x"]),
        ("fractional amount", ["funds", "credit", "ana", "12.5", "--reason", "x"]),
        ("no reason", ["funds", "credit", "ana", "100"]),
        ("negative budget", ["budget", "set", "ana", "-200"]),
        ("budget below minimum", ["budget", "set", "ana", "199"]),
        ("budget above maximum", ["budget", "set", "ana", "50001"]),
        ("unknown user credit", ["funds", "credit", "nobody", "100", "--reason", "x"]),
        ("unknown user balance", ["balance", "nobody", "--json"]),
        ("unknown user budget", ["budget", "set", "nobody", "300"]),
        ("unknown user link", ["link", "nobody", "github", "5"]),
        ("unknown user statement", ["statement", "nobody", JUNE]),
        ("bad month", ["settle", "2026-13"]),
        ("bad month form", ["settle", "2026-6"]),
        ("bad statement month", ["statement", "ana", "June"]),
        ("month not ended", ["settle", this_month]),
        ("month far ahead", ["settle", "2099-01"]),
        ("months out of order", ["settle", add_months(JUNE, 1)]),
        ("months far out of order", ["settle", add_months(JUNE, 2)]),
        ("duplicate user", ["user", "create", "ana"]),
        ("bad user name", ["user", "create", "no spaces"]),
        ("identity of another user", ["link", "bo", "github", "1"]),
        ("idempotency key reused", ["funds", "credit", "ana", "5", "--reason", "x",
                                    "--key", "test:ana:2000"]),
        ("missing file", ["events", "import", "no-such-file.jsonl"]),
        ("unknown command", ["frobnicate"]),
        ("missing action", ["user"]),
    ]


@pytest.mark.parametrize(("case", "argv"), bad_inputs(), ids=[c for c, _ in bad_inputs()])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(cli, engine, config, case, argv):
    world(engine, config)
    before = dump(engine)
    one_line_error(cli(*argv))
    assert dump(engine) == before
    assert problems(engine) == []


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def event(event_id: str, actor: str, content: str, owner: str, when: str,
          kind: str = "like") -> dict:
    return {"event_id": event_id, "platform": "github", "kind": kind, "actor_id": actor,
            "content_id": content, "owner_id": owner, "occurred_at": when}


@pytest.mark.parametrize("bad_line", [
    "{not json",
    json.dumps({"event_id": "x", "platform": "github", "kind": "like"}),
    json.dumps(event("x", "1", "r9", "2", "2026-06-09T10:00:00")).replace('Z"', '"'),
    json.dumps({**event("x", "1", "r9", "2", "2026-06-09T10:00:00Z"), "kind": "love"}),
    "[1, 2]",
])
def test_events_import_with_a_malformed_line_imports_nothing(cli, engine, config, tmp_path,
                                                             bad_line):
    world(engine, config)
    before = dump(engine)
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(event("a", "1", "r5", "2", "2026-06-05T10:00:00Z"),
                          event("b", "1", "r6", "2", "2026-06-06T10:00:00Z"))
                    + bad_line + "\n"
                    + jsonl(event("c", "1", "r7", "2", "2026-06-07T10:00:00Z")))
    err = one_line_error(cli("events", "import", str(path)))
    assert "line 3" in err
    assert dump(engine) == before


def test_balance_json(cli, engine, config):
    ok(cli("user", "create", "ana"))
    assert json.loads(ok(cli("balance", "ana", "--json"))) == {"funds": 0, "revenue": 0}
    ok(cli("funds", "credit", "ana", "700", "--reason", "bank transfer"))
    out = ok(cli("balance", "ana", "--json"))
    held = json.loads(out)
    assert held == {"funds": 700, "revenue": 0}
    assert all(type(v) is int for v in held.values())
    assert out.count("\n") == 1


def test_funds_credit_is_idempotent_per_key(cli, engine, config):
    ok(cli("user", "create", "ana"))
    ok(cli("funds", "credit", "ana", "700", "--reason", "wire", "--key", "wire-1"))
    before = dump(engine)
    assert "already" in ok(cli("funds", "credit", "ana", "700", "--reason", "wire",
                               "--key", "wire-1"))
    assert dump(engine) == before
    assert json.loads(ok(cli("balance", "ana", "--json")))["funds"] == 700


def worked_example_june(cli, tmp_path) -> None:
    """The spec's worked example for June, entirely through the command line."""
    for name in ("ana", "bo"):
        ok(cli("user", "create", name))
    ok(cli("link", "ana", "github", "1"))
    ok(cli("link", "bo", "github", "2", "--claim"))
    ok(cli("budget", "set", "ana", "500"))
    ok(cli("budget", "set", "bo", "200"))
    ok(cli("funds", "credit", "ana", "2000", "--reason", "card"))
    ok(cli("funds", "credit", "bo", "300", "--reason", "card"))
    path = tmp_path / "june.jsonl"
    path.write_text(jsonl(
        event("e1", "1", "r1", "2", "2026-06-03T10:00:00Z"),
        event("e2", "1", "r2", "2", "2026-06-04T10:00:00Z"),
        event("e3", "1", "r3", "3", "2026-06-05T10:00:00Z"),
        event("e4", "1", "r4", "2", "2026-06-06T10:00:00+02:00"),
        event("e5", "1", "r1", "2", "2026-06-09T10:00:00Z"),
        event("e6", "9", "r1", "2", "2026-06-09T11:00:00Z"),  # nobody linked GitHub 9
    ))
    out = ok(cli("events", "import", str(path)))
    assert out.startswith("imported 6 events")
    for outcome, count in (("flattred", 3), ("pledge", 1), ("already", 1),
                           ("unknown_actor", 1)):
        assert f"{outcome} {count}" in out
    out = ok(cli("settle", JUNE))
    assert "settled 2026-06" in out


def test_statement_csv_has_the_right_rows(cli, engine, config, tmp_path):
    worked_example_june(cli, tmp_path)
    rows = list(csv.DictReader(io.StringIO(ok(cli("statement", "ana", JUNE, "--csv")))))
    given = [r for r in rows if r["section"] == "given"]
    assert [(r["content_id"], r["status"]) for r in given] == [
        ("r1", "counted"), ("r2", "counted"), ("r3", "pledged"), ("r4", "counted")]
    counted = [r for r in given if r["status"] == "counted"]
    shares = expected_shares(500, 3)
    assert [int(r["share"]) for r in counted] == shares
    for r in counted:
        share, fee, net = int(r["share"]), int(r["fee"]), int(r["net"])
        assert fee == share * config.fee_bps // 10000 and net == share - fee
    assert [(r["content_id"], r["counterpart"], r["month"]) for r in rows
            if r["section"] == "pledge"] == [("r3", "3", JUNE)]
    assert [r for r in rows if r["section"] == "received"] == []

    bo_rows = list(csv.DictReader(io.StringIO(ok(cli("statement", "bo", JUNE, "--csv")))))
    received = [r for r in bo_rows if r["section"] == "received"]
    assert sorted(r["content_id"] for r in received) == ["r1", "r2", "r4"]
    assert {r["counterpart"] for r in received} == {"ana"}
    bo = json.loads(ok(cli("balance", "bo", "--json")))
    assert bo == {"funds": 300, "revenue": sum(int(r["net"]) for r in received)}
    ana = json.loads(ok(cli("balance", "ana", "--json")))
    assert ana == {"funds": 2000 - sum(shares), "revenue": 0}
    text_out = ok(cli("statement", "ana", JUNE))
    assert "settled" in text_out and "r3" in text_out
    assert ok(cli("settle", JUNE)).startswith(f"{JUNE} was already settled")
    assert ok(cli("ledger", "verify")).startswith("ledger verify: all invariants hold")


def test_ledger_verify_names_a_corrupted_balance(cli, engine, config, tmp_path):
    worked_example_june(cli, tmp_path)
    code, out, _err = cli("ledger", "verify")
    assert code == 0 and "all invariants hold" in out
    with engine.begin() as conn:
        name = conn.execute(text(
            "SELECT a.name FROM accounts a JOIN users u ON u.id = a.user_id "
            "WHERE u.name = 'bo' AND a.kind = 'revenue'")).scalar_one()
        conn.execute(text("UPDATE accounts SET balance = balance + 7 WHERE name = :n"),
                     {"n": name})
    code, out, _err = cli("ledger", "verify")
    assert code == 1
    assert name in out
    assert "balances sum to 7" in out



def test_ledger_verify_names_flattrs_of_a_giver_or_thing_that_does_not_exist(cli, engine,
                                                                              tmp_path):
    """flattrs have no foreign keys (they cost half of an ingest batch): verify checks them."""
    worked_example_june(cli, tmp_path)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO flattrs (giver_id, thing_id, month, occurred_at, source_event_id) "
            "SELECT giver_id, thing_id + 1000000, '2026-08', occurred_at, 'lost-thing' "
            "FROM flattrs LIMIT 1"))
        conn.execute(text(
            "INSERT INTO flattrs (giver_id, thing_id, month, occurred_at, source_event_id) "
            "SELECT giver_id + 1000000, thing_id, '2026-08', occurred_at, 'lost-giver' "
            "FROM flattrs WHERE source_event_id <> 'lost-thing' LIMIT 1"))
    code, out, _err = cli("ledger", "verify")
    assert code == 1
    assert "2 flattrs name a giver or thing that does not exist" in out

def github_fixture_events() -> list[dict]:
    """The GitHub star fixtures, normalised as the GitHub connector does (connectors.md):
    actor = sender id, content = repository id, owner = repository owner id."""
    created = json.loads((FIXTURES / "github-star-created.json").read_text())
    deleted = json.loads((FIXTURES / "github-star-deleted.json").read_text())
    out = []
    for delivery, body, when in (("d-created", created, created["starred_at"]),
                                 ("d-deleted", deleted, "2026-10-04T09:00:00Z")):
        out.append({
            "event_id": delivery, "platform": "github",
            "kind": "like" if body["action"] == "created" else "unlike",
            "actor_id": str(body["sender"]["id"]),
            "content_id": str(body["repository"]["id"]),
            "owner_id": str(body["repository"]["owner"]["id"]),
            "occurred_at": when,
            "url": body["repository"].get("html_url"),
            "title": body["repository"]["full_name"],
        })
    return out


def test_events_import_of_normalised_github_fixtures(cli, engine, config, tmp_path):
    created, deleted = github_fixture_events()
    ok(cli("user", "create", "pjotr"))
    ok(cli("user", "create", "maren"))
    ok(cli("link", "pjotr", "github", created["actor_id"]))
    ok(cli("link", "maren", "github", created["owner_id"], "--claim"))
    path = tmp_path / "stars.jsonl"
    path.write_text(jsonl(created))
    assert "flattred 1" in ok(cli("events", "import", str(path)))
    with engine.connect() as conn:
        thing = conn.execute(select(things)).one()
        assert (thing.content_id, thing.url, thing.title) == (
            created["content_id"], created["url"], created["title"])
        flattr = conn.execute(select(flattrs)).one()
        assert (flattr.month, flattr.retracted_at) == (month_of(flattr.occurred_at), None)
        assert flattr.occurred_at.isoformat() == created["occurred_at"].rstrip("Z")

    before = dump(engine)
    assert "duplicate 1" in ok(cli("events", "import", str(path)))  # a redelivery
    assert dump(engine) == before

    path.write_text(jsonl(deleted))
    assert "unliked 1" in ok(cli("events", "import", str(path)))
    with engine.connect() as conn:
        assert conn.execute(select(flattrs.c.retracted_at)).scalar_one() is not None
        assert sorted(conn.execute(select(events.c.event_id, events.c.outcome)).all()) == [
            ("d-created", "flattred"), ("d-deleted", "unliked")]
    assert problems(engine) == []


def test_events_import_counts_late_only_the_late_likes_that_become_flattrs(cli, engine,
                                                                         tmp_path):
    """A like dated in a settled month is late; one that turns out `already` (the giver has
    flattred the thing in the open month) or `retracted` (by an unlike in the same file or
    recorded earlier) is no flattr, so the summary does not count it late, nor flattred."""
    worked_example_june(cli, tmp_path)

    def imported(*rows: dict) -> str:
        path = tmp_path / "late.jsonl"
        path.write_text(jsonl(*rows))
        return ok(cli("events", "import", str(path)))

    assert imported(event("a1", "1", "r1", "2", "2026-06-20T10:00:00Z")) == (
        "imported 1 events: flattred 1, late 1\n")
    assert imported(event("b1", "1", "r5", "2", "2026-07-04T10:00:00Z")) == (
        "imported 1 events: flattred 1\n")
    assert imported(event("b2", "1", "r5", "2", "2026-06-28T10:00:00Z")) == (
        "imported 1 events: already 1\n")
    assert imported(event("c1", "1", "r6", "2", "2026-06-20T10:00:00Z"),
                    event("c2", "1", "r6", "2", "2026-07-02T10:00:00Z", kind="unlike")) == (
        "imported 2 events: nothing_to_unlike 1, retracted 1\n")
    assert imported(event("d1", "1", "r7", "2", "2026-07-02T10:00:00Z", kind="unlike")) == (
        "imported 1 events: nothing_to_unlike 1\n")
    assert imported(event("d2", "1", "r7", "2", "2026-06-20T10:00:00Z")) == (
        "imported 1 events: retracted 1\n")
    with engine.connect() as conn:
        late = conn.execute(
            select(things.c.content_id).join(flattrs, flattrs.c.thing_id == things.c.id)
            .where(flattrs.c.late, flattrs.c.retracted_at.is_(None))).scalars().all()
    assert sorted(late) == ["r1", "r5"]
    assert problems(engine) == []


def test_as_a_subprocess(cli_env, engine, config, tmp_path, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the subprocess case runs once, on SQLite; in-process tests cover "
                    "PostgreSQL")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}, **cli_env,
           "PYTHONPATH": str(REPO)}

    def flattr_hub(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flattr_hub.cli", *argv], input=stdin,
                              capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=60, check=False)

    done = flattr_hub("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: flattr-hub")
    ana = make_user(engine, config, "ana", budget=500, funds=1000, github="1", claim=False)
    make_user(engine, config, "bo", budget=200, funds=300, github="2")
    before = dump(engine)
    done = flattr_hub("funds", "credit", "ana", "-5", "--reason", "x")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "amount" in done.stderr
    assert dump(engine) == before

    done = flattr_hub("events", "import", "-",
                      stdin=jsonl(event("s1", "1", "r1", "2", "2026-06-03T10:00:00Z")))
    assert done.returncode == 0 and "flattred 1" in done.stdout, done.stderr
    with engine.connect() as conn:
        assert conn.execute(select(flattrs.c.giver_id, flattrs.c.month)).all() == [
            (ana, JUNE)]
    done = flattr_hub("balance", "bo", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == {"funds": 300, "revenue": 0}


def test_claiming_from_the_command_line_tells_the_givers_once(cli, engine):
    """`link --claim` of an identity with a giver (who has a verified e-mail address) records
    one "someone you pledged to joined" notice; claiming it again records nothing more."""
    with engine.begin() as conn:
        uid = sign_up(conn, "ana", "a long enough password", "ana@example.org")
        conn.execute(update(logins).where(logins.c.user_id == uid)
                     .values(email_verified_at=utcnow()))
    ok(cli("user", "create", "cy"))
    ok(cli("link", "ana", "github", "ana-gh"))
    feed(engine, star("ana-gh", "cy/song", "cy-gh", "2026-11-02T10:00:00"))
    ok(cli("link", "cy", "github", "cy-gh", "--claim"))
    ok(cli("link", "cy", "github", "cy-gh", "--claim"))
    with engine.connect() as conn:
        notices = conn.execute(select(notification_outbox.c.kind)).scalars().all()
    assert notices == ["pledgee_joined"]


def test_linking_a_polled_account_from_the_command_line_tells_the_givers(cli, engine,
                                                                          monkeypatch):
    """`connectors link` claims the account like the web's OAuth link does, so the givers whose
    flattrs of its things wait are told, once; an account another member claimed is refused
    and changes nothing."""
    with engine.begin() as conn:
        uid = sign_up(conn, "ana", "a long enough password", "ana@example.org")
        conn.execute(update(logins).where(logins.c.user_id == uid)
                     .values(email_verified_at=utcnow()))
    ok(cli("user", "create", "cy"))
    ok(cli("user", "create", "dee"))
    ok(cli("link", "ana", "soundcloud", "soundcloud:users:1"))
    feed(engine, star("soundcloud:users:1", "soundcloud:tracks:9", "soundcloud:users:5",
                      "2026-11-02T10:00:00", platform="soundcloud"))
    monkeypatch.setenv("FLATTR_LINK_ACCESS_TOKEN", "access-token")
    ok(cli("connectors", "link", "cy", "soundcloud", "soundcloud:users:5"))
    ok(cli("connectors", "link", "cy", "soundcloud", "soundcloud:users:5"))
    one_line_error(cli("connectors", "link", "dee", "soundcloud", "soundcloud:users:5"))
    with engine.connect() as conn:
        notices = conn.execute(select(notification_outbox.c.kind,
                                      notification_outbox.c.user_id)).all()
    assert [(kind, user) for kind, user in notices] == [("pledgee_joined", uid)]


def test_every_command_is_registered_by_the_module_commands_names():
    """COMMANDS sends each top-level command to the module that registers it (a command missing
    from it would only work when every module is loaded)."""
    for module in set(COMMANDS.values()):
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        import_module(module).register(subparsers)
        for name in subparsers.choices:
            assert COMMANDS.get(name) == module, name
    everything = build_parser()._subparsers._group_actions[0].choices
    assert set(everything) == set(COMMANDS)
    assert command_of(["--config", "x.yaml", "balance", "ana"]) == "balance"
    assert command_of(["--config=x.yaml", "settle", "2026-06"]) == "settle"
    assert command_of(["--help"]) is None


def test_a_ledger_command_loads_neither_the_hub_nor_the_connectors(cli_env):
    probe = ("import sys\nfrom flattr_hub.cli import main\nmain(['balance', 'nobody'])\n"
             "print(sorted(m for m in ('aiohttp', 'tweepy', 'discord', 'mastodon', 'hub.app')"
             " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, **cli_env}, timeout=60, cwd=REPO)
    assert "no user named nobody" in done.stderr
    assert done.stdout.strip() == "[]"
