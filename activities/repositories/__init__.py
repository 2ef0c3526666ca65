"""All SQL lives here: one module per aggregate, functions taking an asyncpg connection first."""
