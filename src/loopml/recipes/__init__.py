"""Recipes: the continuous-training pipeline, declared in YAML or Python."""

from loopml.recipes._run import RecipeResult, check_spec, recipe_params, recipe_pipeline, run_recipe, submit_recipe
from loopml.recipes.quickstart import QUICKSTART_RECIPE, prepare_quickstart
from loopml.recipes.spec import RecipeSpec, load_spec, parse_spec

__all__ = [
    "QUICKSTART_RECIPE",
    "RecipeResult",
    "RecipeSpec",
    "check_spec",
    "load_spec",
    "parse_spec",
    "prepare_quickstart",
    "recipe_params",
    "recipe_pipeline",
    "run_recipe",
    "submit_recipe",
]
