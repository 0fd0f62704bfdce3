"""Content-addressed artifact store (sha256 over fsspec, atomic, verified on read)."""

from loopml.artifacts._cas import ArtifactInfo, ArtifactStore, ByteBackend, FsspecBackend, MemoryBackend

__all__ = ["ArtifactInfo", "ArtifactStore", "ByteBackend", "FsspecBackend", "MemoryBackend"]
