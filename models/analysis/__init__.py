"""Measuring a trained network: accuracy, Network Dissection, probes, reliance on parts, and their CLI.

``concepts`` is the leaf (masks, alignment, IoU); ``selectivity``, ``probe``, ``summary`` and
``plots`` build on it, ``dissect`` puts them together, and ``jobs`` is the command line that
``evaluate``, ``dissect`` and ``reliance`` share.
"""
