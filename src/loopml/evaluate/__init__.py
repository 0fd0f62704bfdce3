"""loopml.evaluate"""
