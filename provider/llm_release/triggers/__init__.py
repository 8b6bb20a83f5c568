"""Airflow triggers of the LLM release provider."""
