"""`python -m mock_server serve ...` is `insights-mock serve ...`."""

from .cli import main

raise SystemExit(main())
