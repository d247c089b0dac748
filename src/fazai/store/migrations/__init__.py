"""Alembic migrations of the session store, shipped inside the package and run at start."""
