"""Every AWS client the services make keeps `aws_max_connections` connections:
the local stack runs its API's, tick's and workers' threads in one process and
raises it, so no thread waits for a connection or drops one."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.settings import Settings
from chalicelib.storage.tables import MODELS
from chalicelib.wiring import Services


def test_the_services_clients_keep_the_configured_connections(settings: Settings) -> None:
    services = Services.build(replace(settings, aws_max_connections=77))
    assert {model.Meta.max_pool_connections for model in MODELS} == {77}
    assert {model._get_connection().connection._max_pool_connections for model in MODELS} == {77}
    assert services.sqs._sqs().meta.config.max_pool_connections == 77
    assert services.tasks._store._transactions.get()._max_pool_connections == 77


def test_lambda_keeps_botocores_default() -> None:
    assert Settings.from_env({}).aws_max_connections == 10
