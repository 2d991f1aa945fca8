"""Store and bus backends, chosen by URL in the composition root and imported lazily."""
