"""Tests of the file readers: the real files in ../shared/data, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.builders import SHARED_DATA, needs_shared_data
from wattroute.errors import DataFileError, InputError
from wattroute.iotools import (
    read_grid,
    read_job_trace,
    read_latency_matrix,
    read_request_log,
    read_solcast,
    read_timeseries,
    read_weather,
)

DATA = SHARED_DATA
needs_data = needs_shared_data()

GRID_COLUMNS = [
    "carbon_intensity_g_per_kwh",
    "carbon_intensity_lca_g_per_kwh",
    "low_carbon_pct",
    "renewable_pct",
    "price_usd_per_mwh",
]


def assert_utc_index(index: pd.Index) -> None:
    assert isinstance(index, pd.DatetimeIndex)
    assert str(index.tz) == "UTC"
    assert index.name == "timestamp"


# --------------------------------------------------------------------------- real files


@pytest.mark.shared_data
@needs_data
@pytest.mark.parametrize("path", sorted(DATA.glob("grid/*.csv")), ids=lambda p: p.stem)
def test_read_grid_real_year_is_8760_hourly_utc_rows(path: Path) -> None:
    frame = read_grid(path)
    year = int(path.stem[-4:])
    assert frame.shape == (8760, 5)
    assert list(frame.columns) == GRID_COLUMNS
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert_utc_index(frame.index)
    assert frame.index[0] == pd.Timestamp(f"{year}-01-01T00:00Z")
    assert frame.index[-1] == pd.Timestamp(f"{year}-12-31T23:00Z")
    assert (np.diff(frame.index.to_numpy()) == np.timedelta64(1, "h")).all()
    carbon = frame["carbon_intensity_g_per_kwh"]
    assert carbon.notna().all()
    assert ((carbon >= 0) & (carbon < 1500)).all()
    assert (frame["carbon_intensity_lca_g_per_kwh"] >= carbon).all()
    shares = frame[["low_carbon_pct", "renewable_pct"]].to_numpy()
    assert ((shares >= 0) & (shares <= 100)).all()


@pytest.mark.shared_data
@needs_data
@pytest.mark.parametrize("path", sorted(DATA.glob("weather/*.csv")), ids=lambda p: p.stem)
def test_read_weather_every_real_file(path: Path) -> None:
    frame, meta = read_weather(path)
    assert frame.shape == (8760, 4)
    assert_utc_index(frame.index)
    assert set(meta) == {"latitude", "longitude", "elevation_m"}
    assert frame.notna().all().all()


@pytest.mark.shared_data
@needs_data
class TestRealFiles:
    def test_grid_price_empty_for_gb_kept_as_nan(self) -> None:
        frame = read_grid(DATA / "grid" / "GB_2023.csv")
        assert frame["price_usd_per_mwh"].isna().all()
        assert frame["price_usd_per_mwh"].dtype == np.float64
        assert frame["carbon_intensity_g_per_kwh"].notna().all()

    def test_grid_prices_can_be_negative(self) -> None:
        frame = read_grid(DATA / "grid" / "DE-LU_2023.csv")
        price = frame["price_usd_per_mwh"]
        assert price.notna().all()
        assert price.min() < 0
        assert price.max() > 100

    def test_grid_accepts_str_path(self) -> None:
        frame = read_grid(str(DATA / "grid" / "SG_2022.csv"))
        assert len(frame) == 8760

    def test_weather_rows_and_metadata(self) -> None:
        frame, meta = read_weather(DATA / "weather" / "GB_2023.csv")
        assert frame.shape == (8760, 4)
        assert list(frame.columns) == [
            "temperature_c",
            "relative_humidity_pct",
            "cloud_cover_pct",
            "wind_speed_10m_m_per_s",
        ]
        assert_utc_index(frame.index)
        assert frame.index[0] == pd.Timestamp("2023-01-01T00:00Z")
        assert meta == {"latitude": 51.4938, "longitude": -0.1630, "elevation_m": 29.0}
        assert frame["temperature_c"].between(-30, 45).all()
        assert frame["relative_humidity_pct"].between(0, 100).all()
        assert frame["cloud_cover_pct"].between(0, 100).all()
        assert (frame["wind_speed_10m_m_per_s"] >= 0).all()
        # Values are parsed, not shifted: the first row of the file is 11.2 C.
        assert frame["temperature_c"].iloc[0] == pytest.approx(11.2)

    def test_weather_southern_hemisphere_metadata(self) -> None:
        _, meta = read_weather(DATA / "weather" / "AU-NSW_2022.csv")
        assert meta["latitude"] == pytest.approx(-33.8489)
        assert meta["longitude"] == pytest.approx(151.1955)

    def test_solcast_5min_utc_normalised(self) -> None:
        frame = read_solcast(DATA / "solar" / "solcast_normalized_5min_10_cities.csv")
        assert frame.shape == (8352, 10)
        assert "time" not in frame.columns
        assert "São Paulo" in frame.columns
        assert "Berlin" in frame.columns
        assert_utc_index(frame.index)
        assert frame.index[0] == pd.Timestamp("2022-06-08T00:00Z")
        assert frame.index[1] - frame.index[0] == pd.Timedelta("5min")
        assert frame.index[-1] == pd.Timestamp("2022-06-08T00:00Z") + pd.Timedelta(
            seconds=2_505_300
        )
        values = frame.to_numpy()
        assert np.isfinite(values).all()
        assert values.min() >= 0.0
        assert values.max() <= 1.0
        assert values.max() > 0.5  # a real trace, not all zeros

    def test_solcast_custom_start(self) -> None:
        start = pd.Timestamp("2023-01-01T00:00Z")
        frame = read_solcast(DATA / "solar" / "solcast_normalized_5min_10_cities.csv", start)
        assert frame.index[0] == start

    def test_latency_matrix(self) -> None:
        latency = read_latency_matrix(DATA / "network" / "latency_ms_between_zones.csv")
        zones = {origin for origin, _ in latency}
        # 34 columns, but US-MIDA-PJM is there twice: 33 distinct zones, every pair once.
        assert len(zones) == 33
        assert len(latency) == 33 * 33
        assert all(isinstance(v, float) for v in latency.values())
        for zone in zones:
            assert latency[(zone, zone)] <= 10.0
        # Symmetric-ish: each direction within a few ms of the other.
        asym = [abs(latency[(a, b)] - latency[(b, a)]) for a in zones for b in zones]
        assert max(asym) <= 25.0
        assert np.median(asym) <= 1.0
        # The duplicated zone keeps the minimum of its rows/columns.
        assert latency[("US-MIDA-PJM", "US-MIDA-PJM")] == 5.0  # not 18 (between the two)
        assert latency[("US-MIDA-PJM", "CA-QC")] == 14.0  # min(14, 20)
        assert latency[("US-MIDA-PJM", "US-CENT-SWPP")] == 18.0  # min(24, 18)
        assert latency[("US-CENT-SWPP", "US-MIDA-PJM")] == 18.0  # min(23, 18)
        assert latency[("GB", "DE")] == 13.0

    def test_pai_100k_hours(self) -> None:
        jobs = read_job_trace(DATA / "workloads" / "alibaba_pai_jobs_100k.csv")
        assert list(jobs.columns) == ["arrival_h", "duration_h", "accelerators"]
        assert len(jobs) == 99_998  # the file has 99,998 jobs, not 100,000
        assert all(dtype == np.float64 for dtype in jobs.dtypes)
        assert jobs["arrival_h"].iloc[0] == 0.0
        assert jobs["arrival_h"].max() < 8760  # one year in hours
        assert (jobs["duration_h"] > 0).all()
        assert (jobs["accelerators"] >= 1).all()
        assert jobs["duration_h"].iloc[0] == pytest.approx(25.408055555555556)

    def test_pai_1k_seconds_converted_to_hours(self) -> None:
        jobs = read_job_trace(DATA / "workloads" / "alibaba_pai_jobs_1k.csv", time_unit="s")
        assert len(jobs) == 1000
        # First rows of the file: 0.0,6302.0,1 and 68.0,1000.0,1 (seconds).
        assert jobs["duration_h"].iloc[0] == pytest.approx(6302 / 3600)
        assert jobs["arrival_h"].iloc[1] == pytest.approx(68 / 3600)
        assert jobs["arrival_h"].max() <= 7 * 24  # one week
        assert jobs["arrival_h"].is_monotonic_increasing  # file order kept

    def test_azure_request_log(self) -> None:
        times = read_request_log(DATA / "workloads" / "azure_llm_inference_conv_2023.csv")
        assert isinstance(times, pd.DatetimeIndex)
        assert str(times.tz) == "UTC"
        assert len(times) == 19_366
        assert times.is_monotonic_increasing
        assert times[0] == pd.Timestamp("2023-11-16T18:15:46.6805900Z")
        assert pd.Timedelta("50min") < times[-1] - times[0] < pd.Timedelta("1h")

    def test_read_timeseries_on_grid_file_with_renaming(self) -> None:
        frame = read_timeseries(
            DATA / "grid" / "GB_2022.csv",
            columns={"carbon_g_per_kwh": "carbon_intensity_g_per_kwh"},
        )
        assert list(frame.columns) == ["carbon_g_per_kwh"]
        assert len(frame) == 8760
        assert_utc_index(frame.index)


# --------------------------------------------------------------------------- generic reader


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_timeseries_naive_local_times_converted_to_utc(tmp_path: Path) -> None:
    path = write(tmp_path, "# site A\nwhen,power_kw\n2023-07-01 12:00,1.5\n2023-07-01 13:00,2\n")
    frame = read_timeseries(path, time_column="when", timezone="Europe/Berlin")
    assert_utc_index(frame.index)
    assert frame.index[0] == pd.Timestamp("2023-07-01T10:00Z")  # CEST = UTC+2
    assert frame["power_kw"].tolist() == [1.5, 2.0]


def test_read_timeseries_offsets_across_dst_change(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timestamp,v\n2023-03-26T01:00+01:00,1\n2023-03-26T03:00+02:00,2\n",
    )
    frame = read_timeseries(path)
    assert list(frame.index) == [
        pd.Timestamp("2023-03-26T00:00Z"),
        pd.Timestamp("2023-03-26T01:00Z"),
    ]


def test_read_timeseries_numeric_time_needs_origin(tmp_path: Path) -> None:
    path = write(tmp_path, "t,v\n0,1\n90,2\n")
    frame = read_timeseries(
        path, time_column="t", time_unit="min", origin=pd.Timestamp("2024-01-01T00:00Z")
    )
    assert frame.index[1] == pd.Timestamp("2024-01-01T01:30Z")
    with pytest.raises(DataFileError, match="origin") as info:
        read_timeseries(path, time_column="t", time_unit="min")
    assert "pass origin=" in info.value.fix


def test_read_timeseries_missing_column_lists_available(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,a,b\n2023-01-01T00:00Z,1,2\n")
    with pytest.raises(DataFileError) as info:
        read_timeseries(path, columns={"x": "price"})
    err = info.value
    assert err.field == str(path)
    assert "'price'" in err.problem
    assert "'timestamp', 'a', 'b'" in err.problem
    assert err.fix


def test_read_timeseries_non_numeric_value_names_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,a\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,n/a?\n")
    with pytest.raises(DataFileError, match=r"'a'.*data row 2.*2023-01-01T01:00"):
        read_timeseries(path)


# --------------------------------------------------------------------------- bad input

READERS = {
    "grid": read_grid,
    "weather": read_weather,
    "solcast": read_solcast,
    "timeseries": read_timeseries,
    "latency": read_latency_matrix,
    "jobs": read_job_trace,
    "requests": read_request_log,
}


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_missing_file(tmp_path: Path, reader) -> None:
    path = tmp_path / "nope" / "missing.csv"
    with pytest.raises(DataFileError) as info:
        reader(path)
    assert info.value.field == str(path)
    assert "not found" in info.value.problem
    assert info.value.fix


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"]
)
def test_empty_file(tmp_path: Path, reader, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataFileError, match="empty") as info:
        reader(path)
    assert info.value.field == str(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_binary_file(tmp_path: Path, reader) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"PK\x03\x04\xff\xfe\x00\x81 binary spreadsheet")
    with pytest.raises(DataFileError, match="UTF-8"):
        reader(path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_directory_instead_of_file(tmp_path: Path, reader) -> None:
    with pytest.raises(DataFileError, match="directory"):
        reader(tmp_path)


def test_header_only(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp," + ",".join(GRID_COLUMNS) + "\n")
    with pytest.raises(DataFileError, match="no data rows"):
        read_grid(path)


def test_grid_missing_column_lists_available(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,carbon_intensity_g_per_kwh\n2023-01-01T00:00:00Z,100\n")
    with pytest.raises(DataFileError) as info:
        read_grid(path)
    err = info.value
    assert "'price_usd_per_mwh'" in err.problem
    assert "available columns are: 'timestamp', 'carbon_intensity_g_per_kwh'" in err.problem
    assert "price_usd_per_mwh" in err.fix
    assert str(path) in str(err)


GRID_HEADER = "timestamp," + ",".join(GRID_COLUMNS) + "\n"


@pytest.mark.parametrize(
    "stamp", ["garbage", "2023-13-01T00:00:00Z", "01/02/2023 00:00", "2023-01-01T25:00:00Z"]
)
def test_grid_garbage_timestamp(tmp_path: Path, stamp: str) -> None:
    path = write(
        tmp_path, GRID_HEADER + "2023-01-01T00:00:00Z,1,2,3,4,5\n" + stamp + ",1,2,3,4,5\n"
    )
    with pytest.raises(DataFileError) as info:
        read_grid(path)
    err = info.value
    assert "'timestamp'" in err.problem
    assert "data row 2" in err.problem
    assert stamp in err.problem
    assert "ISO 8601" in err.fix


def test_grid_empty_timestamp(tmp_path: Path) -> None:
    path = write(tmp_path, GRID_HEADER + "2023-01-01T00:00:00Z,1,2,3,4,5\n,1,2,3,4,5\n")
    with pytest.raises(DataFileError, match="empty in data row 2"):
        read_grid(path)


def test_grid_ragged_row(tmp_path: Path) -> None:
    path = write(tmp_path, GRID_HEADER + "2023-01-01T00:00:00Z,1,2,3,4,5,6,7\n")
    with pytest.raises(DataFileError, match="well-formed CSV"):
        read_grid(path)


def test_ragged_row_after_comment_names_the_file_line(tmp_path: Path) -> None:
    path = write(tmp_path, "# comment\ntimestamp,a\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,2,3\n")
    with pytest.raises(DataFileError, match=r"well-formed CSV.*line 4") as info:
        read_timeseries(path)
    assert "as many comma-separated fields" in info.value.fix


def test_grid_empty_price_ok_but_garbage_price_not(tmp_path: Path) -> None:
    path = write(tmp_path, GRID_HEADER + "2023-01-01T00:00:00Z,1,2,3,4,\n")
    assert np.isnan(read_grid(path)["price_usd_per_mwh"].iloc[0])
    path = write(tmp_path, GRID_HEADER + "2023-01-01T00:00:00Z,1,2,3,4,cheap\n")
    with pytest.raises(DataFileError, match=r"'price_usd_per_mwh'.*data row 1.*'cheap'"):
        read_grid(path)


def test_mixed_naive_and_offset_timestamps_in_non_utc_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,v\n2023-01-01T00:00Z,1\n2023-01-01T01:00,2\n")
    with pytest.raises(DataFileError, match="mixes"):
        read_timeseries(path, timezone="Europe/Berlin")


def test_nonexistent_local_time(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,v\n2023-03-26 02:30,1\n")
    with pytest.raises(DataFileError, match="Europe/Berlin") as info:
        read_timeseries(path, timezone="Europe/Berlin")
    assert "offset" in info.value.fix


def test_unknown_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,v\n2023-03-26 02:30,1\n")
    with pytest.raises(DataFileError, match="Mars/Olympus"):
        read_timeseries(path, timezone="Mars/Olympus")


def test_weather_without_comment_gives_empty_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timestamp,temperature_c,relative_humidity_pct,cloud_cover_pct,wind_speed_10m_m_per_s\n"
        "2023-01-01T00:00:00Z,11.2,94,100,6.36\n",
    )
    frame, meta = read_weather(path)
    assert meta == {}
    assert frame["temperature_c"].iloc[0] == 11.2


def test_weather_bad_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# latitude=north longitude=1\n"
        "timestamp,temperature_c,relative_humidity_pct,cloud_cover_pct,wind_speed_10m_m_per_s\n"
        "2023-01-01T00:00:00Z,11.2,94,100,6.36\n",
    )
    with pytest.raises(DataFileError, match="latitude"):
        read_weather(path)


def test_solcast_value_above_one(tmp_path: Path) -> None:
    path = write(tmp_path, "time,Berlin,Lagos\n0,0.5,0.2\n300,0.5,1.7\n")
    with pytest.raises(DataFileError, match=r"'Lagos'.*data row 2.*2022-06-08T00:05"):
        read_solcast(path)


def test_solcast_text_time(tmp_path: Path) -> None:
    path = write(tmp_path, "time,Berlin\n0,0.5\nnoon,0.5\n")
    with pytest.raises(DataFileError, match=r"'time'.*data row 2.*'noon'"):
        read_solcast(path)


def test_job_trace_nan_names_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "arrival_time,length,cpus\n0,1,1\n1,2,1\n2,,1\n")
    with pytest.raises(DataFileError) as info:
        read_job_trace(path)
    err = info.value
    assert err.field == str(path)
    assert "data row 3" in err.problem
    assert "'length'" in err.problem
    assert "no value" in err.problem
    assert err.fix


@pytest.mark.parametrize(
    ("row", "column"), [("0,0,1", "'length'"), ("0,1,0", "'cpus'"), ("0,-1,1", "'length'")]
)
def test_job_trace_non_positive(tmp_path: Path, row: str, column: str) -> None:
    path = write(tmp_path, f"arrival_time,length,cpus\n0,1,1\n{row}\n")
    with pytest.raises(
        DataFileError, match=f"data row 2 has a value that is not positive.*{column}"
    ):
        read_job_trace(path)


def test_job_trace_custom_columns_and_minutes(tmp_path: Path) -> None:
    path = write(tmp_path, "submit,run,gpus\n30,90,8\n0,15,1\n")
    jobs = read_job_trace(
        path,
        arrival_column="submit",
        duration_column="run",
        accelerators_column="gpus",
        time_unit="min",
    )
    assert jobs.to_numpy().tolist() == [[0.5, 1.5, 8.0], [0.0, 0.25, 1.0]]  # file order


def test_job_trace_bad_unit_and_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, "arrival_time,length\n0,1\n")
    with pytest.raises(DataFileError, match="time_unit"):
        read_job_trace(path, time_unit="days")
    with pytest.raises(DataFileError, match=r"'cpus'.*'arrival_time', 'length'"):
        read_job_trace(path)


def test_latency_bad_cell_and_header(tmp_path: Path) -> None:
    path = write(tmp_path, "origin,A,B\nA,5,x\nB,9,5\n")
    with pytest.raises(DataFileError, match=r"data row 1 \(origin 'A'\), column 'B'"):
        read_latency_matrix(path)
    path = write(tmp_path, "from,A\nA,5\n")
    with pytest.raises(DataFileError, match="'origin'"):
        read_latency_matrix(path)
    path = write(tmp_path, "origin,A,B\nA,5\n")
    with pytest.raises(DataFileError, match="2 cells but the header has 3"):
        read_latency_matrix(path)


def test_latency_duplicate_keeps_minimum(tmp_path: Path) -> None:
    path = write(tmp_path, "origin,A,A,B\nA,5,30,40\nA,30,5,20\nB,41,19,5\n")
    latency = read_latency_matrix(path)
    assert latency == {
        ("A", "A"): 5.0,
        ("A", "B"): 20.0,
        ("B", "A"): 19.0,
        ("B", "B"): 5.0,
    }


def test_request_log_sorted_and_naive_is_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "TIMESTAMP,ContextTokens\n2023-11-16 18:15:50.9951690,1\n2023-11-16 18:15:46.6805900,2\n",
    )
    times = read_request_log(path)
    assert list(times) == [
        pd.Timestamp("2023-11-16T18:15:46.6805900Z"),
        pd.Timestamp("2023-11-16T18:15:50.9951690Z"),
    ]
    with pytest.raises(DataFileError, match=r"'TIMESTAMP'.*data row 2.*'yesterday'"):
        read_request_log(write(tmp_path, "TIMESTAMP\n2023-11-16 18:15:50\nyesterday\n"))
    with pytest.raises(DataFileError, match=r"'time'.*available columns are: 'TIMESTAMP'"):
        read_request_log(path, timestamp_column="time")


def test_errors_are_input_errors_with_fix(tmp_path: Path) -> None:
    """Every error above is an InputError, so the CLI prints it instead of a traceback."""
    path = write(tmp_path, "a,b\n1,2\n")
    for reader in READERS.values():
        with pytest.raises(InputError) as info:
            reader(path)
        assert isinstance(info.value, DataFileError)
        assert info.value.fix
        assert str(path) in str(info.value)
