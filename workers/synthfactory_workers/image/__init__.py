"""Image generation with diffusers pipelines."""
