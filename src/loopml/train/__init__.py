"""loopml.train"""
