"""The participant page over plain HTTP: who may frame it."""


def test_only_mturk_worker_sites_may_frame_the_participant_page(client, study):
    response = client.get(f"/s/{study.slug}/?participant=p1")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    policy = response.headers["Content-Security-Policy"]
    assert policy == (
        "frame-ancestors 'self' https://www.mturk.com https://workersandbox.mturk.com"
    )


def test_the_admin_may_not_be_framed(client, db):
    assert client.get("/admin/login/").headers["X-Frame-Options"] == "DENY"


def test_an_unknown_study_page_is_not_found(client, db):
    assert client.get("/s/nope/").status_code == 404
