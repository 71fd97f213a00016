"""HTTP API: route plumbing, error rendering per surface, and the blueprints."""
