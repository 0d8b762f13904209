"""Benchmark commands: the pipeline on a real data set, the input path, memory at scale."""
