"""Usage: what the gateway and cvat-cli runs record, and the yearly report iMagine asks for
(images processed, distinct users and clients, countries reached)."""
