"""What can go wrong when talking to a recruiter, sorted by what to do about it.

Tasks retry TransientError with backoff; everything else is stored on the
study's Recruitment row (and on the ledger row for payments) and shown in the
admin, because someone has to act on it.
"""

from __future__ import annotations


class RecruitmentError(Exception):
    """A recruiter call or its preparation failed; the message is shown in the admin."""


class ConfigurationError(RecruitmentError):
    """A setting or study field is missing or unusable (no HTTPS, no token...)."""


class ServiceRefused(RecruitmentError):
    """The recruiter understood the request and refused it (MTurk RequestError, Prolific 4xx).

    code is the recruiter's own error code where it gives one (MTurk's
    TurkErrorCode, Prolific's HTTP status).
    """

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TransientError(RecruitmentError):
    """Throttled or temporarily unavailable: retry later with backoff.

    maybe_processed is False when the service certainly did not act on the
    request (throttling, connection refused) and True when it may have
    (a 5xx or a timeout after the request was sent): a payment in that state
    is verified against the service before it is sent again.
    """

    def __init__(self, message: str, *, maybe_processed: bool) -> None:
        super().__init__(message)
        self.maybe_processed = maybe_processed
