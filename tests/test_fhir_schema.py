"""crsml's compiled check of the FHIR elements it reads, against ``fhir.resources`` (the R4B models).

The resources here are written by hand from the R4 specification's resource pages, not by crsml's
exporter. Where ``fhir.resources`` refuses an element crsml reads, crsml refuses it too, naming its
path; where ``fhir.resources`` is lax about the specification (a code outside a required value
set, a number written as a string), crsml is not, and those cases are listed with the rule.
"""

from __future__ import annotations

import copy

import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given, settings
from hypothesis import strategies as st

from crsml.adapters._fhir_schema import check

PATIENT_REF = {"reference": "Patient/p1"}
VALID = {
    "Patient": {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-1"}],
        "gender": "female",
        "birthDate": "1970-06-01",
        "_birthDate": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1970-06-01T14:35:45-05:00",
                }
            ]
        },
        "name": [{"family": "Chalmers"}],
    },
    "Observation": {
        "resourceType": "Observation",
        "id": "il6-1",
        "meta": {"lastUpdated": "2024-03-02T00:00:00Z"},
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "26881-3", "display": "Interleukin 6"}]},
        "subject": PATIENT_REF,
        "effectiveDateTime": "2024-03-01T08:00:00+01:00",
        "valueQuantity": {"value": 12.5, "comparator": "<", "unit": "pg/mL", "system": "http://unitsofmeasure.org"},
    },
    "MedicationAdministration": {
        "resourceType": "MedicationAdministration",
        "id": "toci-1",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "612865"}]
        },
        "subject": PATIENT_REF,
        "effectivePeriod": {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T11:00:00Z"},
        "dosage": {"dose": {"value": 8, "unit": "mg/kg"}},
    },
    "Procedure": {
        "resourceType": "Procedure",
        "id": "cart-1",
        "status": "completed",
        "code": {"text": "CAR-T infusion"},
        "subject": PATIENT_REF,
        "performedDateTime": "2024-02-28T09:00:00Z",
    },
    "Condition": {
        "resourceType": "Condition",
        "id": "crs-1",
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "783570004"}]},
        "subject": PATIENT_REF,
        "onsetDateTime": "2024-03-01",
        "abatementPeriod": {"start": "2024-03-05T00:00:00Z"},
    },
    "DeviceUseStatement": {
        "resourceType": "DeviceUseStatement",
        "id": "o2-1",
        "status": "completed",
        "subject": PATIENT_REF,
        "device": {"reference": "Device/nc-1"},
        "timingPeriod": {"start": "2024-03-01T12:00:00Z"},
    },
    "Device": {"resourceType": "Device", "id": "nc-1", "type": {"text": "nasal cannula"}},
}


def fhir_resources_accepts(resource: dict) -> bool:
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception:  # noqa: BLE001 - pydantic's ValidationError and fhir.resources' own
        return False
    return True


def changed(rt: str, path: tuple, value: object) -> dict:
    r = copy.deepcopy(VALID[rt])
    *up, last = path
    node = r
    for p in up:
        node = node[p]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return r


_DROP = object()


@pytest.mark.parametrize("rt", sorted(VALID))
def test_valid_resources_pass_both(rt):
    assert fhir_resources_accepts(VALID[rt])
    assert check(VALID[rt], rt) is None


