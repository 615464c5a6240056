"""The SFT stage's logic: the mixture, the safety pairs and the SFT teacher requests (``data``)."""
