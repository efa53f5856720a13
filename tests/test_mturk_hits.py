"""The HIT type, the took-part qualification, the ExternalQuestion and HIT creation, call by call."""

from datetime import timedelta

import pytest
from django.utils import timezone

from recruitment.errors import ConfigurationError, ServiceRefused
from recruitment.models import HIT, TookPartQualification
from recruitment.mturk import services
from recruitment.mturk.client import get_client
from tests.conftest import PUBLIC_BASE_URL
from tests.recruitment_factories import LaunchedRecruitmentFactory

pytestmark = pytest.mark.django_db

TOOK_PART = "3TOOKPART0000000000000000000AB"
GUARD = "DiscoverPreviewAndAccept"


def question_xml(slug: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
        '2006-07-14/ExternalQuestion.xsd">'
        f"<ExternalURL>{PUBLIC_BASE_URL}/s/{slug}/</ExternalURL>"
        "<FrameHeight>0</FrameHeight>"
        "</ExternalQuestion>"
    )


def expect_qualification_created(mturk, recruitment) -> None:
    mturk.add_response(
        "create_qualification_type",
        {"QualificationType": {"QualificationTypeId": TOOK_PART, "Name": "x"}},
        expected_params={
            "Name": f"psyplatform took part: study {recruitment.study.slug}",
            "Keywords": "psyplatform",
            "Description": "Granted to workers who took part in one of a group of linked studies, "
            "so that they are not offered the others.",
            "QualificationTypeStatus": "Active",
        },
    )


def hit_type_params(recruitment, requirements) -> dict:
    return {
        "AutoApprovalDelayInSeconds": 259200,
        "AssignmentDurationInSeconds": 7200,
        "Reward": "2.79",
        "Title": recruitment.title,
        "Keywords": recruitment.keywords,
        "Description": recruitment.description,
        "QualificationRequirements": requirements,
    }


def test_live_hit_type_carries_the_section_5_requirements_and_the_took_part_qualification(mturk):
    recruitment = LaunchedRecruitmentFactory(sandbox=False, hit_type_id="")
    expect_qualification_created(mturk, recruitment)
    requirements = [
        {
            "QualificationTypeId": "00000000000000000071",
            "Comparator": "In",
            "LocaleValues": [{"Country": c} for c in ["US", "CA", "GB", "AU", "NZ", "IE"]],
            "ActionsGuarded": GUARD,
        },
        {
            "QualificationTypeId": "00000000000000000040",
            "Comparator": "GreaterThanOrEqualTo",
            "IntegerValues": [2000],
            "ActionsGuarded": GUARD,
        },
        {
            "QualificationTypeId": "000000000000000000L0",
            "Comparator": "GreaterThanOrEqualTo",
            "IntegerValues": [99],
            "ActionsGuarded": GUARD,
        },
        {"QualificationTypeId": TOOK_PART, "Comparator": "DoesNotExist", "ActionsGuarded": GUARD},
    ]
    mturk.add_response("create_hit_type", {"HITTypeId": "3LIVETYPE"}, hit_type_params(recruitment, requirements))

    assert services.ensure_hit_type(recruitment, mturk.client) == "3LIVETYPE"
    recruitment.refresh_from_db()
    assert recruitment.hit_type_id == "3LIVETYPE"
    assert TookPartQualification.objects.get(group=recruitment.group, sandbox=False).qualification_type_id == TOOK_PART


def test_sandbox_hit_type_keeps_only_the_took_part_qualification(mturk):
    recruitment = LaunchedRecruitmentFactory(sandbox=True, hit_type_id="")
    expect_qualification_created(mturk, recruitment)
    requirements = [{"QualificationTypeId": TOOK_PART, "Comparator": "DoesNotExist", "ActionsGuarded": GUARD}]
    mturk.add_response("create_hit_type", {"HITTypeId": "3SANDTYPE"}, hit_type_params(recruitment, requirements))

    assert services.ensure_hit_type(recruitment, mturk.client) == "3SANDTYPE"


def test_linked_studies_share_one_took_part_qualification(mturk):
    first = LaunchedRecruitmentFactory(hit_type_id="")
    second = LaunchedRecruitmentFactory(hit_type_id="", group=first.group)
    TookPartQualification.objects.create(group=first.group, sandbox=True, qualification_type_id=TOOK_PART)
    requirements = [{"QualificationTypeId": TOOK_PART, "Comparator": "DoesNotExist", "ActionsGuarded": GUARD}]
    mturk.add_response("create_hit_type", {"HITTypeId": "3SECOND"}, hit_type_params(second, requirements))

    services.ensure_hit_type(second, mturk.client)


def test_a_qualification_left_by_a_failed_attempt_is_found_by_name(mturk):
    recruitment = LaunchedRecruitmentFactory(hit_type_id="")
    name = f"psyplatform took part: study {recruitment.study.slug}"
    mturk.add_client_error(
        "create_qualification_type",
        service_error_code="RequestError",
        service_message="You have already created a QualificationType with this name.",
    )
    mturk.add_response(
        "list_qualification_types",
        {"QualificationTypes": [{"QualificationTypeId": TOOK_PART, "Name": name}], "NumResults": 1},
        expected_params={"Query": name, "MustBeRequestable": False, "MustBeOwnedByCaller": True, "MaxResults": 100},
    )

    assert services.ensure_took_part_qualification(recruitment, mturk.client) == TOOK_PART


def test_external_question_points_at_the_participant_page(public_https):
    recruitment = LaunchedRecruitmentFactory()
    url = services.study_url(recruitment.study)
    assert url == f"{PUBLIC_BASE_URL}/s/{recruitment.study.slug}/"
    assert services.external_question(url, 0) == question_xml(recruitment.study.slug)


