"""File readers (``read_*``): the real data formats of ``../shared/data`` and generic CSV.

Each reader turns a file into plain pandas/numpy objects with units in column names and
timezone-aware UTC timestamps, and raises :class:`wattroute.errors.DataFileError` (naming the
file, column and data row, and how to fix it) for anything it cannot read.

=======================  ==================================================================
reader                   file
=======================  ==================================================================
:func:`read_grid`        ``grid/ZONE_YEAR.csv``: hourly carbon intensity, mix, price
:func:`read_weather`     ``weather/ZONE_YEAR.csv``: hourly weather and site coordinates
:func:`read_solcast`     ``solar/solcast_normalized_5min_10_cities.csv``: 0..1 solar output
:func:`read_timeseries`  any CSV with a time column and numeric columns
:func:`read_latency_matrix`  ``network/latency_ms_between_zones.csv``
:func:`read_job_trace`   ``workloads/alibaba_pai_jobs_*.csv``: batch jobs
:func:`read_request_log` ``workloads/azure_llm_inference_conv_2023.csv``: request times
=======================  ==================================================================
"""

from wattroute.iotools.grid import read_grid
from wattroute.iotools.jobs import read_job_trace
from wattroute.iotools.latency import read_latency_matrix
from wattroute.iotools.requests import read_request_log
from wattroute.iotools.solar import read_solcast
from wattroute.iotools.timeseries import read_timeseries
from wattroute.iotools.weather import read_weather

__all__ = [
    "read_grid",
    "read_job_trace",
    "read_latency_matrix",
    "read_request_log",
    "read_solcast",
    "read_timeseries",
    "read_weather",
]
