"""The refusals a user sees as one message, not a traceback (gdbench.sweep.user_errors_exit).
A bad key or value is a ValueError, as in Python itself; these are the others."""


class SweepLocked(RuntimeError):
    """Another process is writing this sweep directory (gdbench.store.writer_lock)."""


class ClusterUnreachable(RuntimeError):
    """No Ray head answers at cluster.address (gdbench.scheduler.check_reachable)."""


class SweepFailed(RuntimeError):
    """Chunks failed in this session; their runs are retried by the next run."""
