"""The canonical /v1 routes: tasks, the queue, approvals, runs, tokens, previews."""
