"""Everything under memory/: typed records, schemas, atomic writes, the eval cache (its only reader), run state."""
