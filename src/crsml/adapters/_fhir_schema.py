"""The elements of FHIR R4 resources that crsml reads, as msgspec structs compiled once.

``fhir.resources`` validates every element of a resource against the full R4B models, and did so at
about 3,000-6,000 resources/s here (35x plain ``json.loads``; issue #36). crsml reads a few dozen
elements of seven resource types, so those elements, and the ones the specification makes required
for those types, are validated here against the R4 datatypes (the regular expressions of the
specification's primitive types, https://hl7.org/fhir/R4/datatypes.html; required elements and
value sets from each resource's page): the same refusals for what crsml reads, in C. An element
crsml does not read is not checked. No maintained library validates a subset of FHIR at this speed
(fhir.resources, fhir-core and pydantic models of the whole specification are the ones there are),
which is why these structs are written out. ``tests/test_fhir_schema.py`` checks them against
``fhir.resources`` on valid and broken resources.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

# primitive types (R4 datatypes page), anchored: msgspec searches the pattern anywhere in the string
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_MONTH = r"(0[1-9]|1[0-2])"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
DateStr = Annotated[str, Meta(pattern=rf"^{_YEAR}(-{_MONTH}(-{_DAY})?)?$")]
DateTimeStr = Annotated[str, Meta(pattern=rf"^{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_ZONE})?)?)?$")]
InstantStr = Annotated[str, Meta(pattern=rf"^{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}$")]
IdStr = Annotated[str, Meta(pattern=r"^[A-Za-z0-9\-\.]{1,64}$")]
CodeStr = Annotated[str, Meta(pattern=r"^[^\s]+( [^\s]+)*$")]
UriStr = Annotated[str, Meta(pattern=r"^\S*$")]
Text = Annotated[str, Meta(min_length=1)]  # a FHIR string is never empty


class _Element(Struct, omit_defaults=True, kw_only=True):
    """Unknown elements are allowed: what crsml does not read is not its to refuse."""


class Coding(_Element):
    system: UriStr | None = None
    code: CodeStr | None = None
    display: Text | None = None


class CodeableConcept(_Element):
    coding: list[Coding] | None = None
    text: Text | None = None


class Reference(_Element):
    reference: Text | None = None


class Period(_Element):
    start: DateTimeStr | None = None
    end: DateTimeStr | None = None


class Quantity(_Element):
    value: float | None = None
    comparator: Literal["<", "<=", ">=", ">", "ad"] | None = None  # "ad": R5, written by some R4 servers
    unit: Text | None = None
    system: UriStr | None = None
    code: CodeStr | None = None


class Identifier(_Element):
    system: UriStr | None = None
    value: Text | None = None


class Extension(_Element):
    url: UriStr
    valueDateTime: DateTimeStr | None = None


class PrimitiveExtensions(_Element):
    extension: list[Extension] | None = None


class _Value(_Element, kw_only=True):
    """value[x] of an Observation or of one of its components (the types crsml reads)."""

    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: Text | None = None
    valueBoolean: bool | None = None
    valueInteger: int | None = None
    valueDecimal: float | None = None

    def values(self) -> int:
        """How many value[x] elements are given (at most one is valid)."""
        return _given(
            self.valueQuantity,
            self.valueCodeableConcept,
            self.valueString,
            self.valueBoolean,
            self.valueInteger,
            self.valueDecimal,
        )

    def _one_value(self) -> None:
        if self.values() > 1:
            raise ValueError("value[x]")


class Component(_Value, kw_only=True):
    code: CodeableConcept

    def __post_init__(self) -> None:
        self._one_value()


class _Resource(_Element, kw_only=True):
    id: IdStr | None = None


class Patient(_Resource, kw_only=True, tag_field="resourceType", tag=True):
    identifier: list[Identifier] | None = None
    gender: Literal["male", "female", "other", "unknown"] | None = None
    birthDate: DateStr | None = None
    birthDate_extensions: PrimitiveExtensions | None = msgspec.field(default=None, name="_birthDate")


class Observation(_Value, kw_only=True, tag_field="resourceType", tag=True):
    id: IdStr | None = None
    status: Literal[
        "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"
    ]
    code: CodeableConcept
    category: list[CodeableConcept] | None = None
    subject: Reference | None = None
    effectiveDateTime: DateTimeStr | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: InstantStr | None = None
    component: list[Component] | None = None

    def __post_init__(self) -> None:
        self._one_value()
        _one_of(self.effectiveDateTime, self.effectivePeriod, self.effectiveInstant, what="effective[x]")


class Dosage(_Element):
    dose: Quantity | None = None


class MedicationAdministration(_Resource, kw_only=True, tag_field="resourceType", tag=True):
    status: Literal["in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped", "unknown"]
    subject: Reference
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    effectiveDateTime: DateTimeStr | None = None
    effectivePeriod: Period | None = None
    dosage: Dosage | None = None

    def __post_init__(self) -> None:
        _one_of(self.medicationCodeableConcept, self.medicationReference, what="medication[x]", required=True)
        _one_of(self.effectiveDateTime, self.effectivePeriod, what="effective[x]", required=True)


class Procedure(_Resource, kw_only=True, tag_field="resourceType", tag=True):
    status: Literal[
        "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown"
    ]
    subject: Reference
    code: CodeableConcept | None = None
    performedDateTime: DateTimeStr | None = None
    performedPeriod: Period | None = None

    def __post_init__(self) -> None:
        _one_of(self.performedDateTime, self.performedPeriod, what="performed[x]")


class Condition(_Resource, kw_only=True, tag_field="resourceType", tag=True):
    subject: Reference
    code: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    onsetDateTime: DateTimeStr | None = None
    onsetPeriod: Period | None = None
    abatementDateTime: DateTimeStr | None = None
    abatementPeriod: Period | None = None
    recordedDate: DateTimeStr | None = None

    def __post_init__(self) -> None:
        _one_of(self.onsetDateTime, self.onsetPeriod, what="onset[x]")
        _one_of(self.abatementDateTime, self.abatementPeriod, what="abatement[x]")


class DeviceUseStatement(_Resource, kw_only=True, tag_field="resourceType", tag=True):
    status: Literal["active", "completed", "entered-in-error", "intended", "stopped", "on-hold"]
    subject: Reference
    device: Reference
    timingDateTime: DateTimeStr | None = None
    timingPeriod: Period | None = None
    recordedOn: DateTimeStr | None = None

    def __post_init__(self) -> None:
        _one_of(self.timingDateTime, self.timingPeriod, what="timing[x]")


class Device(_Resource, kw_only=True, tag_field="resourceType", tag=True):
    type: CodeableConcept | None = None


def _given(*values: object) -> int:
    """How many of ``values`` are given (not None); in C, as it runs for every resource."""
    return len(values) - values.count(None)


def _one_of(*values: object, what: str, required: bool = False) -> None:
    n = _given(*values)
    if n > 1:
        raise ValueError(what)  # more than one: the path is the choice element's
    if required and n == 0:
        raise ValueError(what)


MODELS: dict[str, type[Struct]] = {
    m.__name__: m
    for m in (Patient, Observation, MedicationAdministration, Procedure, Condition, DeviceUseStatement, Device)
}

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<at>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")


RESOURCE = Patient | Observation | MedicationAdministration | Procedure | Condition | DeviceUseStatement | Device
#: decodes and validates one resource's JSON in one pass (its type by ``resourceType``)
decode = msgspec.json.Decoder(RESOURCE).decode


def convert(resource: dict) -> Struct:
    """A resource already parsed (a Bundle entry's), validated as :data:`decode` does."""
    return msgspec.convert(resource, RESOURCE, strict=True)


def check(resource: dict, resource_type: str) -> str | None:
    """None if the elements crsml reads are valid FHIR R4, else where the first problem is.

    The answer names the path of the bad element (``status``, ``valueQuantity.value``,
    ``component[0].code``), never its value."""
    try:
        msgspec.convert(resource, MODELS[resource_type], strict=True)
    except msgspec.ValidationError as exc:
        m = _AT.match(str(exc))
        at = (m.group("at") or "") if m else ""
        if missing := _MISSING.search(str(exc)):
            at = f"{at}.{missing.group('field')}"
        at = at.lstrip(".") or (str(exc) if str(exc).endswith("[x]") else "")
        return f"not a valid FHIR R4 resource (at {at or 'the resource'})"
    return None
