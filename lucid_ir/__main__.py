"""``python -m lucid_ir`` is the ``lucid-ir`` command."""
from .cli import main

raise SystemExit(main())
