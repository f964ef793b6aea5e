"""The ``crsml`` command line (typer). One module per command group; no library logic here:
the commands compose the public API (read, train, log, export, score, explain, report)."""

# loaded on first use (lazy_loader), so that a command starts without importing what it does not run
import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
