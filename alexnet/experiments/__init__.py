"""The paper's experiments as commands (ablations; more to come: figures, Figure 1, retrieval)."""
