"""loopml.recipes"""
