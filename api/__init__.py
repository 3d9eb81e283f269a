"""HTTP layer: a thin FastAPI app over rag/. Build it with api.app.create_app(settings)."""
