"""`masksem demo`: the whole product on built-in synthetic data, with a report folder of pictures."""
