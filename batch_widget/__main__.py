"""``python -m batch_widget``: the ``batch-widget`` command line (see :mod:`batch_widget.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
