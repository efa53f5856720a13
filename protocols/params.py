"""A protocol's parameters: a frozen dataclass whose fields carry the admin form field that edits them.

One declaration serves three purposes: typed attributes for the protocol's
code, validation of the JSON a study stores (through the same form fields the
admin shows, so the admin and every other writer refuse the same values), and
the admin's inputs with the published values as defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Self, TypeVar

from django import forms

T = TypeVar("T")
FORM_FIELD = "form_field"


class ParamsError(ValueError):
    """Parameters that do not validate; `errors` maps each parameter to its messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {name: list(messages) for name, messages in errors.items()}
        super().__init__("; ".join(f"{name}: {' '.join(m)}" for name, m in self.errors.items()))


def param(default: T, form_field: forms.Field) -> T:
    """A parameter with its published default, edited and validated by form_field."""
    form_field.initial = default
    form_field.required = not isinstance(form_field, forms.BooleanField)
    result: T = dataclasses.field(default=default, metadata={FORM_FIELD: form_field})
    return result


_VALIDATED: dict[tuple[type[Params], str], Params] = {}
_VALIDATED_KEPT = 1024


@dataclasses.dataclass(frozen=True)
class Params:
    """Base class: subclasses are frozen dataclasses whose every field is declared with param()."""

    # Parameters that shape the rendered stimuli or what participants see, so
    # they stay fixed once a study is rendered; the others (check thresholds)
    # can still change.
    fixed_after_render: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def form_fields(cls) -> dict[str, forms.Field]:
        """Fresh form fields for every parameter, in declaration order, labelled by its name."""
        fields = {f.name: copy.deepcopy(f.metadata[FORM_FIELD]) for f in dataclasses.fields(cls)}
        for name, field in fields.items():
            field.label = field.label or name.replace("_", " ").capitalize()
        return fields

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Self:
        """Validated parameters from stored JSON; a missing parameter takes its default."""
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParamsError({name: ["not a parameter of this protocol"] for name in unknown})
        values = {**cls().to_json(), **data}
        form = forms.Form(data=values)
        form.fields = cls.form_fields()
        if not form.is_valid():
            raise ParamsError({name: [str(m) for m in messages] for name, messages in form.errors.items()})
        params = cls(**form.cleaned_data)
        params.validate()
        return params

    @classmethod
    def from_stored(cls, data: Mapping[str, Any] | None) -> Self:
        """from_json, remembered per distinct stored value: a study's parameters are read on every
        participant call, and validating them through the form fields costs more than the call's queries.
        Parameters are frozen, so one validated instance can serve every request."""
        key = (cls, json.dumps(data or {}, sort_keys=True))
        found = _VALIDATED.get(key)
        if found is None:
            if len(_VALIDATED) >= _VALIDATED_KEPT:
                _VALIDATED.clear()
            # A ParamsError is raised, not remembered, so parameters once mended are read afresh.
            found = _VALIDATED[key] = cls.from_json(data)
        assert isinstance(found, cls)
        return found

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Checks across parameters; raise ParamsError naming the parameter at fault."""
