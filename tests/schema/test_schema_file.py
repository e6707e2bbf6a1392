"""schema.graphql is the committed contract: regenerate it with `make schema` when this fails."""

from pathlib import Path

from schema.export import sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_schema_graphql_is_current():
    assert SCHEMA_FILE.read_text() == sdl(), "schema.graphql is out of date: run `make schema`"
