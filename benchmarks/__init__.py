"""Measurements that print their figures; harness.py serves the site for the load benchmark and the fault tests."""
