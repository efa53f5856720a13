"""Setting up a model and a pool in the admin without reading code: choices from what is installed, and
validation by building the network and opening the pool before anything is rendered."""

from __future__ import annotations

import re

from stimuli.models import ImagePool, VisionModel
from tests.factories import ImagePoolFactory, StudyFactory

ARCH = "vit_tiny_patch16_224"


def add_model(admin_client, **fields: str):
    data = {"name": "tiny", "timm_name": ARCH, "weights": "pretrained", "checkpoint_path": "", "layers": "[]"}
    return admin_client.post("/admin/stimuli/visionmodel/add/", {**data, **fields})


def test_the_architecture_is_chosen_from_timms_installed_list(admin_client, db):
    page = admin_client.get("/admin/stimuli/visionmodel/add/").content.decode()
    assert f'<option value="{ARCH}">' in page and '<option value="resnet18">' in page


def test_a_model_is_saved_once_its_network_builds_with_its_layers(admin_client, db):
    response = add_model(admin_client, layers='["blocks.0", "blocks.11"]')
    assert response.status_code == 302
    assert VisionModel.objects.get(name="tiny").layers == ["blocks.0", "blocks.11"]


def test_an_empty_layer_list_shows_the_layers_imis_rule_picks(admin_client, db):
    add_model(admin_client)
    model = VisionModel.objects.get(name="tiny")
    page = admin_client.get(f"/admin/stimuli/visionmodel/{model.pk}/change/").content.decode()
    assert all(f"<code>blocks.{i}.mlp.act</code>" in page for i in range(12))


def test_a_layer_the_network_lacks_is_refused_with_the_layers_that_qualify(admin_client, db):
    response = add_model(admin_client, layers='["blocks.99"]')
    assert response.status_code == 200
    assert "has no layers blocks.99; IMI&#x27;s rule picks blocks.0.mlp.act" in response.content.decode()
    assert not VisionModel.objects.exists()


def test_a_missing_checkpoint_is_refused(admin_client, db, tmp_path):
    response = add_model(admin_client, weights="checkpoint", checkpoint_path=str(tmp_path / "none.pt"))
    assert "Cannot read the weights of tiny" in response.content.decode()
    assert not VisionModel.objects.exists()


def test_a_pool_folder_that_does_not_exist_is_refused(admin_client, db, tmp_path):
    data = {"name": "photos", "source": "folder", "location": str(tmp_path / "missing"), "size": 0, "seed": 0}
    response = admin_client.post("/admin/stimuli/imagepool/add/", data)
    assert "This pool cannot be opened" in response.content.decode()
    assert not ImagePool.objects.exists()


def test_a_pools_page_shows_its_image_count(admin_client, db):
    data = {"name": "crops", "source": "skimage_crops", "location": "", "size": 50, "seed": 0}
    assert admin_client.post("/admin/stimuli/imagepool/add/", data).status_code == 302
    pool = ImagePool.objects.get(name="crops")
    page = admin_client.get(f"/admin/stimuli/imagepool/{pool.pk}/change/").content.decode()
    assert re.search(r'<div class="readonly">50</div>', page)


def test_the_study_page_sets_the_pools_size_beside_what_the_design_needs(admin_client, db):
    study = StudyFactory(image_pool=ImagePoolFactory(source="skimage_crops", size=64), params={"difficulty": "easy"})
    page = admin_client.get(f"/admin/experiments/study/{study.pk}/change/").content.decode()
    match = re.search(r"64 images in \S+; this design needs at least (\d+) \(([^)]+)\)", page)
    assert match, page[page.find("pool size") - 200: page.find("pool size") + 400]
    needed, verdict = int(match.group(1)), match.group(2)
    assert verdict == ("enough" if needed <= 64 else "too few: render would fail")
