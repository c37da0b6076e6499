"""The networks LayerScope serves: model entries, weight loading and checking, checkpoints, shipped assets."""
