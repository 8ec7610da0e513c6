"""Data: image folders in, prepared arrays and statistics out, and batches with the paper's augmentation."""
