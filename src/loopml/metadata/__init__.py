"""loopml.metadata"""
