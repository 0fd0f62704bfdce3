"""Real data that ships with an installed package: no download at run time.

Seattle's daily weather 2012-2015 (NOAA via the ``vega_datasets`` package).
The task: will it rain tomorrow? Features are today's measurements; the
season is a slice, and the later years are a natural "production" period.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.kernel.exceptions import DataError, MissingExtraError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["WEATHER_TARGET", "weather_csv_path", "weather_frame"]

WEATHER_TARGET = "rain_tomorrow"
_SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
            6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}


def weather_csv_path() -> Path:
    """The CSV file inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec("vega_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("vega_datasets", "all", "the quickstart data set")
    path = Path(next(iter(spec.submodule_search_locations))) / "_data" / "seattle-weather.csv"
    if not path.is_file():
        raise DataError(f"the quickstart data file is missing from the installed package: {path}")
    return path


def weather_frame(start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Daily rows with today's weather and the label ``rain_tomorrow`` (0/1).

    ``start``/``end`` (ISO dates, end exclusive) cut a period, e.g. the
    training years or a later "production" period to replay.
    """
    import pandas as pd

    df = pd.read_csv(weather_csv_path(), parse_dates=["date"])
    df[WEATHER_TARGET] = (df["precipitation"].shift(-1) > 0).astype("int64")
    df = df.iloc[:-1]  # the last day has no tomorrow
    df["month"] = df["date"].dt.month.astype("int64")
    df["season"] = df["month"].map(_SEASONS).astype(str)
    df["weather"] = df["weather"].astype(str)
    if start:
        df = df[df["date"] >= pd.Timestamp(start)]
    if end:
        df = df[df["date"] < pd.Timestamp(end)]
    cols = ["date", "precipitation", "temp_max", "temp_min", "wind", "weather", "month", "season", WEATHER_TARGET]
    return df[cols].reset_index(drop=True)
