"""Drop-in hooks for generation libraries."""
