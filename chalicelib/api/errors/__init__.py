"""Error bodies per API surface: problem+json for /v1, Matrix errors for Synapse."""
