"""Quality, privacy and bias metrics, gates, and the dataset card."""
