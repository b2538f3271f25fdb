"""The channel adapter interface (``base``) and the registry that finds a channel's adapter (``registry``)."""
