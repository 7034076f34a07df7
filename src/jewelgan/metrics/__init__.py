"""jewelgan.metrics: offline evaluation of generated images.

features.py (Inception / EfficientNet-Lite0 extractors), resize.py, fid.py, kid.py, prdc.py,
inception_score.py, memorization.py, attributes.py (attribute classifier), cache.py (reference
statistics), api.py (evaluate_generator / evaluate_run). See docs/evaluation.md.
"""
