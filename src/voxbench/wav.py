"""WAV encoding and streaming decoding, shared by the command and HTTP engines, serve and the
load client."""
