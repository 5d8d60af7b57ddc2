"""A user's own package: a model factory that fortify knows nothing about (tests of bring-your-own-model)."""
