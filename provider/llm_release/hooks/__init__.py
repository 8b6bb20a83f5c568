"""Airflow hooks of the LLM release provider."""
