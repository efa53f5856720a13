"""Hand-picked practice and catch trials (IMI: "hand-picked practice trials", "catch trials with obvious,
hand-picked stimuli"), picked in the admin seeing the trials as images; the automatic choice stays the default."""

import pytest
from django.core.exceptions import ValidationError

from experiments.copies import copy_study
from experiments.export.bundle import datasheet
from experiments.models import Session, SessionTrial, Study, Trial
from experiments.services import pick_trials
from tests.builders import build_2afc_study
from tests.conftest import Participant


@pytest.fixture
def bank(db):
    """Another rendered 2-AFC study, kept for its obvious trials."""
    return build_2afc_study(n_units=6, slug="obvious-bank")


def planned(participant: Participant, phase: str) -> list[SessionTrial]:
    return list(SessionTrial.objects.filter(session_id=participant.id, phase=phase).select_related("trial"))


def test_without_picks_a_session_practises_on_the_studys_own_trials(participant):
    participant.through_instructions()
    practice = planned(participant, Session.Phase.PRACTICE)
    assert {row.trial for row in practice} == set(Trial.objects.filter(study=participant.study, kind="practice"))


def test_hand_picked_practice_trials_from_another_study_are_the_practice_round(study, bank):
    picks = list(Trial.objects.filter(study=bank, kind="main")[:3])
    pick_trials(study, "practice", [trial.pk for trial in picks])
    participant = Participant(study)
    participant.start()
    participant.through_instructions()
    assert sorted(row.trial_id for row in planned(participant, Session.Phase.PRACTICE)) == sorted(t.pk for t in picks)
    participant.pass_practice()
    assert participant.session.phase == Session.Phase.MAIN


def test_hand_picked_catch_trials_are_the_main_blocks_catch_trials(study, bank):
    picks = list(Trial.objects.filter(study=bank, kind="catch")[: study.n_catch_trials])
    pick_trials(study, "catch", [trial.pk for trial in picks])
    participant = Participant(study)
    participant.start()
    participant.through_instructions()
    participant.pass_practice()
    catch = [row.trial_id for row in planned(participant, Session.Phase.MAIN) if row.trial.kind == "catch"]
    assert sorted(catch) == sorted(trial.pk for trial in picks)


def test_unticking_every_pick_gives_the_automatic_choice_back(study, bank):
    pick_trials(study, "practice", [Trial.objects.filter(study=bank, kind="main").first().pk])
    assert pick_trials(study, "practice", []) == 0
    assert not study.practice_trials.exists()


@pytest.mark.parametrize(
    "purpose, kind, message",
    [("catch", "main", "Catch trials are picked among catch trials."),
     ("practice", "catch", "Practice trials are picked among practice and main trials.")],
)
def test_a_pick_of_the_wrong_kind_is_refused(study, bank, purpose, kind, message):
    trials = Trial.objects.filter(study=bank, kind=kind)[: study.n_catch_trials]
    with pytest.raises(ValidationError, match=message):
        pick_trials(study, purpose, [trial.pk for trial in trials])
    assert not getattr(study, f"{purpose}_trials").exists()


def test_too_few_catch_trials_are_refused(study, bank):
    one = Trial.objects.filter(study=bank, kind="catch").first()
    with pytest.raises(ValidationError, match="Pick at least 5 catch trials"):
        pick_trials(study, "catch", [one.pk])


def test_trials_of_another_protocol_are_refused(study, bank):
    Study.objects.filter(pk=bank.pk).update(protocol="rating")
    trial = Trial.objects.filter(study=bank, kind="main").first()
    with pytest.raises(ValidationError, match="Only trials of 2afc studies"):
        pick_trials(study, "practice", [trial.pk])


def test_the_admin_shows_candidate_trials_as_images_and_saves_the_ticked_ones(admin_client, study, bank):
    url = f"/admin/experiments/study/{study.pk}/trials/?from={bank.pk}"
    page = admin_client.get(url).content.decode()
    catch = Trial.objects.filter(study=bank, kind="catch").prefetch_related("images__image")
    for trial in catch:
        assert f'name="trial" value="{trial.pk}"' in page
        for image in trial.images.all():
            assert image.image.file in page
    response = admin_client.post(url, {"purpose": "catch", "trial": [t.pk for t in catch[:5]]})
    assert response.status_code == 302
    assert set(study.catch_trials.all()) == set(catch[:5])
    page = admin_client.get(url).content.decode()
    assert "Catch trials: 5 hand-picked" in page and "Practice trials: automatic" in page


def test_the_admin_says_why_a_pick_is_refused(admin_client, study, bank):
    url = f"/admin/experiments/study/{study.pk}/trials/?from={bank.pk}"
    one = Trial.objects.filter(study=bank, kind="catch").first()
    page = admin_client.post(url, {"purpose": "catch", "trial": [one.pk]}, follow=True).content.decode()
    assert "Pick at least 5 catch trials" in page and not study.catch_trials.exists()


def test_a_copy_keeps_the_picks_its_own_trials_becoming_the_copys(study, bank):
    own = Trial.objects.filter(study=study, kind="catch")[:3]
    borrowed = Trial.objects.filter(study=bank, kind="catch")[:2]
    pick_trials(study, "catch", [t.pk for t in [*own, *borrowed]])
    copy = copy_study(study, "copy")
    assert {t.study_id for t in copy.catch_trials.all()} == {copy.pk, bank.pk}
    assert set(copy.catch_trials.filter(study=bank)) == set(borrowed)
    assert copy.catch_trials.filter(study=copy).count() == 3


def test_the_datasheet_names_the_hand_picked_trials(study, bank, tmp_path):
    trial = Trial.objects.filter(study=bank, kind="main").select_related("unit").first()
    pick_trials(study, "practice", [trial.pk])
    [sheet] = datasheet([study])["studies"]
    assert sheet["practice_trials"] == [
        {"study": "obvious-bank", "layer": trial.unit.layer, "channel": trial.unit.channel, "kind": "main", "batch": 0}
    ]
    assert sheet["catch_trials"] == []
