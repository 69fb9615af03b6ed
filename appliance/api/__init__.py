"""The HTTP and WebSocket front end: the aiohttp app, its auth middleware and one module of
routes per facet (hid, video, scripts, power, ...). Only the CLI imports this package."""
