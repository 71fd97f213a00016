"""`make admin-token`: the first admin token of a deployed stage works on the API."""

from __future__ import annotations

from chalicelib.settings import Settings
from chalicelib.wiring import Services
from infra.admin_token import issue_admin_token
from tests.functional.conftest import Api, body


def test_the_issued_token_is_an_admin_of_its_project(
    settings: Settings, services: Services, api: Api
) -> None:
    secret = issue_admin_token(settings, "ops", "operator")

    me = api.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200, body(me)
    assert body(me)["project_id"] == "ops" and body(me)["role"] == "admin"
    # An admin: it may issue the project's other tokens.
    issued = api.post(
        "/v1/admin/tokens",
        headers={"Authorization": f"Bearer {secret}"},
        json_body={"project_id": "ops", "role": "member", "name": "ci"},
    )
    assert issued.status_code == 201, body(issued)
