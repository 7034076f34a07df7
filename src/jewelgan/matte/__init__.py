"""The jewelry matte: alpha (and a shadow layer) for product photos, trained on the studio's exact coverage."""
