"""Tickwork's Chalice app: it only wires blueprints and handlers (see chalicelib/).

Every function imports this module, so it imports only what every function
needs. The four non-HTTP handlers are registered at once (they are light:
`chalicelib/engine/handlers.py` builds its services on first call). The API's
routes are registered when `app.app`, the API function's handler, is first
read (`__getattr__` below): Lambda reads it only in the API function, and
`chalice package`/`deploy` and the tests read it too, so they see every route.
Even then, a route's module (its models, services, stores) is imported only by
the route's first request. docs/decisions.md (Cold start) says why.
"""

from typing import TYPE_CHECKING, Any

from chalice.app import Chalice, Rate

from chalicelib.engine import handlers
from chalicelib.settings import deploy_time

#: Read while this module is imported: Chalice takes the event sources' queues
#: (and the routes their CORS) at decoration time (chalicelib/settings.py).
deployed = deploy_time()

_app = Chalice(app_name="tickwork")

# Each handler is the attribute of this module that its function's name says:
# Chalice writes a function's handler as `app.<the handler function's name>`
# (`app.on_tick`), and Lambda looks that up here.
on_tick = _app.schedule(Rate(1, unit=Rate.MINUTES), name="tick")(handlers.on_tick)
# Invoked by the tick (asynchronously, once per shard), so a tick's shards run in
# parallel invocations (chalicelib/engine/fanout.py).
on_tick_shard = _app.lambda_function(name="tick_shard")(handlers.on_tick_shard)
on_jobs = _app.on_sqs_message(queue=deployed.jobs_queue, batch_size=10, name="execute_jobs")(
    handlers.on_jobs
)
on_dead_letters = _app.on_sqs_message(
    queue=deployed.dead_letter_queue, batch_size=10, name="dead_letters"
)(handlers.on_dead_letters)

#: The app with every route: the API function's handler (made by `__getattr__`).
app: Chalice


if not TYPE_CHECKING:  # so that mypy still checks every other name read from this module

    def __getattr__(name: str) -> Any:
        """`app`, on first read: the Chalice app with every route registered
        (`chalicelib/api/mount.py`: a route's module is imported by its first
        request), kept as this module's attribute from then on (so this runs once)."""
        if name != "app":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from chalicelib.api.mount import mount

        globals()["app"] = mount(_app)
        return _app