def test_external_question_escapes_the_url():
    assert "<ExternalURL>https://x.org/s/a/?b=1&amp;c=2</ExternalURL>" in services.external_question(
        "https://x.org/s/a/?b=1&c=2", 600
    )


def test_a_plain_http_base_url_is_refused_with_an_explanation(settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    recruitment = LaunchedRecruitmentFactory()
    with pytest.raises(ConfigurationError, match="only over HTTPS"):
        services.study_url(recruitment.study)


def test_create_hit_writes_the_row_then_sends_its_token(mturk):
    recruitment = LaunchedRecruitmentFactory()
    token = f"{recruitment.study.slug}:hit:1"
    expires = timezone.now() + timedelta(hours=4)
    mturk.add_response(
        "create_hit_with_hit_type",
        {"HIT": {"HITId": "3NEWHIT", "HITStatus": "Assignable", "MaxAssignments": 9, "Expiration": expires}},
        expected_params={
            "HITTypeId": "HITTYPE1",
            "MaxAssignments": 9,
            "LifetimeInSeconds": 14400,
            "Question": question_xml(recruitment.study.slug),
            "RequesterAnnotation": token,
            "UniqueRequestToken": token,
        },
    )

    hit = services.create_hit(recruitment, mturk.client, 9)

    assert (hit.hit_id, hit.token, hit.state, hit.max_assignments) == ("3NEWHIT", token, HIT.State.CREATED, 9)
    assert hit.is_open(timezone.now())


def test_a_hit_created_by_an_earlier_attempt_is_adopted_from_mturks_refusal(mturk):
    recruitment = LaunchedRecruitmentFactory()
    hit = HIT.objects.create(
        recruitment=recruitment, sandbox=True, hit_type_id="HITTYPE1", token="t:hit:1", max_assignments=9
    )
    mturk.add_client_error(
        "create_hit_with_hit_type",
        service_error_code="RequestError",
        service_message="There is already a HIT with ID 3ABCDEFGHIJKLMNOPQRSTUVWXYZ012 for this token.",
        modeled_fields={
            "Message": "There is already a HIT with ID 3ABCDEFGHIJKLMNOPQRSTUVWXYZ012 for this token.",
            "TurkErrorCode": "AWS.MechanicalTurk.HitAlreadyExists",
        },
    )
    mturk.add_response(
        "get_hit",
        {"HIT": {"HITId": "3ABCDEFGHIJKLMNOPQRSTUVWXYZ012", "HITStatus": "Assignable", "MaxAssignments": 9}},
        expected_params={"HITId": "3ABCDEFGHIJKLMNOPQRSTUVWXYZ012"},
    )

    services.post_hit(hit, recruitment, mturk.client)

    hit.refresh_from_db()
    assert (hit.hit_id, hit.state) == ("3ABCDEFGHIJKLMNOPQRSTUVWXYZ012", HIT.State.CREATED)


def test_a_refused_hit_is_marked_failed_with_mturks_message(mturk):
    recruitment = LaunchedRecruitmentFactory()
    hit = HIT.objects.create(
        recruitment=recruitment, sandbox=True, hit_type_id="HITTYPE1", token="t:hit:1", max_assignments=9
    )
    mturk.add_client_error(
        "create_hit_with_hit_type", service_error_code="RequestError", service_message="Insufficient funds."
    )

    with pytest.raises(ServiceRefused, match="Insufficient funds"):
        services.post_hit(hit, recruitment, mturk.client)

    hit.refresh_from_db()
    assert hit.state == HIT.State.FAILED
    assert "Insufficient funds" in hit.last_error


def test_a_hit_unconfirmed_for_a_day_is_not_resent(mturk):
    recruitment = LaunchedRecruitmentFactory()
    hit = HIT.objects.create(
        recruitment=recruitment,
        sandbox=True,
        hit_type_id="HITTYPE1",
        token="t:hit:1",
        max_assignments=9,
        created_at=timezone.now() - timedelta(hours=25),
    )

    services.post_hit(hit, recruitment, mturk.client)

    hit.refresh_from_db()
    assert hit.state == HIT.State.FAILED
    assert "t:hit:1" in hit.last_error


def test_expiring_a_hit_sets_its_expiration_in_the_past(mturk):
    recruitment = LaunchedRecruitmentFactory()
    hit = HIT.objects.create(
        recruitment=recruitment, sandbox=True, hit_type_id="T", hit_id="3OPEN", token="t:1", max_assignments=9,
        state=HIT.State.CREATED, expires_at=timezone.now() + timedelta(hours=3),
    )
    mturk.add_response(
        "update_expiration_for_hit", {}, expected_params={"HITId": "3OPEN", "ExpireAt": services.EXPIRE_NOW}
    )

    assert services.expire_open_hits(recruitment) == 1
    hit.refresh_from_db()
    assert not hit.is_open(timezone.now())


def test_the_client_uses_mturks_endpoint_in_us_east_1(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sandbox, live = get_client(sandbox=True), get_client(sandbox=False)
    assert sandbox.meta.endpoint_url == "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
    assert live.meta.endpoint_url == "https://mturk-requester.us-east-1.amazonaws.com"
    assert sandbox.meta.region_name == "us-east-1"


def test_mturk_keys_of_their_own_override_the_aws_variables(monkeypatch, settings):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "minio-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "minio-secret")
    settings.MTURK_AWS_ACCESS_KEY_ID = "mturk-key"
    settings.MTURK_AWS_SECRET_ACCESS_KEY = "mturk-secret"
    credentials = get_client(sandbox=True)._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("mturk-key", "mturk-secret")
