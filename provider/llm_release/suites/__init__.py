"""Measurement suites: evaluation, adversarial, bias and shadow comparison. No Airflow imports."""
