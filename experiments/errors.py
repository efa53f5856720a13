"""Why a participant's request cannot be carried out; the API maps each to a status code."""


class SessionError(Exception):
    """Base class: the message is shown to the participant; extra fields go into the reply. retry_after: the
    seconds after which the same call may succeed (the reply's Retry-After header)."""

    def __init__(self, message: str, retry_after: int | None = None, **extra: object) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.extra = extra


class StudyUnavailable(SessionError):
    """The study does not exist or is not open (404)."""


class InvalidArrival(SessionError):
    """The recruiter's fields on arrival are missing or malformed (400)."""


class InvalidAnswer(SessionError):
    """An answer breaking the study's own limits, e.g. a name with too many words (400)."""


class AlreadyTakenPart(SessionError):
    """The participant completed this study, or a linked one (409)."""


class NoPlacesLeft(SessionError):
    """Every unit has its target of participants (409)."""


class NotCurrentTrial(SessionError):
    """An answer for a trial other than the first unanswered one (409)."""


class WrongStage(SessionError):
    """The call does not fit the session's stage, e.g. trials before consent (409)."""


class TooEarly(SessionError):
    """An answer sooner after its trial was sent than the study's lock allows (409)."""


class TooManyRequests(SessionError):
    """Too many starts or events from one address, or too many sessions at once (429)."""


class ServerBusy(SessionError):
    """The server is serving as many arrivals as it takes at once; the same call succeeds later (503)."""
