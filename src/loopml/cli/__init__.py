"""loopml.cli"""
