"""`bind_tables`: each stage's models are its own subclasses, made once per
binding; the module's model classes are never rebound."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pynamodb.exceptions import DoesNotExist

from chalicelib.settings import Settings
from chalicelib.storage.binding import bind_tables
from chalicelib.storage.tables import MODELS

BLUE = Settings(stage="blue", aws_endpoint_url="http://127.0.0.1:1", aws_max_connections=20)
GREEN = Settings(stage="green", region="eu-west-1")


def test_each_stage_s_models_name_its_tables_and_endpoint() -> None:
    for settings in (BLUE, GREEN):
        tables = bind_tables(settings)
        assert [model.__bases__ for model in tables.models] == [(model,) for model in MODELS]
        for model in tables.models:
            meta = model.Meta
            assert meta.table_name == settings.table_name(meta.logical_name)  # type: ignore[attr-defined]
            assert (meta.region, meta.host) == (settings.region, settings.aws_endpoint_url)
            assert meta.max_pool_connections == settings.aws_max_connections
            # Every model's calls, and the transactions, go through one connection.
            assert model._get_connection().connection is tables.connection


def test_a_stage_is_bound_once_and_two_stages_apart() -> None:
    assert bind_tables(BLUE) is bind_tables(replace(BLUE))
    blue, green = bind_tables(BLUE), bind_tables(GREEN)
    assert not set(blue.models) & set(green.models)
    assert blue.connection is not green.connection
    # Another client setting is another binding of the same tables.
    assert bind_tables(BLUE, max_retry_attempts=0).jobs is not blue.jobs
    assert bind_tables(BLUE, max_retry_attempts=0).jobs.Meta.max_retry_attempts == 0


def test_binding_leaves_the_module_s_models_as_they_were() -> None:
    before = {model: dict(vars(model.Meta)) for model in MODELS}
    bind_tables(replace(GREEN, stage="violet"))
    assert {model: dict(vars(model.Meta)) for model in MODELS} == before
    for model in MODELS:
        with pytest.raises(AttributeError, match="table_name"):
            model._get_connection()  # unbound: no table to talk to


def test_a_bound_model_s_missing_item_is_pynamodb_s_does_not_exist() -> None:
    for model in bind_tables(BLUE).models:
        assert issubclass(model.DoesNotExist, DoesNotExist)
