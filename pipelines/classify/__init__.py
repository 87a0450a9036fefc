"""Supervised S3TA through TensorFlow Datasets (SPEC §4): data, training, evaluation, export."""
