"""The `alexnet` command line."""
