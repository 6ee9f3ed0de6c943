"""Storage: SQLModel tables, the engine and sessions, and the queries others need."""
