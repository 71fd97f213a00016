"""The seed surfaces (Synapse admin, task catalogue, records): thin over the services."""
