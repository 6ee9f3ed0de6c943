"""Drift detection: metrics from stored results, paired statistical tests, verdicts.

model.py     the types passed between the pieces (observations, metric data, verdicts)
settings.py  the [drift] settings and their defaults (justified in docs/statistics.md)
metrics.py   observations -> per-metric, per-probe-version values
tests.py     the statistical tests (stratified by probe version)
decide.py    multiplicity, floors, minimum sizes, persistence -> verdicts
evaluate.py  the pure evaluation: baseline + current observations -> Evaluation
engine.py    windows and baselines from SQL, identity events, stored evaluations
"""
