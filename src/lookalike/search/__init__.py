"""Finding near pairs and grouping them."""
