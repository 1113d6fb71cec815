"""HTTP service: Starlette app, routes, events, metrics, auth."""
