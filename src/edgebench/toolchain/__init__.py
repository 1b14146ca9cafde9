"""Building the SSM kernels (mamba-ssm, causal-conv1d) for the local GPU."""
