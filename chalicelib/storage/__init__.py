"""Storage: PynamoDB models and the stores that turn rows into domain objects.

`tables` declares the models, which name no table; `binding.bind_tables(settings)`
gives a stage's subclasses of them (a `Tables`), and every store takes the
`Tables` it uses in its constructor, so one process can hold two stages.
Jobs: `stored_jobs` (rows and the types they become), `job_reads`, `jobs`
(writes), `job_listing` (every project's); tasks: `tasks` and `task_slots`.

Nothing outside this package sees a PynamoDB model: a `Tables` is handed from
`Services` to the stores, never looked into.
"""
