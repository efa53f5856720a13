"""One JSON shape for every API error: {"error": message} (plus "detail" for field errors).

Domain errors raised by the services map to status codes here, so views stay thin.
"""

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from experiments import errors
from experiments.api.parsers import BodyTooLarge
from experiments.recruiters import ArrivalRefused

STATUS_OF: dict[type[Exception], int] = {
    errors.StudyUnavailable: status.HTTP_404_NOT_FOUND,
    errors.AlreadyTakenPart: status.HTTP_409_CONFLICT,
    errors.NoPlacesLeft: status.HTTP_409_CONFLICT,
    errors.NotCurrentTrial: status.HTTP_409_CONFLICT,
    errors.WrongStage: status.HTTP_409_CONFLICT,
    errors.TooEarly: status.HTTP_409_CONFLICT,
    errors.TooManyRequests: status.HTTP_429_TOO_MANY_REQUESTS,
    errors.ServerBusy: status.HTTP_503_SERVICE_UNAVAILABLE,
    errors.InvalidArrival: status.HTTP_400_BAD_REQUEST,
    errors.InvalidAnswer: status.HTTP_400_BAD_REQUEST,
    ArrivalRefused: status.HTTP_403_FORBIDDEN,
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        # Django's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE) stops a body before the API's parser reads it.
        exc = BodyTooLarge()
    for kind, code in STATUS_OF.items():
        if isinstance(exc, kind):
            wait = getattr(exc, "retry_after", None)
            headers = {"Retry-After": str(wait)} if wait is not None else None
            return Response({"error": str(exc), **getattr(exc, "extra", {})}, status=code, headers=headers)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and set(detail) == {"detail"}:
        response.data = {"error": str(detail["detail"])}
    else:
        response.data = {"error": _first_message(detail), "detail": detail}
    return response


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)
