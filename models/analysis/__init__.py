"""Measuring a trained network: accuracy, Network Dissection, probes, reliance on parts, and their CLI."""
