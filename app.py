"""Tickwork's Chalice app: it only wires the blueprints (see chalicelib/)."""

from chalice.app import Chalice

from chalicelib.api import admin_tokens, meta, scheduled_tasks

app = Chalice(app_name="tickwork")
app.register_blueprint(meta.bp)
app.register_blueprint(scheduled_tasks.bp)
app.register_blueprint(admin_tokens.bp)
