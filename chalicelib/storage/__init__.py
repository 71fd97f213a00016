"""Storage: PynamoDB models and the stores that turn rows into domain objects.

Nothing outside this package sees a PynamoDB model.
"""
