"""`python -m alexnet` is the `alexnet` command."""

from .cli.main import main

raise SystemExit(main())
