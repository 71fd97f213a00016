"""The arithmetic bench.cost_table prices a unit of work with."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.cost_table import (
    LINES,
    Prices,
    Usage,
    deployed_shards,
    dollars,
    estimated_s,
    gb_seconds,
    idle_poll_requests,
    memory_mb,
    sqs_requests,
    wru_by_table,
)
from bench.write_units import Units

PRICES = Prices(
    dynamodb_wru_per_million=1.0,
    dynamodb_rru_per_million=0.5,
    sqs_per_million=0.4,
    lambda_per_million=0.2,
    lambda_per_gb_s=0.00001,
    api_gateway_per_million=3.5,
    scheduler_per_million=1.0,
)


def test_gb_seconds_are_the_duration_in_whole_milliseconds_times_the_memory_in_gb() -> None:
    assert gb_seconds(1.0, 1024) == 1.0
    assert gb_seconds(0.5, 2048) == 1.0
    assert gb_seconds(0.0101, 1024) == pytest.approx(0.011)  # 10.1 ms is billed as 11
    assert gb_seconds(0.010, 1769) == pytest.approx(0.010 * 1769 / 1024)  # 10 ms stays 10


def test_dollars_are_each_count_times_its_price_per_million_for_the_units_asked() -> None:
    usage = Usage(
        wru=40, rru=2, sqs_requests=1, lambda_requests=0.1, lambda_gb_s=0.2, api_requests=1
    )
    got = dollars(usage, PRICES, 1e6)
    assert got == pytest.approx(
        {
            "DynamoDB write request units": 40.0,
            "DynamoDB read request units": 1.0,
            "SQS requests": 0.4,
            "Lambda requests": 0.02,
            "Lambda duration (GB-s, estimated)": 2.0,  # GB-s are priced per GB-s
            "API Gateway requests": 3.5,
        }
    )
    assert set(got) == {label for label, _, _ in LINES}


def test_a_months_idle_dollars_scale_with_the_ticks() -> None:
    tick = Usage(rru=96, lambda_requests=65)
    month = dollars(tick, PRICES, 43_200)
    assert month["DynamoDB read request units"] == pytest.approx(96 * 43_200 * 0.5 / 1e6)
    assert month["Lambda requests"] == pytest.approx(65 * 43_200 * 0.2 / 1e6)
    assert month["SQS requests"] == 0


def test_an_estimate_is_cpu_plus_each_requests_latency_plus_the_wait() -> None:
    latency = {"dynamodb": 5.0, "sqs": 10.0, "lambda": 20.0}
    assert estimated_s(0.010, {"dynamodb": 6, "sqs": 1}, latency) == pytest.approx(0.050)
    assert estimated_s(0.0, {}, latency, wait_s=1.5) == 1.5
    # Requests in flight side by side wait once per round.
    fan_out = estimated_s(0.1, {"lambda": 64}, latency, in_flight={"lambda": 8})
    assert fan_out == pytest.approx(0.1 + 8 * 0.020)


def test_sqs_bills_a_request_per_64_kb_chunk_of_its_payload() -> None:
    assert sqs_requests(77) == 1
    assert sqs_requests(64 * 1024) == 1
    assert sqs_requests(64 * 1024 + 1) == 2
    assert sqs_requests(256 * 1024) == 4


def test_idle_polls_are_each_pollers_long_polls() -> None:
    # Two event sources, five pollers each, a 20 s poll after another: 30 a minute.
    assert idle_poll_requests(2, 60.0) == 30


CONFIG = {
    "lambda_memory_size": 512,
    "environment_variables": {"TICKWORK_DUE_SHARDS": "64"},
    "lambda_functions": {"tick": {"lambda_memory_size": 1024}, "other": {}},
    "stages": {
        "prod": {"lambda_functions": {"tick": {"lambda_memory_size": 2048}}},
        "dev": {"environment_variables": {"TICKWORK_DUE_SHARDS": "16"}},
    },
}


def test_memory_is_read_as_chalice_resolves_it() -> None:
    assert memory_mb(CONFIG, "prod", "tick") == 2048  # the stage's function entry
    assert memory_mb(CONFIG, "dev", "tick") == 1024  # the function entry
    assert memory_mb(CONFIG, "dev", "other") == 512  # the top-level fallback


def test_the_shard_count_is_the_stages_environment_over_the_top_levels() -> None:
    assert deployed_shards(CONFIG, "prod") == 64
    assert deployed_shards(CONFIG, "dev") == 16
    assert deployed_shards({}, "prod") == 8  # Settings' default


def test_wru_by_table_names_every_table_and_index_it_is_given() -> None:
    tick = {("PutItem", "jobs", "p"): Units(1, 0, 1.0, Counter({"jobs.due": 2}))}
    executor = {
        ("UpdateItem", "attempts", "q"): Units(2, 0, 4.0, Counter({"attempts.by_job": 2})),
        ("GetItem", "jobs", "r"): Units(1, 0, 0.0, Counter(), 1.0),
    }
    assert wru_by_table(2, tick, executor) == {
        "jobs (table)": 0.5,
        "jobs.due": 1.0,
        "attempts (table)": 2.0,
        "attempts.by_job": 1.0,
    }
