"""The web app and HTTP/WebSocket API around a :class:`~audiorec.runtime.Recognizer` (``audiorec serve``).

Needs the ``[serve]`` extra (FastAPI, uvicorn); with an exported ``.onnx`` model it runs without
PyTorch. See :mod:`audiorec.serve.app` for the routes.
"""

from audiorec.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
