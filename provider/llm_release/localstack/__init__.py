"""Local stack: Airflow processes, REST client and seeding, shared by `make demo` and the e2e tests."""
