"""The engine: dispatch, the tick, the executor and its parts, the Lambda handlers."""
