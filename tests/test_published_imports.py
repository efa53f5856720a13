"""Published datasets in: Borowski et al. 2021's released CSVs and the IMI responses layout become
studies, and `analyze --json` gives the published numbers from them."""

import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analysis.bundle import read_bundle
from analysis.study import analyze_studies, to_json
from experiments.models import Response, Session, Study

DATA = Path(__file__).parent / "data"
EXPERIMENT_I = DATA / "borowski2021" / "experiment_I_main_practice_catch_repeated_trials_preprocessed.csv.gz"
EXPERIMENT_II = DATA / "borowski2021" / "experiment_II_main_practice_catch_trials_preprocessed.csv.gz"
IMI = DATA / "imi" / "responses.csv"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def analysis_of(*slugs: str) -> dict[str, dict]:
    result = json.loads(run("analyze", *slugs, "--json", "--resamples", "500"))
    return {study["name"]: study for study in result["studies"]}


@pytest.fixture
def experiment_i(db):
    run("import_responses", "--format", "borowski2021", str(EXPERIMENT_I))
    return analysis_of()


def test_experiment_i_reproduces_the_published_natural_and_synthetic_scores(experiment_i):
    natural = experiment_i["borowski2021-exp1-natural"]["participants"]
    synthetic = experiment_i["borowski2021-exp1-synthetic"]["participants"]
    # Published: natural 0.92 +- 0.02, synthetic 0.82 +- 0.04 (mean over participants +- 1.96 SEM).
    assert (round(natural["mean"], 2), round(natural["half_width"], 2)) == (0.92, 0.02)
    assert (round(synthetic["mean"], 2), round(synthetic["half_width"], 2)) == (0.82, 0.04)
    assert natural["mean"] == pytest.approx(0.922, abs=5e-4)
    assert natural["half_width"] == pytest.approx(0.0175, abs=5e-4)
    assert synthetic["mean"] == pytest.approx(0.820, abs=5e-4)
    assert synthetic["half_width"] == pytest.approx(0.042, abs=5e-4)
    assert (natural["n_participants"], natural["n_responses"]) == (10, 450)


def test_experiment_i_counts_main_non_catch_trials_only(experiment_i):
    rows = experiment_i["borowski2021-exp1-natural"]["rows"]
    assert rows["n_responses"] == 450
    assert rows["excluded_responses"] == {"not main phase": 50, "catch trials": 90}


def test_repeated_trials_are_kept_in_studies_of_their_own(experiment_i):
    assert experiment_i["borowski2021-exp1-natural-repeated"]["rows"]["n_responses"] == 60
    assert Response.objects.filter(session__study__slug__startswith="borowski2021-exp1").count() == 1860


def test_experiment_i_units_have_googlenet_depths(experiment_i):
    units = experiment_i["borowski2021-exp1-natural"]["units"]
    assert len(units) == 45
    assert {u["layer"] for u in units} >= {"inception3a.1x1", "inception5b.pool"}
    assert {u["relative_depth"] for u in units} == {i / 8 for i in range(9)}


EXPERIMENT_II_PUBLISHED = {
    # condition: (mean, 1.96 SEM), over the 23 participants, main non-catch trials
    "natural-max-1": (0.730, 0.041), "natural-max-9": (0.811, 0.035),
    "natural-min-max-1": (0.837, 0.047), "natural-min-max-9": (0.909, 0.034),
    "synthetic-max-1": (0.652, 0.053), "synthetic-max-9": (0.667, 0.036),
    "synthetic-min-max-1": (0.759, 0.054), "synthetic-min-max-9": (0.717, 0.042),
}


def test_experiment_ii_gives_every_condition(db):
    run("import_responses", "--format", "borowski2021", str(EXPERIMENT_II))
    studies = analysis_of()
    for condition, (mean, half_width) in EXPERIMENT_II_PUBLISHED.items():
        summary = studies[f"borowski2021-exp2-{condition}"]["participants"]
        assert (summary["mean"], summary["half_width"]) == pytest.approx((mean, half_width), abs=6e-4), condition
        assert summary["n_participants"] == 23


def test_a_file_without_the_published_columns_is_refused(db, tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("subject_id,trial_nr\n1,0\n")
    with pytest.raises(CommandError, match="lacks the columns instr_type"):
        run("import_responses", "--format", "borowski2021", str(wrong))
    assert not Study.objects.exists()


def test_a_file_that_is_not_csv_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read it as CSV"):
        run("import_responses", "--format", "borowski2021", str(tmp_path / "missing.csv"))


def test_imi_responses_become_one_study_per_model_and_condition(db):
    run("import_responses", "--format", "imi", str(IMI))
    assert sorted(Study.objects.values_list("slug", flat=True)) == ["imi-googlenet-natural", "imi-resnet50-natural"]
    study = Study.objects.get(slug="imi-resnet50-natural")
    assert study.sessions.count() == 3 and study.sessions.filter(passed=False).count() == 1
    assert Response.objects.filter(session__study=study).count() == 27


def test_imi_unit_scores_are_the_passing_main_non_catch_means(db):
    run("import_responses", "--format", "imi", str(IMI))
    resnet = analysis_of("imi-resnet50-natural")["imi-resnet50-natural"]
    # Passing sessions 0 and 1; a trial is wrong where (unit + batch + session) % 4 == 0.
    assert {(u["layer"], u["score"]) for u in resnet["units"]} == {
        ("layer1_0_conv1", 0.75), ("layer2_1_conv2", 1.0), ("layer4_2_conv3", 0.75),
    }
    assert resnet["rows"]["excluded_sessions"] == {"failed checks (not recorded)": 1}
    assert resnet["rows"]["excluded_responses"]["catch trials"] == 3


def test_imi_format_takes_one_file(db):
    with pytest.raises(CommandError, match="reads one file, not 2"):
        run("import_responses", "--format", "imi", str(IMI), str(IMI))


def test_an_imi_file_without_its_columns_is_refused(db, tmp_path):
    wrong = tmp_path / "imi.csv"
    shutil.copy(IMI, wrong)
    wrong.write_text(wrong.read_text().replace("passed_checks", "passed"))
    with pytest.raises(CommandError, match="lacks the columns passed_checks"):
        run("import_responses", "--format", "imi", str(wrong))


def test_a_bundle_of_an_imported_dataset_gives_the_same_analysis_in_a_notebook_and_after_import(experiment_i,
                                                                                              tmp_path):
    bundle = tmp_path / "dataset.zip"
    call_command("export_dataset", "borowski2021-exp1-natural", "--output", str(bundle), stdout=io.StringIO())
    tables = read_bundle(bundle)
    notebook = to_json(analyze_studies(tables.responses, tables.units, tables.sessions, n_resamples=500))
    [in_notebook] = notebook["studies"]
    run("import_responses", str(bundle))
    reimported = analysis_of("borowski2021-exp1-natural-imported")["borowski2021-exp1-natural-imported"]
    original = experiment_i["borowski2021-exp1-natural"]
    for result in (in_notebook, reimported):
        assert result["participants"] == original["participants"]
        assert result["model_score"] == original["model_score"]
        assert result["depth_correlation"]["rho"] == pytest.approx(original["depth_correlation"]["rho"])
    assert Session.objects.filter(study__slug="borowski2021-exp1-natural-imported").count() == 10
