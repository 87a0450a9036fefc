"""Services (replay, actor, learner, launcher), analyses and TFDS pipelines of s3ta-tf."""
