"""The Python API's own classes: `Judge`, `Reviser`, `Server` and `run`, re-exported from `rlaif`.

They are a thin layer over the pipeline's stages and the judge engine, so a pair judged here and the
same pair judged in a run are judged the same way.
"""
