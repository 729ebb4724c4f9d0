"""linjail: DragonFly BSD jails for Linux."""

# the one place of the version: pyproject.toml, `--version` and the .deb read it
__version__ = "0.1.0"
