"""A workspace: one metadata store + one artifact store + the acting user."""

from loopml.workspace._workspace import Workspace, init_workspace, open_workspace

__all__ = ["Workspace", "init_workspace", "open_workspace"]
