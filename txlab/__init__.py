"""txlab: a transaction and concurrency lab for PostgreSQL."""

__version__ = "0.1.0"
