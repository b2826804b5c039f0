"""wattroute: decide where and when AI workloads run across compute sites with variable power."""

__version__ = "0.1.0"
