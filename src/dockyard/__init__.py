"""dockyard: a Docker-compatible container engine."""

__version__ = "0.1.0"
API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
