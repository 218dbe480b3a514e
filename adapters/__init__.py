"""Built-in students. Installed as ``froster.adapters``; importing it registers every student."""
