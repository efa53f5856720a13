from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import timm
import torch
from botocore.stub import Stubber
from django.core.cache import cache
from django.db import connections
from moto import mock_aws
from rest_framework.test import APIClient

from experiments.models import Session, SessionTrial, Study
from experiments.planning import forget_shown_images
from experiments.selectors import forget_image_urls
from psyplatform.celery import app
from recruitment.mturk.client import ENDPOINTS
from tests.builders import build_2afc_study
from tests.factories import VisionModelFactory
from workers.models import Job

PUBLIC_BASE_URL = "https://psy.example.org"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# What the browser reports of its display with every answer (static/participant/shell.js, geometry()).
GEOMETRY = {
    "window_width": 1440, "window_height": 900, "screen_width": 1440, "screen_height": 900,
    "device_pixel_ratio": 2, "zoom": 1.0, "pinch_zoom": 1, "fullscreen": False,
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36",
    "image_css_px_min": 150.5, "image_css_px_max": 180.0, "image_device_px_min": 301.0, "image_device_px_max": 360.0,
    "images": [[150.5, 150.5, 224, 224], [180.0, 180.0, 224, 224]],
}


class Participant:
    """Drives the participant API the way the browser does."""

    def __init__(self, study: Study, participant: str = "p1") -> None:
        self.client = APIClient()
        self.study = study
        self.participant = participant
        self.id: int | None = None

    def start(self, **extra: Any):
        body = {"study": self.study.slug, "source": "local", "participant": self.participant, **extra}
        response = self.client.post("/api/v1/sessions", body, format="json")
        if response.status_code in (200, 201):
            self.id = response.json()["id"]
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
        return response

    @property
    def session(self) -> Session:
        return Session.objects.get(pk=self.id)

    def url(self, tail: str = "") -> str:
        return f"/api/v1/sessions/{self.id}{tail}"

    def event(self, type_: str, **payload: Any):
        return self.client.post(self.url("/events"), {"type": type_, "payload": payload}, format="json")

    def trial(self):
        return self.client.get(self.url("/trial"))

    def answer(self, index: int, choice: int, confidence: int = 3, client_id: str | None = None):
        body = {
            "index": index,
            "choice": choice,
            "confidence": confidence,
            "rt_ms": 900,
            "client_id": client_id or str(uuid.uuid4()),
            "geometry": GEOMETRY,
        }
        return self.client.post(self.url("/responses"), body, format="json")

    def correct_choice(self, index: int) -> int:
        return SessionTrial.objects.get(session_id=self.id, index=index).key["choice"]

    def answer_current(self, right: bool = True, choice: int | None = None):
        index = self.trial().json()["index"]
        correct = self.correct_choice(index)
        if choice is None:
            choice = correct if right else 1 - correct
        return self.answer(index, choice)

    def take_part(self):
        """Start and consent: from consent on the session holds its units."""
        response = self.start()
        self.event("consent")
        return response

    def through_instructions(self) -> None:
        self.event("consent")
        self.event("instructions_start")
        self.event("instructions_end")

    def pass_practice(self) -> None:
        while self.session.phase == Session.Phase.PRACTICE:
            self.answer_current(right=True)

    def answer_all(self, right: bool = True) -> None:
        while not self.trial().json()["done"]:
            self.answer_current(right=right)

    def complete(self, feedback: str = ""):
        return self.client.post(self.url("/complete"), {"feedback": feedback}, format="json")


@pytest.fixture
def isolated_files(settings, tmp_path):
    """Work files and stored stimuli in this test's own folder (which the /media/ view serves)."""
    settings.WORK_DIR = tmp_path / "work"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


@pytest.fixture
def tiny_model(tmp_path):
    """A seeded random-weight timm `test_efficientnet` (160 px, fast on CPU), loaded from a checkpoint."""
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), path)
    return VisionModelFactory(
        name="tiny", timm_name="test_efficientnet", weights="checkpoint", checkpoint_path=str(path)
    )


