"""loopml.runner"""
