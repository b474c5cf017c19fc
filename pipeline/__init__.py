"""Outcomes reporting pipeline for ketamine-infusion clinics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ketamine-outcomes")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"
