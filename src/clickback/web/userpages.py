"""Users on the pages: a manager's list of users (and a form adding one), one user's page (zone,
deactivate or activate, a new password, API keys made or revoked, their history), and everyone's
own page (/account: their password and their own API keys). Every change is a use case of
service/accounts.py, the one `clickback user …` and /api/users call, recorded in the audit log
under the person who made it. A password or key made here is shown once, in the reply to the form
that made it: only its hash is kept."""

from typing import Any

from starlette.responses import RedirectResponse, Response

from clickback.core.accounts import MAX_PASSWORD_LEN, Role
from clickback.core.audit import Kind, actor_of
from clickback.core.digits import id_of
from clickback.service.accounts import AccountError
from clickback.store import admin
from clickback.web.login import person_ip
from clickback.web.outboundpages import history
from clickback.web.pages import EXPIRED, Viewer, csrf_form, render, shown_name

ROLES = tuple(r.value for r in Role)


def _tenant(v: Viewer, user: dict[str, Any]) -> str:
    if user["affiliate_id"] is not None:
        return shown_name(v, "affiliate", user["affiliate_id"])
    if user["advertiser_id"] is not None:
        return shown_name(v, "advertiser", user["advertiser_id"])
    return ""


# --- a manager's users -----------------------------------------------------------------------------


async def users(v: Viewer) -> Response:
    """/users: every user; POST adds one (a generated password shown once unless one is given)."""
    problems: list[str] = []
    status = 200
    given: dict[str, str] = {}
    created: dict[str, Any] | None = None
    if v.request.method == "POST":
        form = await csrf_form(v)
        if form is None:
            problems, status = [EXPIRED], 403
        else:
            given = {k: form.get(k, "")[:300] for k in ("login", "role", "tenant", "zone")}
            try:
                created = await _add(v, form)
            except (AccountError, admin.NotFound) as exc:
                problems, status = [f"{exc}."], 400
            if created is not None:
                given = {}
    rows = [u | {"tenant": _tenant(v, u)} for u in await v.runtime.accounts.users()]
    return render(
        v,
        "users.html",
        status,
        title="Users",
        problems=problems,
        rows=rows,
        given=given,
        created=created,
        roles=ROLES,
        affiliates=[(i, shown_name(v, "affiliate", i)) for i in sorted(v.catalog.affiliates)],
        advertisers=[(i, shown_name(v, "advertiser", i)) for i in sorted(v.catalog.advertisers)],
    )


async def _add(v: Viewer, form: dict[str, str]) -> dict[str, Any]:
    """The user the form asks for, with the password generated for them (None if one was given);
    AccountError or NotFound say what is wrong."""
    try:
        role = Role(form.get("role", ""))
    except ValueError:
        raise AccountError(f"role: one of {', '.join(ROLES)}") from None
    # One tenant field: "affiliate:3" or "advertiser:2" (the form's list of both).
    kind, _, raw = form.get("tenant", "").partition(":")
    tenant = id_of(raw)
    if role is not Role.MANAGER and (tenant is None or kind != role.value):
        raise AccountError(f"tenant: choose the {role.value} the user belongs to")
    password = form.get("password", "") or None
    if password is not None and len(password) > MAX_PASSWORD_LEN:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LEN} characters")
    row, generated = await v.runtime.accounts.add_user(
        form.get("login", ""),
        role,
        affiliate_id=tenant if role is Role.AFFILIATE else None,
        advertiser_id=tenant if role is Role.ADVERTISER else None,
        password=password,
        zone=form.get("zone", "").strip() or "UTC",
        by=actor_of(v.who),
    )
    return {"id": row["id"], "login": row["login"], "password": generated}


