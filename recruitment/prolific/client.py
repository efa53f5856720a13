"""A small client for Prolific's REST API v1 over requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import requests

from recruitment.conf import prolific_api_token, prolific_api_url
from recruitment.errors import ServiceRefused, TransientError

TIMEOUT_S = 30


class ProlificClient:
    def __init__(self, token: str, base_url: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url
        self.http = session or requests.Session()
        self.http.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> dict[str, Any]:
        url = urljoin(self.base_url, path_or_url)
        try:
            response = self.http.request(method, url, timeout=TIMEOUT_S, **kwargs)
        except requests.ConnectionError as exc:
            raise TransientError(f"Prolific {method} {url}: {exc}", maybe_processed=False) from exc
        except requests.Timeout as exc:
            raise TransientError(f"Prolific {method} {url}: {exc}", maybe_processed=True) from exc
        if response.status_code == 429:
            raise TransientError(f"Prolific {method} {url}: throttled (429)", maybe_processed=False)
        if response.status_code >= 500:
            raise TransientError(f"Prolific {method} {url}: {response.status_code}", maybe_processed=True)
        if response.status_code >= 400:
            raise ServiceRefused(
                f"Prolific {method} {url}: {response.status_code} {response.text[:500]}",
                code=str(response.status_code),
            )
        return response.json() if response.content else {}

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every result of a list endpoint: follow _links.next, stop at meta.count.

        Asking for a page past the end is a 404 error on Prolific, so the
        walk never guesses page numbers; if the list shrinks between two
        pages (the only way to reach that 404 by following links) the walk
        ends there.
        """
        url: str | None = path
        seen = 0
        while url:
            try:
                page = self.request("GET", url, params=params)
            except ServiceRefused as exc:
                if exc.code == "404" and seen:
                    return
                raise
            params = None  # the next link carries the query
            results = page.get("results", [])
            yield from results
            seen += len(results)
            count = page.get("meta", {}).get("count")
            if not results or (count is not None and seen >= count):
                return
            link = page.get("_links", {}).get("next")
            url = link.get("href") if isinstance(link, dict) else link

    # Studies

    def create_study(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "studies/", json=payload)

    def update_study(self, study_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"studies/{study_id}/", json=changes)

    def transition_study(self, study_id: str, action: str) -> dict[str, Any]:
        """action: PUBLISH, PAUSE, START or STOP."""
        return self.request("POST", f"studies/{study_id}/transition/", json={"action": action})

    # Submissions

    def submissions(self, study_id: str) -> Iterator[dict[str, Any]]:
        return self.pages("submissions/", params={"study": study_id})

    def submission(self, submission_id: str) -> dict[str, Any]:
        return self.request("GET", f"submissions/{submission_id}/")

    def approve(self, submission_id: str) -> dict[str, Any]:
        return self.request("POST", f"submissions/{submission_id}/transition/", json={"action": "APPROVE"})

    def reject(self, submission_id: str, message: str, category: str) -> dict[str, Any]:
        body = {"action": "REJECT", "message": message, "rejection_category": category}
        return self.request("POST", f"submissions/{submission_id}/transition/", json=body)

    # Bonuses: set up (nothing is paid), then pay (not idempotent).

    def set_up_bonus(self, study_id: str, csv_bonuses: str) -> dict[str, Any]:
        return self.request(
            "POST", "submissions/bonus-payments/", json={"study_id": study_id, "csv_bonuses": csv_bonuses}
        )

    def pay_bonus(self, bonus_id: str) -> dict[str, Any]:
        return self.request("POST", f"bulk-bonus-payments/{bonus_id}/pay/")


def get_client() -> ProlificClient:
    return ProlificClient(prolific_api_token(), prolific_api_url())
