"""``python -m batch_widget.simulator --port PORT ...``: see :func:`run_simulator`."""

from .cli import run_simulator

if __name__ == "__main__":
    raise SystemExit(run_simulator())
