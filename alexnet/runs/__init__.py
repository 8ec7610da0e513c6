"""A training run and what is read back from it, shared by training, evaluation, figures and export.

- checkpoint.py: the checkpoint file (written atomically, read with weights_only);
- writer.py: the run folder's files (config.json, last.pt, metrics.csv) and reading metrics back;
- trained.py: a trained network rebuilt for inference, with its own preprocessing;
- inference.py: the one inference routine (views -> averaged softmax) and top-k errors.
"""
