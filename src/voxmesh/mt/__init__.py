"""Machine translation: prompts, languages, segmentation, HTML, detection, batching, the service.

Engines live in :mod:`voxmesh.engines.llamacpp` (in-process GGUF) and
:mod:`voxmesh.engines.remote` (an external OpenAI-compatible chat server); routes in
:mod:`voxmesh.api.translate`.
"""

from __future__ import annotations

__all__: list[str] = []
