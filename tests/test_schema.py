"""The participant API is documented as OpenAPI at /api/v1/schema/, and the schema refuses what the server does."""

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from rest_framework import serializers

from experiments.api import serializers as s


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
        "/api/v1/sessions/{session_id}/calibration",
        "/api/v1/sessions/{session_id}/complete",
        "/api/v1/sessions/{session_id}/decline",
    }


def test_the_schema_declares_bearer_tokens(client, db):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    assert schema["components"]["securitySchemes"]["sessionToken"]["scheme"] == "bearer"


def request_serializers() -> list[type[serializers.Serializer]]:
    """The bodies the API reads, as the schema describes them: the answer has one variant per protocol that was
    registered when the process first made the schema."""
    return [
        s.SessionStartSerializer, s.EventSerializer, s.CalibrationSerializer, s.CompleteSerializer,
        *s.ANSWER_SCHEMA.serializers,
    ]


def component_name(serializer: type[serializers.Serializer]) -> str:
    return serializer.__name__.removesuffix("Serializer")


def ref_name(schema: dict) -> str:
    return schema["$ref"].rsplit("/", 1)[1]


def request_components(schema: dict) -> set[str]:
    """The components the calls' request bodies name, each variant of a oneOf on its own."""
    components, names = schema["components"]["schemas"], set()
    for operation in (operation for path in schema["paths"].values() for operation in path.values()):
        if "requestBody" in operation:
            name = ref_name(operation["requestBody"]["content"]["application/json"]["schema"])
            names |= {ref_name(variant) for variant in components[name].get("oneOf", [])} or {name}
    return names


def refuses_blank(field: serializers.Field) -> bool:
    try:
        field.run_validation("")
    except serializers.ValidationError:
        return True
    return False


def test_the_bodies_checked_below_are_every_request_body_of_the_schema(client, db):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    assert request_components(schema) == {component_name(serializer) for serializer in request_serializers()}


def test_no_blank_string_the_server_refuses_is_valid_by_the_schema(client, db):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    valid_by_schema = []
    for serializer in request_serializers():
        properties = schema["components"]["schemas"][component_name(serializer)]["properties"]
        for name, field in serializer().fields.items():
            # Each property checked on its own, its $refs resolved against the schema's components.
            checker = Draft202012Validator(
                {**properties[name], "components": schema["components"]}, format_checker=FormatChecker()
            )
            if refuses_blank(field) and checker.is_valid(""):
                valid_by_schema.append(f"{component_name(serializer)}.{name}")
    assert valid_by_schema == []
