"""The gateway's gRPC clients of its internal services (one extractor, n matcher shards):
the implementations of gateway/ports.py, which convert between protobufs and the
domain's dataclasses so that the domain modules never see either gRPC or a protobuf."""
