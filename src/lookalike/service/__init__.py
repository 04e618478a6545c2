"""The HTTP service (`lookalike serve`): a FastAPI app over one index. Optional: needs the
`serve` extra (fastapi, uvicorn, python-multipart), imported only here."""
