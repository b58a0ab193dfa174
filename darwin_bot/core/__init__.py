"""Pure evolution logic: no git, GitHub, LLM clients, torch or click in here."""
