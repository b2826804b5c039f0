"""Test configuration shared by the whole suite."""

import os

# The energy-balance guard is on in every test (DESIGN.md: runtime guards that tests switch on).
os.environ["WATTROUTE_CHECK_BALANCE"] = "1"
