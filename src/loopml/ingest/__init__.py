"""loopml.ingest"""
