"""The study form of the admin: the study's columns, plus its protocol's parameters as fields of their own."""

from __future__ import annotations

from typing import Any

from django import forms

from experiments.models import Study
from protocols import DEFAULT_PROTOCOL, NotImplementedProtocol, get_protocol
from protocols.base import Protocol
from protocols.params import ParamsError

PARAM_PREFIX = "param_"


def stored_protocol(study: Study) -> Protocol[Any]:
    """The protocol whose parameters the form shows: the study's, or the default one for a new or
    unimplemented study (whose save is then refused by Study.clean)."""
    try:
        return get_protocol(study.protocol or DEFAULT_PROTOCOL)
    except NotImplementedProtocol:
        return get_protocol(DEFAULT_PROTOCOL)


def param_field_names(study: Study) -> list[str]:
    return [PARAM_PREFIX + name for name in stored_protocol(study).params_class.form_fields()]


class StudyForm(forms.ModelForm):
    """Parameters left blank take their published defaults. Once a study has stimuli, what shaped
    them or what participants see is disabled (Study.FIXED_AFTER_RENDER and the protocol's own)."""

    class Meta:
        model = Study
        exclude = ("params",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.protocol = stored_protocol(self.instance)
        params_class = self.protocol.params_class
        try:
            current = self.protocol.params(self.instance.params)
        except ParamsError:
            current = params_class()
        for name, field in params_class.form_fields().items():
            field.required = False
            field.initial = getattr(current, name)
            self.fields[PARAM_PREFIX + name] = field
        if self.instance.has_stimuli:
            fixed = [*Study.FIXED_AFTER_RENDER, *(PARAM_PREFIX + name for name in params_class.fixed_after_render)]
            for name in fixed:
                if name in self.fields:
                    self.fields[name].disabled = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        values = {
            name[len(PARAM_PREFIX):]: cleaned.pop(name)
            for name in list(cleaned)
            if name.startswith(PARAM_PREFIX)
        }
        if cleaned.get("protocol", self.protocol.name) != self.protocol.name:
            # Another protocol has other parameters: it starts from its defaults.
            self.instance.params = {}
            return cleaned
        defaults = self.protocol.params_class().to_json()
        filled = {name: defaults[name] if value in (None, "") else value for name, value in values.items()}
        try:
            self.protocol.params(filled)
        except ParamsError as exc:
            for name, messages in exc.errors.items():
                self.add_error(PARAM_PREFIX + name, messages)
        self.instance.params = filled
        return cleaned
