"""The schema as SDL; `make schema` writes it to schema.graphql and a test keeps it current."""


def sdl() -> str:
    from schema import schema

    return schema.as_str() + "\n"
