"""The PynamoDB models and infra/resources.py describe the same tables."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.attributes import TTLAttribute
from pynamodb.models import Model

from chalicelib.settings import TABLES, Settings
from chalicelib.storage.tables import MODELS
from infra.resources import tables

DEFINED = tables("unit")


def _keys(schema: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(k["AttributeName"], k["KeyType"]) for k in schema}


def _model_schema(model: type[Model]) -> dict[str, Any]:
    schema: Any = model._get_schema()
    return dict(schema)


def test_every_table_has_a_model_and_back() -> None:
    assert {m.Meta.logical_name for m in MODELS} == set(DEFINED)  # type: ignore[attr-defined]
    # The names `run_query` refuses to read (Settings.is_own_table).
    assert set(TABLES) == set(DEFINED)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_matches_definition(model: type[Model]) -> None:
    props = DEFINED[model.Meta.logical_name]["Properties"]  # type: ignore[attr-defined]
    schema = _model_schema(model)
    assert _keys(schema["key_schema"]) == _keys(props["KeySchema"])

    model_attrs = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    for index in schema["global_secondary_indexes"]:
        model_attrs |= {
            a["AttributeName"]: a["AttributeType"] for a in index["attribute_definitions"]
        }
    defined_attrs = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert model_attrs == defined_attrs

    model_indexes = {
        i["index_name"]: (_keys(i["key_schema"]), i["projection"]["ProjectionType"])
        for i in schema["global_secondary_indexes"]
    }
    defined_indexes = {
        i["IndexName"]: (_keys(i["KeySchema"]), i["Projection"]["ProjectionType"])
        for i in props.get("GlobalSecondaryIndexes", [])
    }
    assert model_indexes == defined_indexes

    ttl = [a.attr_name for a in model.get_attributes().values() if isinstance(a, TTLAttribute)]
    defined_ttl = props.get("TimeToLiveSpecification", {}).get("AttributeName")
    assert ttl == ([defined_ttl] if defined_ttl else [])


def test_settings_derive_the_same_physical_names() -> None:
    settings = Settings(stage="unit")
    for logical, resource in DEFINED.items():
        assert settings.table_name(logical) == resource["Properties"]["TableName"]
