"""The one registry of recruiters: what each one declares, and what a local link cannot do."""

import re

import pytest

from experiments.models import Session, Study
from experiments.recruiters import recruiter_for, registered
from recruitment.backends import backend_for
from recruitment.errors import ConfigurationError
from recruitment.models import Payment
from tests.recruitment_factories import RecruitmentFactory

MTURK_PREVIEW = {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "3HIT", "turkSubmitTo": "https://workersandbox.mturk.com"}


def test_the_registry_lists_local_mturk_and_prolific_in_that_order():
    assert [recruiter.name for recruiter in registered()] == ["local", "mturk", "prolific"]


def test_an_unknown_recruiter_is_a_readable_error():
    with pytest.raises(ValueError, match=r"^unknown source 'nope'; expected one of local, mturk, prolific$"):
        recruiter_for("nope")


def test_the_fields_that_name_a_recruiter_take_their_choices_from_the_registry():
    expected = [("local", "local link"), ("mturk", "Amazon Mechanical Turk"), ("prolific", "Prolific")]
    for field in [Study._meta.get_field("recruiter"), Session._meta.get_field("source"), Payment._meta.get_field("backend")]:
        assert list(field.choices) == expected


def test_mturks_preview_assignment_id_is_a_preview():
    assert recruiter_for("mturk").is_preview(MTURK_PREVIEW)


def test_an_accepted_mturk_assignment_is_not_a_preview():
    assert not recruiter_for("mturk").is_preview({**MTURK_PREVIEW, "assignmentId": "3ASG", "workerId": "AW1"})


@pytest.mark.parametrize("name", ["local", "prolific"])
def test_other_recruiters_have_no_preview(name):
    assert not recruiter_for(name).is_preview(MTURK_PREVIEW)


@pytest.mark.parametrize(
    "name, params",
    [
        ("local", {"participant": "participant", "sig": "sig"}),
        (
            "mturk",
            {"assignment_id": "assignmentId", "hit_id": "hitId", "worker_id": "workerId", "turk_submit_to": "turkSubmitTo"},
        ),
        ("prolific", {"prolific_pid": "PROLIFIC_PID", "study_id": "STUDY_ID", "session_id": "SESSION_ID"}),
    ],
)
def test_each_recruiter_names_the_url_parameters_its_arrival_comes_with(name, params):
    assert dict(recruiter_for(name).url_params) == params


def test_recruitment_runs_the_registered_instances():
    assert all(backend_for(recruiter.name) is recruiter for recruiter in registered())


@pytest.mark.django_db
def test_the_local_backend_cannot_be_launched():
    recruitment = RecruitmentFactory(study__recruiter="local")
    message = f"Study {recruitment.study.slug} recruits by 'local': there is nothing to launch."
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        backend_for("local").check_launch(recruitment, sandbox=True)
