"""loopml.tracking"""
