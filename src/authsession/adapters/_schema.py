"""The schema files shipped in ``authsession/adapters/schema/`` (package data)."""

from __future__ import annotations

from importlib import resources


def schema_sql(name: str) -> str:
    """The text of ``schema/<name>.sql`` (``"postgres"`` or ``"sqlite"``)."""
    return (
        resources.files(__package__).joinpath("schema").joinpath(f"{name}.sql").read_text("utf-8")
    )
