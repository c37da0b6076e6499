"""The tiny model's card, written from the numbers the measuring jobs keep beside the weights."""