# (resource type, path, value, the path crsml names): both refuse
BOTH_REFUSE = [
    ("Observation", ("status",), _DROP, "status"),
    ("Observation", ("code",), _DROP, "code"),
    ("Observation", ("status",), 1, "status"),
    ("Observation", ("id",), "two words", "id"),
    ("Observation", ("effectiveDateTime",), "2024-03-01T08:00:00", "effectiveDateTime"),  # a time needs a zone
    ("Observation", ("effectiveDateTime",), "yesterday", "effectiveDateTime"),
    ("Observation", ("valueQuantity", "value"), True, "valueQuantity.value"),
    ("Observation", ("code", "coding", 0, "code"), "", "code.coding[0].code"),
    ("Observation", ("code", "coding", 0, "code"), "a  b", "code.coding[0].code"),
    ("Observation", ("subject",), "Patient/p1", "subject"),
    ("Observation", ("category",), {"text": "laboratory"}, "category"),
    ("Observation", ("valueString",), "also a string", "value[x]"),
    ("Observation", ("effectiveInstant",), "2024-03-01T08:00:00Z", "effective[x]"),
    ("Observation", ("component",), [{"valueString": "no code"}], "component[0].code"),
    ("Patient", ("birthDate",), "1970-13-01", "birthDate"),
    ("Patient", ("gender",), 2, "gender"),
    ("Patient", ("_birthDate", "extension", 0, "valueDateTime"), "noon", "_birthDate.extension[0].valueDateTime"),
    ("MedicationAdministration", ("subject",), _DROP, "subject"),
    ("MedicationAdministration", ("status",), _DROP, "status"),
    ("MedicationAdministration", ("effectivePeriod", "start"), "2024-03-01T25:00:00Z", "effectivePeriod.start"),
    ("Procedure", ("performedDateTime",), "2024-02-30T09:00:00", "performedDateTime"),
    ("Condition", ("subject",), _DROP, "subject"),
    ("Condition", ("onsetPeriod",), {"start": "2024-03-01"}, "onset[x]"),
    ("DeviceUseStatement", ("device",), _DROP, "device"),
    ("Device", ("type",), [{"text": "nasal cannula"}], "type"),
]


@pytest.mark.parametrize(("rt", "path", "value", "at"), BOTH_REFUSE)
def test_what_fhir_resources_refuses_crsml_refuses_naming_the_element(rt, path, value, at):
    r = changed(rt, path, value)
    assert not fhir_resources_accepts(r)
    assert check(r, rt) == f"not a valid FHIR R4 resource (at {at})"


# crsml holds to the specification where fhir.resources coerces or does not look
STRICTER = [
    ("Observation", ("status",), "done", "status"),  # required binding: ObservationStatus
    ("Observation", ("valueQuantity", "value"), "12.5", "valueQuantity.value"),  # a decimal is a JSON number
    ("Observation", ("effectiveDateTime",), 20240301, "effectiveDateTime"),  # a dateTime is a JSON string
    ("Observation", ("valueQuantity", "comparator"), "~", "valueQuantity.comparator"),  # QuantityComparator
    ("Observation", ("id",), "a" * 65, "id"),  # an id is at most 64 characters
    ("MedicationAdministration", ("effectivePeriod",), _DROP, "effective[x]"),  # effective[x] 1..1
]


@pytest.mark.parametrize(("rt", "path", "value", "at"), STRICTER)
def test_crsml_refuses_what_the_specification_forbids_where_fhir_resources_is_lax(rt, path, value, at):
    assert check(changed(rt, path, value), rt) == f"not a valid FHIR R4 resource (at {at})"


def test_elements_crsml_does_not_read_are_not_its_to_refuse():
    r = changed("Observation", ("note",), [{"text": "haemolysed"}])
    r["extension"] = [{"url": "http://example.org/x", "valueString": "y"}]
    assert check(r, "Observation") is None


_PIECES = st.sampled_from(
    [
        "2024",
        "1999",
        "0000",
        "-",
        "03",
        "13",
        "00",
        "-31",
        "-32",
        "T",
        "08",
        "24",
        ":",
        "60",
        ".5",
        "Z",
        "+01:00",
        "+14:00",
        "+15:00",
        " ",
    ]  # fmt: skip
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_PIECES, min_size=1, max_size=10).map("".join))
def test_date_times_are_read_as_fhir_resources_reads_them(text):
    obs = changed("Observation", ("effectiveDateTime",), text)
    assert (check(obs, "Observation") is None) == fhir_resources_accepts(obs)
    patient = changed("Patient", ("birthDate",), text)
    assert (check(patient, "Patient") is None) == fhir_resources_accepts(patient)
