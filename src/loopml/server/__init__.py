"""loopml.server"""
