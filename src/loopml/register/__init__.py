"""loopml.register"""
