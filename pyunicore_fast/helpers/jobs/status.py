"""Job status strings as the jobs API reports them (for comparisons with ``properties``)."""


class Status:
    """All job statuses the UNICORE REST API reports (plus ``UNKNOWN`` from the docs)."""

    UNDEFINED = "UNDEFINED"
    READY = "READY"
    STAGING_IN = "STAGINGIN"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    STAGING_OUT = "STAGINGOUT"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"


JobStatus = Status
