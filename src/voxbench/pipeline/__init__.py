"""Voice-assistant chains, STT → LLM → TTS, sequential and streaming (``voxbench pipeline``)."""
