"""The HTTP service: `jewelgan serve`, or from Python

    from jewelgan.serve import ServeSettings, create_asgi
    import uvicorn
    uvicorn.run(create_asgi(ServeSettings(models=["default64"])), host="127.0.0.1", port=8000)

engine.py batches requests into one forward pass, jobs.py runs bulk jobs, access.py holds API keys and
the rate limit, observability.py metrics and the access log, app.py builds the app from context.py (the
state and checks the handlers share) and the routes of each area (routes_*.py, study_routes.py), static/
the studio page.
"""

from jewelgan.serve.app import create_app, create_asgi
from jewelgan.serve.settings import ServeSettings

__all__ = ["create_app", "create_asgi", "ServeSettings"]
