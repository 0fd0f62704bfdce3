"""loopml.trigger"""
