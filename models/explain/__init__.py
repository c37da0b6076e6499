"""Explanations beyond feature maps, one small module per method.

filters (first-layer kernels), gradcam (where the evidence for a class is), guided
(guided backpropagation from one unit), featvis (what a unit looks for), patches (the
images of a set that excite a unit most), and render (display policies: colour maps,
atlases). Methods only: tensors in, arrays out; the routes that serve them live in
app/routes/explain.py, the shipped precomputed files in models/zoo/assets.py.
"""
