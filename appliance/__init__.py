"""The ipkvm appliance service: configuration, the aiohttp app, API, auth, and the CLI."""

__version__ = "0.1.0"
