"""`/v1/admin/tokens` and authentication through chalice.test.Client on moto."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chalicelib.auth.service import Role, hash_secret
from chalicelib.storage.tokens import TokenStore
from chalicelib.wiring import Services
from tests.conftest import Token
from tests.functional.api.v1.test_scheduled_tasks import assert_problem
from tests.functional.conftest import Api, body

TOKENS = "/v1/admin/tokens"


@pytest.fixture
def admin(make_token: Callable[..., Token]) -> Token:
    return make_token("default", Role.ADMIN, "root")


def test_issue_shows_the_secret_once_and_stores_only_its_hash(
    api: Api, services: Services, admin: Token
) -> None:
    created = api.post(
        TOKENS, token=admin, json_body={"project_id": "acme", "role": "member", "name": "ci"}
    )
    assert created.status_code == 201
    issued = body(created)
    assert set(issued) == {"id", "token", "project_id", "role", "name", "created_at"}
    assert issued["project_id"] == "acme" and issued["role"] == "member"

    stored = TokenStore(services.tables).by_hash(hash_secret(issued["token"]))
    assert stored is not None and stored.id == issued["id"]
    assert issued["token"] not in str(stored)

    listed = body(api.get(TOKENS, token=admin))["tokens"]
    assert issued["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)

    # The new token works in its own project.
    tasks = api.get("/v1/scheduled-tasks", headers={"Authorization": f"Bearer {issued['token']}"})
    assert tasks.status_code == 200


def test_revoked_token_answers_401_at_once(api: Api, admin: Token) -> None:
    issued = body(api.post(TOKENS, token=admin, json_body={"project_id": "acme", "name": "x"}))
    headers = {"X-Auth-Token": issued["token"]}
    assert api.get("/v1/scheduled-tasks", headers=headers).status_code == 200
    assert api.delete(f"{TOKENS}/{issued['id']}", token=admin).status_code == 204
    assert_problem(api.get("/v1/scheduled-tasks", headers=headers), 401)
    assert_problem(api.delete(f"{TOKENS}/{issued['id']}", token=admin), 404)


def test_members_are_403_on_admin_routes(api: Api, make_token: Callable[..., Token]) -> None:
    member = make_token("acme", Role.MEMBER)
    assert_problem(api.get(TOKENS, token=member), 403)
    assert_problem(
        api.post(TOKENS, token=member, json_body={"project_id": "acme", "name": "x"}), 403
    )
    assert_problem(api.delete(f"{TOKENS}/tok_whatever", token=member), 403)


def test_admin_routes_need_a_token(api: Api) -> None:
    assert_problem(api.get(TOKENS), 401)


@pytest.mark.parametrize(
    ("payload", "location"),
    [
        ({"project_id": "Bad Project!", "name": "x"}, "body.project_id"),
        ({"project_id": "acme", "name": "x", "role": "root"}, "body.role"),
        ({"project_id": "acme"}, "body.name"),
    ],
)
def test_invalid_token_requests_are_422(
    api: Api, admin: Token, payload: dict[str, str], location: str
) -> None:
    assert_problem(api.post(TOKENS, token=admin, json_body=payload), 422, location)


def test_tokens_list_pages_newest_first(api: Api, admin: Token, clock: object) -> None:
    for i in range(3):
        clock.advance(1)  # type: ignore[attr-defined]
        api.post(TOKENS, token=admin, json_body={"project_id": "acme", "name": f"t{i}"})
    first = body(api.get(f"{TOKENS}?limit=2", token=admin))
    second = body(api.get(f"{TOKENS}?limit=2&cursor={first['next_cursor']}", token=admin))
    names = [t["name"] for t in first["tokens"] + second["tokens"]]
    assert names == ["t2", "t1", "t0", "root"]


def test_bootstrap_ensure_is_idempotent(services: object) -> None:
    from chalicelib.wiring import Services

    assert isinstance(services, Services)
    first = services.tokens.ensure("tw_fixed-secret", "default", Role.ADMIN, "bootstrap")
    again = services.tokens.ensure("tw_fixed-secret", "default", Role.ADMIN, "bootstrap")
    assert first.id == again.id
    assert services.tokens.authenticate("tw_fixed-secret").is_admin
