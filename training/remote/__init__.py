"""Training somewhere else than this PC: on a Ray cluster (a plant's GPU server).

``snapshot_file`` writes the dataset snapshot a remote run trains from (the project file never
leaves the PC, so it never has two writers on two machines); ``ray_job`` submits the training
session to the cluster, relays its Progress, cancels it, and registers the model it returns in
the project. Headless like the rest of training/; Ray is imported only when a remote run starts.
"""
