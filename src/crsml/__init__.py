"""crsml: landmark prediction of CRS severity, duration and tocilizumab benefit after CD19 CAR-T."""

from crsml._version import __version__

__all__ = ["__version__"]
