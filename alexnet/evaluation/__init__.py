"""Evaluation: top-1/top-5 error with centre-patch or ten-patch testing."""
