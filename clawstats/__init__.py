"""clawstats: live per-session statistics for OpenClaw session stores."""

__version__ = "0.1.0"
__all__ = ["__version__"]
