"""The spec's default file name, apart from the spec's model: commands that never read a
spec (``--version``, ``--help``) name it without importing pydantic."""

DEFAULT_SPEC_NAME = "dataferry.yaml"
