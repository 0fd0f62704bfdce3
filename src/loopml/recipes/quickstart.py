"""The quickstart: a workspace, real data and a recipe, ready to run.

The data is Seattle's weather 2012-2014 from an installed package; 2015 is
kept back as the "production" period that later stages replay as traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from loopml.recipes.sample_data import WEATHER_TARGET, weather_frame

__all__ = ["QUICKSTART_RECIPE", "prepare_quickstart"]

TRAIN_END = "2015-01-01"

QUICKSTART_RECIPE: dict[str, Any] = {
    "name": "rain-tomorrow",
    "experiment": "quickstart",
    "data": {
        "dataset": "seattle-weather",
        "source": "data/seattle_weather_2012_2014.csv",
        "target": WEATHER_TARGET,
        "time_column": "date",
        "contract": "weather.contract.yaml",
    },
    "split": {"method": "time", "test_size": 0.25, "validation_size": 0.2, "seed": 0},
    "train": {
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "params": {"max_iter": 100, "random_state": 0},
        "search": {
            "n_trials": 8,
            "metric": "roc_auc",
            "direction": "maximize",
            "seed": 0,
            "space": {
                "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
                "max_depth": {"type": "int", "low": 2, "high": 6},
                "min_samples_leaf": {"type": "int", "low": 10, "high": 60},
            },
        },
    },
    "evaluate": {"slices": ["season"]},
    "gates": [
        "roc_auc >= 0.65",
        {"metric": "roc_auc", "min": 0.5, "slice": "season"},
        {"fairness": "season", "metric": "roc_auc", "max_gap": 0.25},
        {"metric": "roc_auc", "max_regression": 0.02},
    ],
    "register": {"model": "rain-tomorrow", "alias_on_pass": "champion", "alias_on_fail": "challenger"},
}


#: What valid weather data looks like: physical limits, not the training sample's
#: extremes (an inferred contract would reject the first record-breaking day).
WEATHER_CONTRACT = """\
# The data contract of the quickstart data: checked at ingestion and training.
version: 1
target: rain_tomorrow
columns:
  date: {type: datetime, nullable: false, unique: true}
  precipitation: {type: float, nullable: false, min: 0.0, max: 500.0}
  temp_max: {type: float, nullable: false, min: -40.0, max: 50.0}
  temp_min: {type: float, nullable: false, min: -40.0, max: 50.0}
  wind: {type: float, nullable: false, min: 0.0, max: 60.0}
  weather: {type: category, nullable: false, categories: [drizzle, fog, rain, snow, sun], unseen: reject}
  month: {type: int, nullable: false, min: 1, max: 12}
  season: {type: category, nullable: false, categories: [autumn, spring, summer, winter], unseen: reject}
  rain_tomorrow: {type: int, nullable: false, min: 0, max: 1}
"""


def prepare_quickstart(root: str | Path) -> Path:
    """Write the training data and ``quickstart.yaml`` under ``root``; return the recipe path.

    Existing files are left alone, so a user's edits to the recipe survive a re-run.
    """
    root = Path(root)
    data_path = root / QUICKSTART_RECIPE["data"]["source"]
    if not data_path.exists():
        data_path.parent.mkdir(parents=True, exist_ok=True)
        frame = weather_frame(end=TRAIN_END)
        frame.to_csv(data_path, index=False, date_format="%Y-%m-%d")
    contract = root / QUICKSTART_RECIPE["data"]["contract"]
    if not contract.exists():
        contract.write_text(WEATHER_CONTRACT)
    recipe = root / "quickstart.yaml"
    if not recipe.exists():
        header = "# The continuous-training recipe of `loopml quickstart`; edit it and run `loopml run quickstart.yaml`.\n"
        recipe.write_text(header + yaml.safe_dump(QUICKSTART_RECIPE, sort_keys=False))
    return recipe
