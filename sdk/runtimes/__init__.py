"""Runtimes decide where a run executes: `local` (this process) or `kubernetes` (a Job via the launcher)."""
