"""Human approvals (HITL): the request model and the service that decides them."""
