"""Built-in engines: espeak-ng, piper and FluidSynth."""
