"""The one result schema shared by evaluation, certification, training, report, MLflow and the gate.

``schema`` holds the versioned ``Result`` and its parts, ``sections`` its typed sections and detector
record, ``gallery`` the stored adversarial examples, ``readers`` the numbers the report, MLflow and the
gate take out of Results.
"""

from fortify.result.gallery import GalleryEntry
from fortify.result.schema import (
    SCHEMA_VERSION,
    AttackRecord,
    Calibration,
    Diagnostic,
    Environment,
    Result,
    SampleRecord,
    SchemaVersionError,
    Slice,
    Sweep,
    ThreatSpec,
)
from fortify.result.sections import (
    CertificationSection,
    CertifiedSample,
    DetectorRecord,
    Sections,
    TrainingSection,
)

__all__ = [
    "SCHEMA_VERSION",
    "SchemaVersionError",
    "Result",
    "ThreatSpec",
    "AttackRecord",
    "SampleRecord",
    "Diagnostic",
    "Slice",
    "Calibration",
    "Sweep",
    "Environment",
    "GalleryEntry",
    "Sections",
    "CertificationSection",
    "CertifiedSample",
    "TrainingSection",
    "DetectorRecord",
]
