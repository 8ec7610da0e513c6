"""Pictures from arrays: charts with matplotlib (charts.py), image grids and probability bars with Pillow.

Nothing here knows about runs or checkpoints; `figures/` and the experiments decide what to draw.
"""
