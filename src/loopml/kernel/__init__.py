"""Kernel: settings, exceptions, shared value types. Imports nothing else from loopml."""
