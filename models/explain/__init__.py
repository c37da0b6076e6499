"""Explanations beyond feature maps, one small module per method.

filters (first-layer kernels), gradcam (where the evidence for a class is), guided
(guided backpropagation from one unit), featvis (what a unit looks for), patches (the
generated images that excite a unit most), ood (is this input unlike the training world),
checkpoints (the network at earlier training steps), units (layer shapes and labels),
render (display policies: colour maps, atlases), assets (the shipped precomputed files).
"""
