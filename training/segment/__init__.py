"""Segmentation models learned from the inspectors' masks (task "segment").

A UNet (segmentation-models-pytorch) with one sigmoid channel per defect class, trained by its
own loop (loop.py) on views and their class-index masks (data.py); post-processing learned from
the training masks (postprocess.py) turns probabilities into kept components and an OK/NG
verdict, which is how segmentation models are compared with classifiers (metrics.py).
Proposals (propose.py) store predicted masks apart from the inspector's.
"""
