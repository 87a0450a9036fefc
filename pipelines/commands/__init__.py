"""One module per ``s3ta`` subcommand (see pipelines.cli)."""
