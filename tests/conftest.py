"""Test configuration shared by the whole suite.

Every simulation checks its energy balance unless told not to (``SimulationOptions``), so every
test that simulates verifies conservation at every site and step.
"""
