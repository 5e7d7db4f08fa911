"""Helpers for tests of the web pages: read a form's CSRF token, sign up, log in, post forms."""

from __future__ import annotations

import re
from typing import Any

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"


async def csrf_token(client: Any, path: str = "/login") -> str:
    page = await client.get(path)
    match = CSRF.search(await page.text())
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def post_form(client: Any, path: str, data: dict[str, Any], *, token_from: str = "/login",
                    follow: bool = False) -> Any:
    """Post `data` as a form with this session's CSRF token; redirects are not followed unless
    `follow`, so a test sees where the page sends the browser."""
    form = {"csrf_token": await csrf_token(client, token_from), **data}
    return await client.post(path, data=form, allow_redirects=follow)


async def sign_up(client: Any, name: str, password: str = PASSWORD, email: str = "") -> Any:
    reply = await post_form(client, "/signup", {"name": name, "password": password,
                                                "email": email}, token_from="/signup")
    assert reply.status == 303, await reply.text()
    return reply


async def log_in(client: Any, name: str, password: str = PASSWORD) -> Any:
    return await post_form(client, "/login", {"name": name, "password": password})
