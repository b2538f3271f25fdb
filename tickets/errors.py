from helpdesk.errors import DomainError


class IngestRejected(DomainError):
    """A message that cannot be taken in as it stands (e.g. it names someone else's ticket): quarantine it."""

    code = "ingest_rejected"
