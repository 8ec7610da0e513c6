"""Pictures from arrays, on Pillow alone: charts, kernel grids, image tiles and probability bars.

Nothing here knows about runs or checkpoints; `figures/` and the experiments decide what to draw.
"""
