"""Every AWS client the services make keeps `aws_max_connections` connections:
the local stack runs its API's, tick's and workers' threads in one process and
raises it, so no thread waits for a connection or drops one."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.settings import Settings
from chalicelib.wiring import Services


def test_the_services_clients_keep_the_configured_connections(settings: Settings) -> None:
    services = Services.build(replace(settings, aws_max_connections=77))
    models = services.tables.models
    assert {model._get_connection().connection for model in models} == {services.tables.connection}
    assert services.tables.connection.client.meta.config.max_pool_connections == 77  # type: ignore[attr-defined]
    assert services.sqs._sqs().meta.config.max_pool_connections == 77
    # The stage's own: the settings of another stage leave them as they are.
    Services.build(replace(settings, stage="other", aws_max_connections=5))
    assert services.tables.connection.client.meta.config.max_pool_connections == 77  # type: ignore[attr-defined]


def test_lambda_keeps_botocores_default() -> None:
    assert Settings.from_env({}).aws_max_connections == 10
