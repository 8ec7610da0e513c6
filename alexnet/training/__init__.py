"""Training: the paper's SGD rule, its learning-rate schedule, checkpoints and the loop."""
