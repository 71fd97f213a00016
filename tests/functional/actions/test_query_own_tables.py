"""`run_query` never reads Tickwork's own tables, whatever TICKWORK_QUERY_TABLES
says: they hold every project's args, results, logs and token hashes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.actions.partiql import QueryRefused
from chalicelib.actions.query import RunQueryArgs, run_query
from chalicelib.settings import TABLES, Settings
from tests.conftest import FakeClock
from tests.functional.action_helpers import action_context


@pytest.mark.parametrize("logical", TABLES)
def test_the_stages_own_tables_are_refused_even_when_allowed(
    settings: Settings, clock: FakeClock, logical: str
) -> None:
    own = settings.table_name(logical)
    allowing = replace(settings, query_tables=(own, "tickwork-prod-tokens"))
    for statement in (f'SELECT * FROM "{own}"', f'SELECT * FROM "{own}"."by_project"'):
        with pytest.raises(QueryRefused, match="one of Tickwork's own tables"):
            run_query(
                action_context(allowing, clock),
                RunQueryArgs.model_validate({"statement": statement}),
            )
    with pytest.raises(QueryRefused, match="one of Tickwork's own tables"):
        run_query(
            action_context(allowing, clock),
            RunQueryArgs.model_validate({"statement": 'SELECT * FROM "tickwork-prod-tokens"'}),
        )


def test_only_tickwork_names_count_as_its_own() -> None:
    assert Settings.is_own_table("tickwork-dev-jobs")
    assert Settings.is_own_table("tickwork-t1n2-uniques")
    for name in ("reports", "tickwork-jobs", "tickwork-dev-jobs-archive", "acme-dev-jobs"):
        assert not Settings.is_own_table(name), name
