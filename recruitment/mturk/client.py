"""The boto3 MTurk client, and MTurk's errors turned into recruitment.errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recruitment.conf import mturk_credentials
from recruitment.errors import ConfigurationError, RecruitmentError, ServiceRefused, TransientError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

# boto3 and botocore (about 26 MB) are imported where MTurk is called: every Django process imports this module
# (through the recruiter registry), and most, such as the web server and the dataset export, never call MTurk.

REGION = "us-east-1"  # MTurk's only region
ENDPOINTS = {
    True: "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
    False: "https://mturk-requester.us-east-1.amazonaws.com",
}
# Where workers' browsers post the finished assignment (the turkSubmitTo parameter).
WORKER_SITES = {
    True: "https://workersandbox.mturk.com",
    False: "https://www.mturk.com",
}
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
    }
)


def get_client(*, sandbox: bool) -> Any:
    """Credentials come from the standard AWS_* variables (or any boto3 credential source),
    unless MTURK_AWS_ACCESS_KEY_ID is set."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "mturk",
        region_name=REGION,
        endpoint_url=ENDPOINTS[sandbox],
        **mturk_credentials(),
        # botocore retries throttling a little itself; the Celery task backs off for longer.
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=30),
    )


def call(client: Any, method: str, **params: Any) -> dict[str, Any]:
    """client.<method>(**params), raising TransientError, ServiceRefused or ConfigurationError."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    try:
        return getattr(client, method)(**params)
    except ClientError as exc:
        raise translate(exc, method) from exc
    except NoCredentialsError as exc:
        raise ConfigurationError(
            "No AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (an IAM user "
            "with the AmazonMechanicalTurkFullAccess policy, linked to the MTurk requester account)."
        ) from exc
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        # The request never reached MTurk.
        raise TransientError(f"MTurk {method}: {exc}", maybe_processed=False) from exc
    except (ReadTimeoutError, ConnectionClosedError) as exc:
        # Sent, but no answer: MTurk may have acted on it.
        raise TransientError(f"MTurk {method}: {exc}", maybe_processed=True) from exc
    except BotoCoreError as exc:
        raise RecruitmentError(f"MTurk {method}: {exc}") from exc


def translate(exc: ClientError, method: str) -> RecruitmentError:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "")
    turk_code = str(exc.response.get("TurkErrorCode", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    text = f"MTurk {method}: {code}{f' ({turk_code})' if turk_code else ''}: {message}"
    # MTurk reports throttling either with a throttling code or as a RequestError saying "Rate exceeded".
    lowered = message.lower()
    if code in THROTTLING_CODES or "rate exceeded" in lowered or "throttl" in lowered:
        return TransientError(text, maybe_processed=False)
    if code == "ServiceFault" or status >= 500:
        return TransientError(text, maybe_processed=True)
    # Everything else is MTurk's RequestError: the request was understood and refused
    # (insufficient funds, wrong assignment state...), so retrying as is would not help.
    return ServiceRefused(text, code=turk_code)
