"""Airflow sensors of the LLM release provider."""
