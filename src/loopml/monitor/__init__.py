"""loopml.monitor"""
