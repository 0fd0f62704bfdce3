"""loopml.predictions"""
