"""loopml"""
