"""Sessions (visits) as the unit of segmentation: Hits -> one row per session -> model-ready features.

Canonical hit table: ``Hits(session_id, user_id, hit_number, timestamp, page, event, revenue)``.
Sources: a seeded synthetic generator with five known behavioural types, a hit-level file, a
Google-Analytics-style export (fullVisitorId, visitId, visitStartTime, totals.*; several rows per visit), and a
file that already holds one row per session (e.g. UCI Online Shoppers Intention). Grain is enforced, not
assumed: hits are unique per (session_id, hit_number), sessions per session_id, and every source is aggregated
to one row per session before any join.

Modules: `config` (source and preprocessing configs), `table` (the session grain: validate and aggregate hits,
`SessionTable`, temporal split), `sources` (loaders), `synthetic` (the generator), `preprocessing`
(`SessionPreprocessor`). Everything public is importable from `recsys.data.sessions`.
"""

from recsys.data.sessions.config import (
    GA_DEFAULT_COLUMNS,
    SESSION_TYPES,
    GAExportConfig,
    HitsFileConfig,
    PreprocessConfig,
    SessionSourceConfig,
    SessionTableConfig,
    SyntheticSessionsConfig,
)
from recsys.data.sessions.preprocessing import SessionPreprocessor, feature_matrix
from recsys.data.sessions.sources import (
    GA_ACTIONS,
    load_ga_export,
    load_hits_file,
    load_session_table,
    load_sessions,
    read_frame,
    resolve_data_path,
)
from recsys.data.sessions.synthetic import CONTENT_PAGES, TYPE_PARAMS, generate_hits
from recsys.data.sessions.table import (
    HIT_COLUMNS,
    HIT_FEATURES,
    NON_PAGE_EVENTS,
    SessionTable,
    add_rates,
    aggregate_hits,
    check_unique,
    temporal_split,
    validate_hits,
)

__all__ = [
    "CONTENT_PAGES", "GA_ACTIONS", "GA_DEFAULT_COLUMNS", "HIT_COLUMNS", "HIT_FEATURES", "NON_PAGE_EVENTS",
    "SESSION_TYPES", "TYPE_PARAMS", "GAExportConfig", "HitsFileConfig", "PreprocessConfig", "SessionPreprocessor",
    "SessionSourceConfig", "SessionTable", "SessionTableConfig", "SyntheticSessionsConfig", "add_rates",
    "aggregate_hits", "check_unique", "feature_matrix", "generate_hits", "load_ga_export", "load_hits_file",
    "load_session_table", "load_sessions", "read_frame", "resolve_data_path", "temporal_split", "validate_hits",
]
