"""loopml.pipeline"""
