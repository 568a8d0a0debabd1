"""The pipeline's stages: respond, critique/revise, the judge stage, pairs, export, summary, and `run`
composing them."""
