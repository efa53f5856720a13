"""The participant API is documented as OpenAPI at /api/v1/schema/."""

import yaml


def test_the_schema_documents_every_participant_call(client, db):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert set(schema["paths"]) == {
        "/api/v1/sessions",
        "/api/v1/sessions/{session_id}",
        "/api/v1/sessions/{session_id}/trial",
        "/api/v1/sessions/{session_id}/responses",
        "/api/v1/sessions/{session_id}/events",
        "/api/v1/sessions/{session_id}/complete",
    }


def test_the_schema_declares_bearer_tokens(client, db):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    assert schema["components"]["securitySchemes"]["sessionToken"]["scheme"] == "bearer"
