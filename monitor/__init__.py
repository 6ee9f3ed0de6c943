"""driftmon: catch silent behaviour changes in hosted LLMs."""

__version__ = "0.1.0"
