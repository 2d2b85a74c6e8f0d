"""One predictor module per task (the recommend predictor is `recsys.serving.predictor.RecommendPredictor`).

`recsys.serving.predictor.load_predictor` imports `recsys.serving.predictors.<task>` for the task named in a model
folder's pyfunc.json; each module registers its class with `@predictor(<task>)`.
"""
