"""Dataset versions: read CSV / Parquet / DataFrame / SQL into canonical Parquet plus a profile.

    >>> rec = ingest(ws, "weather.csv", "weather")      # -> DatasetVersionRecord (weather@1)
    >>> df = load_frame(ws, "weather@1")
"""

from loopml.ingest._contract_seed import contract_from_profile
from loopml.ingest._profile import PROFILE_FORMAT, PROFILE_VERSION, profile_frame, profile_table
from loopml.ingest._records import DatasetRecord, DatasetVersionRecord, parse_ref
from loopml.ingest._service import (
    get_dataset_version,
    ingest,
    list_datasets,
    list_versions,
    load_frame,
    load_table,
)

__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "DatasetRecord",
    "DatasetVersionRecord",
    "contract_from_profile",
    "get_dataset_version",
    "ingest",
    "list_datasets",
    "list_versions",
    "load_frame",
    "load_table",
    "parse_ref",
    "profile_frame",
    "profile_table",
]