@pytest.fixture(autouse=True)
def generous_limits(settings):
    """Every simulated participant comes from 127.0.0.1: the per-address limits are lifted, and their
    counts (in the cache) start from none; the tests of the limits set their own."""
    settings.RATE_LIMIT_STARTS = settings.RATE_LIMIT_EVENTS = "1000000/hour"
    settings.MAX_ACTIVE_SESSIONS_PER_ADDRESS = 1_000_000
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def fresh_image_urls():
    """A rolled-back test database may give its ids to other images and trials (SQLite): each test reads
    URLs and trials' images afresh."""
    forget_image_urls()
    forget_shown_images()


@pytest.fixture
def study(db) -> Study:
    return build_2afc_study()


@pytest.fixture
def participant(study) -> Participant:
    p = Participant(study)
    p.start()
    return p


@pytest.fixture
def make_participant(study):
    def make(name: str) -> Participant:
        p = Participant(study, name)
        p.start()
        return p

    return make


@pytest.fixture
def chromium(monkeypatch) -> Iterator[Any]:
    """Headless Chromium (CHROMIUM_PATH) through Playwright, for tests marked `chromium`."""
    # Playwright's sync API runs an event loop in this thread; ORM calls between page actions stay plain.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=os.environ["TEST_CHROMIUM_PATH"], args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()  # first: the pages' requests end before the connections close
            # ORM calls made beside Playwright used a connection of their own; closed before the database goes.
            connections.close_all()


@pytest.fixture
def s3(monkeypatch) -> Iterator[Any]:
    """moto's S3 in this process, with test credentials: a boto3 client of it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("s3")


@pytest.fixture
def public_https(settings) -> str:
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
    return PUBLIC_BASE_URL


@pytest.fixture
def mturk(monkeypatch, public_https):
    """A real boto3 MTurk client behind a Stubber, which checks every call against AWS's model.

    Tests queue each expected call with its exact parameters; the fixture
    fails the test if a queued call was never made. stubber.operations lists
    the operations called, in order.
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("mturk", region_name="us-east-1", endpoint_url=ENDPOINTS[True])
    stubber = Stubber(client)
    stubber.operations = []
    client.meta.events.register(
        "before-parameter-build.mturk", lambda model, **kwargs: stubber.operations.append(model.name)
    )
    endpoints: list[bool] = []

    def get_client(*, sandbox: bool):
        endpoints.append(sandbox)
        return client

    monkeypatch.setattr("recruitment.mturk.services.get_client", get_client)
    stubber.endpoints = endpoints  # which marketplace each client was made for
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def ended(job: Job, within_s: float) -> Job:
    """The job, re-read until a worker has ended it (done or failed) or within_s have passed."""
    deadline = time.monotonic() + within_s
    while job.status not in (Job.Status.DONE, Job.Status.FAILED) and time.monotonic() < deadline:
        time.sleep(0.5)
        job.refresh_from_db()
    return job


def use_broker(url: str, eager: bool, transport_options: dict[str, Any]) -> None:
    app.conf.update(broker_url=url, task_always_eager=eager, broker_transport_options=transport_options)
    # Connection and producer pools are built on first use for the broker of the
    # moment (memory:// once an in-process task ran); Celery's after-fork reset
    # drops them so that the next message goes to `url`.
    app._after_fork()


@pytest.fixture
def celery_worker_on_redis():
    """A real worker thread consuming the "gpu" queue on the test Redis."""
    from celery.contrib.testing.worker import start_worker

    saved = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options)
    # The queue's keys carry this run's prefix: test runs side by side on one Redis never take each other's
    # tasks (a job id of another run's database).
    prefixed = {**saved[2], "global_keyprefix": f"psyplatform-test-{os.getpid()}:"}
    use_broker(os.environ["TEST_REDIS_URL"], eager=False, transport_options=prefixed)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=["gpu"]):
            yield
    finally:
        use_broker(*saved)
