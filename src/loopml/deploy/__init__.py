"""loopml.deploy"""
