"""Infrastructure: the one definition of Tickwork's AWS resources, and the local stack."""