async def user(v: Viewer) -> Response:
    """/users/{user_id}: one user; POST changes them (action: zone, activate, deactivate,
    password, key, revoke)."""
    accounts = v.runtime.accounts
    user_id = id_of(v.request.path_params["user_id"])
    if user_id is None:
        raise admin.NotFound(f"user {v.request.path_params['user_id'][:20]} does not exist")
    await accounts.user(user_id)  # NotFound: the page's 404
    problems: list[str] = []
    status = 200
    secret: dict[str, str] = {}
    if v.request.method == "POST":
        form = await csrf_form(v)
        if form is None:
            problems, status = [EXPIRED], 403
        else:
            try:
                done = await _change(v, user_id, form)
            except AccountError as exc:
                problems, status = [f"{exc}."], 400
            else:
                if done is None:
                    return RedirectResponse(f"/users/{user_id}", 303)
                secret = done
    found = next(u for u in await accounts.users() if u["id"] == user_id)
    return render(
        v,
        "user.html",
        status,
        title=f"User {found['login']}",
        problems=problems,
        u=found | {"tenant": _tenant(v, found)},
        keys=await accounts.keys(user_id),
        secret=secret,
        mine=user_id == v.who.user_id,
        history=await history(v, Kind.USER, user_id),
    )


async def _change(v: Viewer, user_id: int, form: dict[str, str]) -> dict[str, str] | None:
    """The change asked for; a password or key made, to show once (None: nothing to show)."""
    accounts, by = v.runtime.accounts, actor_of(v.who)
    action = form.get("action", "")
    if action == "zone":
        await accounts.set_zone(user_id, form.get("zone", "").strip()[:100], by)
    elif action in ("activate", "deactivate"):
        await accounts.set_active(user_id, action == "activate", by)
    elif action == "password":
        given = form.get("password", "") or None
        if given is not None and len(given) > MAX_PASSWORD_LEN:
            raise AccountError(f"a password has at most {MAX_PASSWORD_LEN} characters")
        generated = await accounts.new_password(user_id, given, by)
        return {"password": generated} if generated else None
    elif action == "key":
        return {"key": await accounts.new_key(user_id, by)}
    elif action == "revoke":
        await accounts.revoke_keys(user_id, by)
    else:
        raise AccountError(f"action: '{action[:20]}' is no change of a user")
    return None


# --- everyone's own ------------------------------------------------------------------------------


async def account(v: Viewer) -> Response:
    """/account: the signed-in person's own password and API keys (a key shown once)."""
    accounts, who = v.runtime.accounts, v.who
    assert who.user_id is not None, "a session is a user's"
    problems: list[str] = []
    status = 200
    key = ""
    if v.request.method == "POST":
        form = await csrf_form(v)
        if form is None:
            problems, status = [EXPIRED], 403
        else:
            action = form.get("action", "")
            try:
                if action == "password":
                    new = form.get("new", "")
                    if new != form.get("repeat", ""):
                        raise AccountError("the new password and its repetition differ")
                    ip = person_ip(v.request, v.runtime.settings.proxy_hops)
                    await accounts.change_own_password(
                        who.user_id, form.get("current", ""), new, actor_of(who), ip
                    )
                    # Every session of theirs has ended, this one too: sign in with the new one.
                    return RedirectResponse("/login", 303)
                if action == "key":
                    key = await accounts.new_key(who.user_id, actor_of(who))
                elif action == "revoke":
                    key_id = id_of(form.get("key", ""))
                    mine = {k["id"] for k in await accounts.keys(who.user_id)}
                    if key_id not in mine:
                        raise AccountError("key: no key of yours has that number")
                    await accounts.revoke_keys(who.user_id, actor_of(who), key_id)
                    return RedirectResponse("/account", 303)
                else:
                    raise AccountError(f"action: '{action[:20]}' is none of password, key, revoke")
            except AccountError as exc:
                problems, status = [f"{exc}."], 400
    return render(
        v,
        "account.html",
        status,
        title="Your account",
        problems=problems,
        zone=who.zone,
        keys=await accounts.keys(who.user_id),
        key=key,
    )
