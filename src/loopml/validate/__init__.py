"""loopml.validate"""
