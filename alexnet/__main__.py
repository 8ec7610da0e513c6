"""`python -m alexnet` is the `alexnet` command."""

from .cli.entry import main

raise SystemExit(main())
