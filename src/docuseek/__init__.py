"""Docuseek: self-hosted document search with PostgreSQL as the system of record."""

__version__ = "0.1.0"
