"""Tickwork's Chalice app: it only wires blueprints and handlers (see chalicelib/)."""

from chalice.app import Chalice, Rate

from chalicelib.api import meta
from chalicelib.api.seeds import catalogue as catalogue_routes
from chalicelib.api.seeds import records as records_routes
from chalicelib.api.seeds import synapse as synapse_admin
from chalicelib.api.v1 import admin_tokens, hitl, observability, queue, runs, scheduled_tasks
from chalicelib.api.v1 import dead_letters as dead_letter_routes
from chalicelib.api.v1 import me as me_routes
from chalicelib.api.v1 import schedule_preview as preview_routes
from chalicelib.engine import handlers
from chalicelib.settings import deploy_time

#: Read while this module is imported: Chalice takes the event sources' queues
#: (and the routes their CORS) at decoration time (chalicelib/settings.py).
deployed = deploy_time()

app = Chalice(app_name="tickwork")
app.register_blueprint(meta.bp)
app.register_blueprint(scheduled_tasks.bp)
app.register_blueprint(preview_routes.bp)
app.register_blueprint(me_routes.bp)
app.register_blueprint(runs.bp)
app.register_blueprint(admin_tokens.bp)
app.register_blueprint(queue.bp)
app.register_blueprint(observability.bp)
app.register_blueprint(hitl.bp)
app.register_blueprint(dead_letter_routes.bp)
app.register_blueprint(synapse_admin.bp)
app.register_blueprint(catalogue_routes.bp)
app.register_blueprint(records_routes.bp)

tick = app.schedule(Rate(1, unit=Rate.MINUTES), name="tick")(handlers.on_tick)
# Invoked by the tick (asynchronously, once per shard), so a tick's shards run in
# parallel invocations (chalicelib/engine/fanout.py).
tick_shard = app.lambda_function(name="tick_shard")(handlers.on_tick_shard)
execute_jobs = app.on_sqs_message(queue=deployed.jobs_queue, batch_size=10, name="execute_jobs")(
    handlers.on_jobs
)
dead_letters = app.on_sqs_message(
    queue=deployed.dead_letter_queue, batch_size=10, name="dead_letters"
)(handlers.on_dead_letters)
