"""Text generation: LLM backends and the text generator."""
