"""The embedded AWS journals every DynamoDB write moto applied, and a new moto
loaded from the snapshot and the journal holds exactly the same items; a
compaction folds the journal into the snapshot without changing them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.embedded_aws import Compactor, EmbeddedAws, checkpoint
from infra.journal import Journal, compact, journal_dir, load, segments, snapshot_path
from infra.local import provision, restore, snapshot
from infra.resources import physical_name

STAGE = "jrnl"


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws()
    server.start()
    provision(server.endpoint_url, STAGE)
    yield server
    server.stop()


def client(aws: EmbeddedAws) -> Any:
    return boto3.client("dynamodb", endpoint_url=aws.endpoint_url, region_name="us-east-1")


def table(logical: str) -> str:
    return physical_name(STAGE, logical)


def items(aws: EmbeddedAws) -> dict[str, list[dict[str, Any]]]:
    dynamodb = client(aws)
    found = {}
    for logical in ("uniques", "tokens"):
        scanned = dynamodb.scan(TableName=table(logical))["Items"]
        found[logical] = sorted(scanned, key=lambda item: str(item))
    return found


def loaded(state_dir: Path) -> tuple[EmbeddedAws, tuple[int, int, int]]:
    again = EmbeddedAws()
    again.start()
    provision(again.endpoint_url, STAGE)
    return again, load(again.endpoint_url, STAGE, state_dir)


def write_every_kind(dynamodb: Any) -> None:
    uniques = table("uniques")
    for i in range(5):
        dynamodb.put_item(TableName=uniques, Item={"key": {"S": f"k{i}"}, "owner": {"S": "a"}})
    dynamodb.update_item(
        TableName=uniques,
        Key={"key": {"S": "k0"}},
        UpdateExpression="SET #o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "b"}},
    )
    dynamodb.delete_item(TableName=uniques, Key={"key": {"S": "k1"}})
    dynamodb.batch_write_item(
        RequestItems={
            uniques: [
                {"PutRequest": {"Item": {"key": {"S": "b1"}, "owner": {"S": "c"}}}},
                {"DeleteRequest": {"Key": {"key": {"S": "k2"}}}},
            ]
        }
    )
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": uniques, "Item": {"key": {"S": "t1"}, "owner": {"S": "d"}}}},
            {
                "Update": {
                    "TableName": uniques,
                    "Key": {"key": {"S": "k3"}},
                    "UpdateExpression": "SET #o = :o",
                    "ExpressionAttributeNames": {"#o": "owner"},
                    "ExpressionAttributeValues": {":o": {"S": "e"}},
                }
            },
        ]
    )
    # A refused transaction changes nothing, so nothing of it may come back.
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": uniques, "Item": {"key": {"S": "t2"}, "owner": {"S": "f"}}}},
                {
                    "ConditionCheck": {
                        "TableName": uniques,
                        "Key": {"key": {"S": "missing"}},
                        "ConditionExpression": "attribute_exists(#k)",
                        "ExpressionAttributeNames": {"#k": "key"},
                    }
                },
            ]
        )
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(
            TableName=uniques,
            Item={"key": {"S": "k4"}, "owner": {"S": "g"}},
            ConditionExpression="attribute_not_exists(#k)",
            ExpressionAttributeNames={"#k": "key"},
        )


def test_a_moto_loaded_from_the_journal_holds_every_write_of_every_kind(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    aws.journal = Journal(journal_dir(tmp_path), 1)
    write_every_kind(client(aws))
    before = items(aws)
    assert {i["key"]["S"] for i in before["uniques"]} == {"k0", "k3", "k4", "b1", "t1"}

    again, (restored, replayed, last) = loaded(tmp_path)
    try:
        assert (restored, replayed, last) == (0, 9, 1)  # 9 writes moto applied, none refused
        assert items(again) == before
    finally:
        again.stop()


def test_compaction_folds_the_sealed_segments_into_the_snapshot(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    aws.journal = Journal(journal_dir(tmp_path), 1, rotate_bytes=300)
    write_every_kind(client(aws))
    before = items(aws)
    sealed = aws.journal.segment - 1
    assert sealed >= 2

    compact(STAGE, tmp_path, sealed)
    again, (restored, _, last) = loaded(tmp_path)
    try:
        assert restored > 0 and last == aws.journal.segment
        assert items(again) == before
        assert [n for n, _ in segments(journal_dir(tmp_path))] == [aws.journal.segment]
    finally:
        again.stop()


def test_a_compaction_never_puts_an_older_snapshot_over_a_newer_one(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    snapshot(aws.endpoint_url, STAGE, snapshot_path(tmp_path), journal_through=5)
    compact(STAGE, tmp_path, 3)  # a compaction that outlived its stack
    _, through = restore(aws.endpoint_url, STAGE, snapshot_path(tmp_path))
    assert through == 5


def test_a_clean_stop_saves_moto_itself_and_leaves_nothing_to_replay(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    aws.journal = Journal(journal_dir(tmp_path), 1, rotate_bytes=300)
    write_every_kind(client(aws))
    before = items(aws)
    checkpoint(aws, Compactor(tmp_path, STAGE), tmp_path, STAGE)
    assert segments(journal_dir(tmp_path)) == []

    again, (restored, replayed, _) = loaded(tmp_path)
    try:
        assert restored == sum(len(found) for found in before.values())
        assert replayed == 0
        assert items(again) == before
    finally:
        again.stop()
