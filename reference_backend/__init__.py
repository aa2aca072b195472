"""The bundled reference backend for US-003 batch prompt processing (FastAPI)."""
