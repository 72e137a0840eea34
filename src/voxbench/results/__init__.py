"""Results: the document model (re-exported here), the run folder, statistics, the metric
catalogue and the store."""

from voxbench.results.document import (
    SCHEMA_VERSION,
    Case,
    ColdStart,
    EngineRef,
    Environment,
    ErrorRecord,
    Gpu,
    LoadResult,
    QualityScore,
    QualitySettings,
    ResultDocument,
    RunConfig,
    Samples,
    StageSummary,
    Summary,
    load_document,
)

__all__ = [
    "SCHEMA_VERSION",
    "Case",
    "ColdStart",
    "EngineRef",
    "Environment",
    "ErrorRecord",
    "Gpu",
    "LoadResult",
    "QualityScore",
    "QualitySettings",
    "ResultDocument",
    "RunConfig",
    "Samples",
    "StageSummary",
    "Summary",
    "load_document",
]
