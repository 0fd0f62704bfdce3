"""loopml.serve"""
