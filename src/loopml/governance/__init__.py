"""loopml.governance"""
